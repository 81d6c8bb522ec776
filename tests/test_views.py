"""Every view of the project's modules is one the web client can show.

sao 8.0 has no list column for a bare datetime field (the list crashes with
"ColumnFactory is not a constructor"): a datetime in a list needs
widget="date" and/or widget="time", as Tryton's own lists do.  SQLite pass
only: views do not depend on the backend.
"""
import os
import unittest
from xml.etree import ElementTree

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def project_modules():
    folder = os.path.join(ROOT, 'modules')
    return sorted(
        n for n in os.listdir(folder)
        if os.path.exists(os.path.join(folder, n, 'tryton.cfg')))


@unittest.skipUnless(
    os.environ.get('TRYTOND_DATABASE_URI', 'sqlite').startswith('sqlite'),
    "SQLite pass only")
class ViewsTestCase(unittest.TestCase):
    "The project's views"

    @classmethod
    def setUpClass(cls):
        from trytond.tests.test_tryton import activate_module
        activate_module(project_modules())

    @classmethod
    def tearDownClass(cls):
        from trytond.tests.test_tryton import drop_db
        drop_db()

    def test_list_datetimes_have_widget(self):
        "Datetime fields in lists say whether they show the date or time"
        from trytond.pool import Pool
        from trytond.tests.test_tryton import with_transaction

        @with_transaction()
        def check():
            pool = Pool()
            View = pool.get('ir.ui.view')
            problems = []
            views = View.search([
                    ('module', 'in', project_modules()),
                    ('type', '=', 'tree'),
                    ])
            self.assertTrue(views)
            for view in views:
                Model = pool.get(view.model)
                result = Model.fields_view_get(
                    view_id=view.id, view_type='tree')
                arch = ElementTree.fromstring(result['arch'])
                for node in arch.iter('field'):
                    field = result['fields'].get(node.get('name'), {})
                    if (field.get('type') in {'datetime', 'timestamp'}
                            and node.get('widget') not in {'date', 'time'}):
                        problems.append(
                            f"{view.module}.{view.name}: {node.get('name')}")
            self.assertEqual(problems, [])
        check()

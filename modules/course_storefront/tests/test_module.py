"The module installs; its own tables are out of the clients' reach"
from trytond.modules.company.tests import CompanyTestMixin, create_company
from trytond.modules.course.tests.tools import set_config
from trytond.tests.test_tryton import ModuleTestCase, with_transaction

from ..errors import StorefrontError
from ..session import storefront_company


class CourseStorefrontTestCase(CompanyTestMixin, ModuleTestCase):
    "Test Course Storefront module"
    module = 'course_storefront'

    @with_transaction()
    def test_storefront_company(self):
        """The storefront sells for the only company (found once, then
        cached), none once there are two, or the configured one"""
        first = create_company()
        self.assertEqual(storefront_company(), first)
        self.assertEqual(storefront_company(), first)
        second = create_company(name="Second School", currency=first.currency)
        with self.assertRaises(StorefrontError) as cm:
            storefront_company()
        self.assertEqual(cm.exception.type, 'storefront.company')
        set_config(self, 'course', 'storefront_company', str(second.id))
        self.assertEqual(storefront_company(), second)


del ModuleTestCase

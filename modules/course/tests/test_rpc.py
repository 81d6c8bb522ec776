"""Enrollments, gifts and sale prices over real RPC, as the staff users"""
import datetime as dt
import unittest
from decimal import Decimal

from trytond.modules.course.tests.rpc import (
    BAD_IDS, BAD_INTS, BAD_LISTS, PASSWORD, RPCTestMixin)
from trytond.modules.course.tests.tools import run_transaction

STAFF = ['sales', 'manager', 'admin']
WIZARD = 'course.enrollment.give'


class CourseRPCTestCase(RPCTestMixin, unittest.TestCase):
    "Enrollments are the workflow's; gifts go through Give Course"
    module = 'course'

    @classmethod
    def setUpClass(cls):
        super().setUpClass()

        def setup():
            from trytond.modules.company.tests import create_company
            from trytond.pool import Pool
            pool = Pool()
            Company = pool.get('company.company')
            Course = pool.get('course.course')
            ModelData = pool.get('ir.model.data')
            User = pool.get('res.user')
            from trytond.modules.course.tests.tools import create_catalog
            company = Company(cls.company_id)
            cat = create_catalog(company)
            hidden, = Course.copy([cat.course_c], {
                    'name': "Hidden", 'published': False})
            other = create_company("Other School", currency=company.currency)
            elsewhere, = Course.copy([cat.course_c], {
                    'name': "Elsewhere", 'company': other.id})
            giver, = User.create([{
                        'name': "Giver", 'login': 'giver',
                        'password': PASSWORD.format('giver'),
                        'companies': [('add', [company.id])],
                        'company': company.id,
                        'groups': [('add', [ModelData.get_id(
                                        'course', 'group_course_gift')])],
                        }])
            return {
                'course_a': cat.course_a.id, 'course_b': cat.course_b.id,
                'option_a_month': cat.option_a_month.id,
                'hidden': hidden.id, 'elsewhere': elsewhere.id,
                'giver': giver.id,
                }
        cls.cat = run_transaction(setup, context={'company': cls.company_id})

    # ---- Helpers (as root, committed) -------------------------------------

    def student(self):
        def create():
            from trytond.pool import Pool
            party, = Pool().get('party.party').create([{'name': "Student"}])
            return party.id
        return self.run_transaction(create)

    def enrollment(self, party, course='course_a', source='purchase'):
        "An enrollment made by code (root), as the workflow would"
        def create():
            from trytond.pool import Pool
            enrollment, = Pool().get('course.enrollment').create([{
                        'party': party, 'course': self.cat[course],
                        'source': source}])
            return enrollment.id
        return self.run_transaction(create)

    def enrollments(self, **values):
        "The enrollments matching values, as dicts (read as root)"
        def read():
            from trytond.pool import Pool
            Enrollment = Pool().get('course.enrollment')
            records = Enrollment.search(
                [(k, '=', v) for k, v in values.items()],
                order=[('id', 'ASC')])
            return Enrollment.read([r.id for r in records], [
                    'party', 'course', 'source', 'start', 'end', 'state',
                    'gift_reason', 'given_by', 'ended_by', 'company'])
        return self.run_transaction(read)

    def count(self):
        def count():
            from trytond.pool import Pool
            return Pool().get('course.enrollment').search([], count=True)
        return self.run_transaction(count)

    def give(self, login, values):
        "Run Give Course as login with the values of its form"
        return self.login(login).execute_wizard(
            WIZARD, {'start': values}, 'give')

    # ---- Enrollments are never written by a user's call --------------------

    def test_enrollment_changes_refused(self):
        """Create, copy, write and delete of an enrollment are refused for
        every group over JSON-RPC and XML-RPC; nothing changes"""
        party, other = self.student(), self.student()
        enrollment = self.enrollment(party)
        before, count = self.enrollments(party=party), self.count()
        for login in STAFF:
            for protocol in ['json', 'xml']:
                client = self.login(login, protocol)
                for args, text in [
                        (('create', [{'party': other,
                                        'course': self.cat['course_a'],
                                        'company': self.company_id,
                                        'source': 'gift'}]),
                            "cannot be created by hand"),
                        (('copy', [enrollment], {'party': other}),
                            "cannot be created by hand"),
                        (('write', [enrollment], {'end': None}),
                            "cannot be changed or deleted by hand"),
                        (('write', [enrollment], {'party': other}),
                            "cannot be changed or deleted by hand"),
                        (('write', [enrollment],
                                {'source': 'gift', 'gift_reason': "x"}),
                            "cannot be changed or deleted by hand"),
                        (('write', [enrollment],
                                {'course': self.cat['course_b']}),
                            "cannot be changed or deleted by hand"),
                        (('delete', [enrollment]), None),
                        ]:
                    with self.subTest(
                            login=login, protocol=protocol, call=args):
                        self.assertRPCError(
                            client.model, 'course.enrollment', *args,
                            text=text)
        self.assertEqual(self.enrollments(party=party), before)
        self.assertEqual(self.count(), count)

    def test_enrollment_through_course_refused(self):
        """The enrollments of a course cannot be changed through the
        course either"""
        party = self.student()
        enrollment = self.enrollment(party, 'course_b')
        before, count = self.enrollments(party=party), self.count()
        client = self.login('manager')
        for values in [
                {'enrollments': [('delete', [enrollment])]},
                {'enrollments': [('write', [enrollment], {'end': None})]},
                {'enrollments': [('create', [{'party': party,
                                    'company': self.company_id,
                                    'source': 'gift'}])]},
                ]:
            with self.subTest(values=values):
                self.assertRPCError(
                    client.model, 'course.course', 'write',
                    [self.cat['course_b']], values)
        self.assertEqual(self.enrollments(party=party), before)
        self.assertEqual(self.count(), count)

    def test_end_access(self):
        """Course Administration ends an enrollment now, recorded; Sales
        cannot"""
        party = self.student()
        enrollment = self.enrollment(party, 'course_b')
        self.assertRPCError(
            self.login('sales').model, 'course.enrollment', 'end_access',
            [enrollment])
        self.assertEqual(self.enrollments(party=party)[0]['state'], 'live')
        self.login('manager', 'xml').model(
            'course.enrollment', 'end_access', [enrollment])
        ended, = self.enrollments(party=party)
        self.assertEqual(ended['state'], 'ended')
        self.assertEqual(ended['ended_by'], self.user_ids['manager'])
        # an ended enrollment cannot be ended again
        self.assertRPCError(
            self.login('admin').model, 'course.enrollment', 'end_access',
            [enrollment])

    # ---- Give Course --------------------------------------------------------

    def test_give_course(self):
        "Course Gifts give a course with a reason; the giver is recorded"
        party = self.student()
        self.give('giver', {
                'party': party, 'course': self.cat['course_a'], 'days': 30,
                'reason': "  Contest winner  "})
        gift, = self.enrollments(party=party)
        self.assertEqual(gift['source'], 'gift')
        self.assertEqual(gift['course'], self.cat['course_a'])
        self.assertEqual(gift['company'], self.company_id)
        self.assertEqual(gift['gift_reason'], "Contest winner")
        self.assertEqual(gift['given_by'], self.cat['giver'])
        self.assertEqual(gift['end'] - gift['start'], dt.timedelta(days=30))
        # permanent, by the administrator (in Course Gifts)
        self.give('admin', {
                'party': party, 'course': self.cat['course_b'], 'days': 0,
                'reason': "Staff family"})
        _, permanent = self.enrollments(party=party)
        self.assertIsNone(permanent['end'])
        self.assertEqual(permanent['given_by'], self.user_ids['admin'])

    def test_give_course_group_only(self):
        "Sales and Course Administration are not in Course Gifts"
        party = self.student()
        for login in ['sales', 'manager', 'nobody']:
            with self.subTest(login=login):
                self.assertRPCError(self.give, login, {
                        'party': party, 'course': self.cat['course_a'],
                        'days': 0, 'reason': "Because"})
        self.assertEqual(self.enrollments(party=party), [])

    def test_give_course_refusals(self):
        """An unpublished course, another company's course, a course the
        student has, no reason: refused with a message, nothing given"""
        party = self.student()
        owned = self.enrollment(party, 'course_b')
        count = self.count()
        base = {'party': party, 'course': self.cat['course_a'], 'days': 0,
            'reason': "Because"}
        for values, text in [
                ({'course': self.cat['hidden']}, "is not published"),
                ({'course': self.cat['elsewhere']},
                    "not a course of your companies"),
                ({'course': self.cat['course_b']},
                    "already has a live enrollment"),
                ({'reason': "   "}, "needs a reason"),
                ({'reason': None}, "needs a reason"),
                ]:
            with self.subTest(values=values):
                self.assertRPCError(
                    self.give, 'giver', dict(base, **values), text=text)
        self.assertEqual(self.count(), count)
        self.assertEqual(
            [e['id'] for e in self.enrollments(party=party)], [owned])

    def test_give_course_bad_input(self):
        "Every bad value of the wizard's form is a UserError, nothing given"
        party = self.student()
        count = self.count()
        base = {'party': party, 'course': self.cat['course_a'], 'days': 0,
            'reason': "Because"}
        cases = [('party', v) for v in BAD_IDS]
        cases += [('course', v) for v in BAD_IDS]
        cases += [('days', v) for v in BAD_INTS + [36501]]
        cases += [('reason', v) for v in [1, ['x'], {'a': 1}, 'x' * 1001]]
        for name, value in cases:
            with self.subTest(name=name, value=value):
                self.assertRPCError(
                    self.give, 'giver', dict(base, **{name: value}))
        self.assertEqual(self.count(), count)

    # ---- sale_prices --------------------------------------------------------

    def test_sale_prices(self):
        "sale_prices prices good items and refuses bad ones with a UserError"
        course, month = self.cat['course_a'], self.cat['option_a_month']
        for protocol in ['json', 'xml']:
            client = self.login('sales', protocol)
            prices = client.model(
                'course.course', 'sale_prices', [[course, None],
                    [course, month]])
            self.assertEqual([p['unit_price'] for p in prices],
                [Decimal('1000.00'), Decimal('199.00')])
        client = self.login('sales')
        # (another company's course is invisible to the user)
        for value in BAD_LISTS + [[[1]], [[course]], [[course, None, 1]],
                [None], [course], [[course, 7.9]], [[999999, None]],
                [[course, 999999]], [[self.cat['elsewhere'], None]],
                [[self.cat['course_b'], month]]] + [
                [[v, None]] for v in BAD_IDS if v is not None]:
            with self.subTest(items=value):
                self.assertRPCError(
                    client.model, 'course.course', 'sale_prices', value)

    # ---- Students ------------------------------------------------------

    def test_students_menu(self):
        """Courses > Students shows to Course Sales and Course
        Administration, not to Course Gifts nor to users without a course
        group; its list holds the parties with enrollments"""
        def ids():
            from trytond.pool import Pool
            ModelData = Pool().get('ir.model.data')
            return (ModelData.get_id('course', 'menu_student_form'),
                ModelData.get_id('course', 'act_student_form'))
        menu, action = self.run_transaction(ids)
        student = self.student()
        self.enrollment(student)
        visible = {'sales': True, 'manager': True, 'admin': True,
            'giver': False, 'nobody': False}
        for login, shown in visible.items():
            with self.subTest(login=login):
                client = self.login(login)
                self.assertEqual(bool(client.model(
                            'ir.ui.menu', 'search', [('id', '=', menu)],
                            0, None, None)), shown)
        client = self.login('sales')
        domain, = [d for d in client.model(
                'ir.action.act_window', 'read', [action], ['pyson_domain'])]
        students = client.model(
            'party.party', 'search', [('is_student', '=', True)],
            0, None, None)
        self.assertIn(student, students)
        self.assertIn('is_student', domain['pyson_domain'])
        enrollments, = client.model(
            'party.party', 'read', [student], ['enrollments'])
        self.assertEqual(len(enrollments['enrollments']), 1)

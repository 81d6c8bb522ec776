import datetime as dt
from decimal import Decimal

from trytond.model.exceptions import ValidationError
from trytond.modules.company.tests import (
    CompanyTestMixin, create_company, set_company)
from trytond.pool import Pool
from trytond.tests.test_tryton import ModuleTestCase, with_transaction
from trytond.transaction import Transaction

from trytond.modules.course.tests.tools import (
    create_catalog, set_company_language)


class CourseTestCase(CompanyTestMixin, ModuleTestCase):
    "Test Course module"
    module = 'course'

    def _catalog(self):
        company = create_company()
        with set_company(company):
            return company, create_catalog(company)

    @with_transaction()
    def test_company_currency(self):
        """A company's currency is kept with its digits and rounding, and
        found again when the currency or the company's currency changes"""
        from trytond.modules.course.tools import company_currency
        pool = Pool()
        Company = pool.get('company.company')
        Currency = pool.get('currency.currency')
        company = create_company()
        currency = company.currency
        kept = company_currency(company)
        self.assertEqual(
            (kept.id, kept.digits, kept.rounding),
            (currency.id, currency.digits, currency.rounding))
        self.assertEqual(company_currency(company.id).id, currency.id)
        Currency.write([currency], {'digits': 1, 'rounding': Decimal('0.1')})
        kept = company_currency(company)
        self.assertEqual((kept.digits, kept.rounding), (1, Decimal('0.1')))
        other, = Currency.create([{
                    'name': "Other", 'code': 'XOT', 'symbol': 'O',
                    'digits': 0, 'rounding': Decimal(1)}])
        Company.write([company], {'currency': other.id})
        kept = company_currency(company)
        self.assertEqual(
            (kept.id, kept.digits, kept.rounding), (other.id, 0, Decimal(1)))

    @with_transaction()
    def test_configuration_singleton(self):
        """The configuration's record is found once per process, and again
        once it is deleted or created"""
        from unittest.mock import patch

        from trytond.model import ModelSingleton
        Configuration = Pool().get('course.configuration')
        Configuration.delete(Configuration.search([]))
        self.assertIsNone(Configuration.get_singleton())
        config, = Configuration.create([{}])
        self.assertEqual(Configuration.get_singleton(), config)
        with patch.object(
                ModelSingleton, 'get_singleton',
                side_effect=AssertionError("searched again")):
            self.assertEqual(Configuration.get_singleton(), config)
            self.assertEqual(
                Configuration.read([1], ['id']), [{'id': 1}])
        Configuration.delete([config])
        self.assertIsNone(Configuration.get_singleton())
        again, = Configuration.create([{}])
        self.assertEqual(Configuration.get_singleton(), again)

    @with_transaction()
    def test_regular_price(self):
        "Without activity the unit price is the list price"
        company, cat = self._catalog()
        price = cat.course_a.get_sale_price()
        self.assertEqual(price.list_price, Decimal('1000.00'))
        self.assertEqual(price.unit_price, Decimal('1000.00'))
        self.assertEqual(price.discount_name, "Regular price")
        self.assertIsNone(price.activity)

    @with_transaction()
    def test_option_price(self):
        "An option sells the course at the option's price"
        company, cat = self._catalog()
        price = cat.course_a.get_sale_price(cat.option_a_month)
        self.assertEqual(price.list_price, Decimal('199.00'))
        self.assertEqual(price.unit_price, Decimal('199.00'))

    @with_transaction()
    def test_option_of_other_course(self):
        "An option of another course is refused"
        company, cat = self._catalog()
        with self.assertRaises(ValidationError):
            cat.course_b.get_sale_price(cat.option_a_month)

    def _activity(self, company, course, method, value, start=-1, end=1):
        pool = Pool()
        Activity = pool.get('course.activity')
        now = dt.datetime.now()
        activity, = Activity.create([{
                    'name': f"{method} {value}",
                    'company': company.id,
                    'start': now + dt.timedelta(days=start),
                    'end': now + dt.timedelta(days=end),
                    'lines': [('create', [{
                                    'course': course.id,
                                    'method': method,
                                    'value': value,
                                    }])],
                    }])
        return activity

    @with_transaction()
    def test_activity_methods(self):
        "Each activity method gives its price"
        company, cat = self._catalog()
        for method, value, expected in [
                ('free', None, Decimal('0.00')),
                ('percentage', Decimal(80), Decimal('800.00')),
                ('percentage', Decimal('33.33'), Decimal('333.30')),
                ('reduction', Decimal(100), Decimal('900.00')),
                ('reduction', Decimal(2000), Decimal('0.00')),
                ('fixed', Decimal('499'), Decimal('499.00')),
                ('fixed', Decimal('5000'), Decimal('1000.00')),
                ]:
            with self.subTest(method=method, value=value):
                activity = self._activity(
                    company, cat.course_a, method, value)
                price = cat.course_a.get_sale_price()
                self.assertEqual(price.unit_price, expected)
                self.assertEqual(price.list_price, Decimal('1000.00'))
                self.assertEqual(price.discount_name, activity.name)
                self.assertEqual(price.activity, activity)
                activity.delete([activity])

    @with_transaction()
    def test_activity_on_option(self):
        "An activity applies to the option's price"
        company, cat = self._catalog()
        self._activity(company, cat.course_a, 'percentage', Decimal(50))
        price = cat.course_a.get_sale_price(cat.option_a_month)
        self.assertEqual(price.unit_price, Decimal('99.50'))

    @with_transaction()
    def test_activity_overlap_lowest_wins(self):
        "Overlapping activities: the lowest price wins, free included"
        company, cat = self._catalog()
        self._activity(company, cat.course_a, 'percentage', Decimal(80))
        self._activity(company, cat.course_a, 'reduction', Decimal(300))
        self.assertEqual(
            cat.course_a.get_sale_price().unit_price, Decimal('700.00'))
        free = self._activity(company, cat.course_a, 'free', None)
        price = cat.course_a.get_sale_price()
        self.assertEqual(price.unit_price, Decimal('0.00'))
        self.assertEqual(price.activity, free)

    @with_transaction()
    def test_activity_not_running(self):
        "Planned and finished activities do not change the price"
        company, cat = self._catalog()
        planned = self._activity(
            company, cat.course_a, 'free', None, start=1, end=2)
        finished = self._activity(
            company, cat.course_a, 'free', None, start=-3, end=-1)
        self.assertEqual(planned.state, 'planned')
        self.assertEqual(finished.state, 'finished')
        self.assertEqual(
            cat.course_a.get_sale_price().unit_price, Decimal('1000.00'))
        # but a price asked for a time inside them sees them
        at = dt.datetime.now() - dt.timedelta(days=2)
        self.assertEqual(
            cat.course_a.get_sale_price(at=at).unit_price, Decimal('0.00'))

    @with_transaction()
    def test_sale_prices_one_query(self):
        "Pricing many items reads the activities once"
        company, cat = self._catalog()
        pool = Pool()
        Course = pool.get('course.course')
        self._activity(company, cat.course_a, 'percentage', Decimal(80))
        prices = Course.get_sale_prices([
                (cat.course_a, None), (cat.course_b, None),
                (cat.course_a, cat.option_a_month)])
        self.assertEqual(
            [p.unit_price for p in prices],
            [Decimal('800.00'), Decimal('500.00'), Decimal('159.20')])

    def assertRefused(self, text, func, *args, **kwargs):
        "Assert that func raises a ValidationError whose message has text"
        with self.assertRaises(ValidationError) as cm:
            func(*args, **kwargs)
        self.assertIn(text, cm.exception.message)

    @with_transaction()
    def test_negative_price_refused(self):
        "A negative course price is refused"
        Course = Pool().get('course.course')
        company, cat = self._catalog()
        self.assertRefused(
            'price of a course', Course.write, [cat.course_a],
            {'price': Decimal('-1')})

    @with_transaction()
    def test_negative_credit_refused(self):
        "A negative credit cap is refused"
        Course = Pool().get('course.course')
        company, cat = self._catalog()
        self.assertRefused(
            'credit cap', Course.write, [cat.course_a], {'credit': -1})

    @with_transaction()
    def test_category_of_other_direction_refused(self):
        "A category of another direction is refused"
        pool = Pool()
        Course = pool.get('course.course')
        Direction = pool.get('course.direction')
        company, cat = self._catalog()
        other, = Direction.create([{
                    'name': "Other",
                    'categories': [('create', [{'name': "Other"}])]}])
        self.assertRefused(
            'does not belong', Course.write, [cat.course_a],
            {'category': other.categories[0].id})

    @with_transaction()
    def test_negative_option_days_refused(self):
        "Negative option days are refused"
        Option = Pool().get('course.course.option')
        company, cat = self._catalog()
        self.assertRefused(
            'days of a validity option', Option.create, [{
                    'course': cat.course_a.id, 'name': "x", 'days': -1,
                    'price': Decimal(1)}])

    @with_transaction()
    def test_activity_end_before_start_refused(self):
        "An activity ending before it starts is refused"
        company, cat = self._catalog()
        self.assertRefused(
            'must end after it starts', self._activity, company,
            cat.course_a, 'free', None, start=1, end=-1)

    @with_transaction()
    def test_percentage_out_of_range_refused(self):
        "A percentage above 100 is refused"
        ActivityLine = Pool().get('course.activity.line')
        company, cat = self._catalog()
        activity = self._activity(
            company, cat.course_a, 'percentage', Decimal(10))
        self.assertRefused(
            'between 0 and 100', ActivityLine.write, activity.lines,
            {'value': Decimal(101)})

    @with_transaction()
    def test_enrollment_state_and_unique(self):
        "One live enrollment per student and course"
        pool = Pool()
        Enrollment = pool.get('course.enrollment')
        company, cat = self._catalog()
        past = dt.datetime.now() - dt.timedelta(days=30)
        ended, = Enrollment.create([{
                    'party': cat.student.id, 'course': cat.course_a.id,
                    'company': company.id, 'source': 'purchase',
                    'start': past, 'end': past + dt.timedelta(days=10)}])
        self.assertEqual(ended.state, 'ended')
        live, = Enrollment.create([{
                    'party': cat.student.id, 'course': cat.course_a.id,
                    'company': company.id, 'source': 'purchase'}])
        self.assertEqual(live.state, 'live')
        self.assertEqual(
            Enrollment.search([('state', '=', 'live')]), [live])
        self.assertEqual(
            Enrollment.search([('state', '=', 'ended')]), [ended])
        self.assertEqual(
            Enrollment.search([('state', 'in', ['live', 'ended'])],
                order=[('id', 'ASC')]), [ended, live])
        Enrollment.end_now([live])
        self.assertEqual(live.state, 'ended')
        renewed, = Enrollment.create([{
                    'party': cat.student.id, 'course': cat.course_a.id,
                    'company': company.id, 'source': 'purchase'}])
        self.assertEqual(renewed.state, 'live')
        # A failed create leaves its row in the transaction: check it last
        with self.assertRaises(ValidationError) as cm:
            Enrollment.create([{
                        'party': cat.student.id,
                        'course': cat.course_a.id,
                        'company': company.id, 'source': 'gift'}])
        self.assertIn('already has a live enrollment', cm.exception.message)

    @with_transaction()
    def test_enrollment_unique_in_one_create(self):
        """Two live enrollments of one student in a course created at once
        are refused; an ended one and enrollments of other courses or
        students pass"""
        pool = Pool()
        Enrollment = pool.get('course.enrollment')
        company, cat = self._catalog()
        past = dt.datetime.now() - dt.timedelta(days=30)
        values = {'party': cat.student.id, 'company': company.id,
            'source': 'purchase'}
        Enrollment.create([
                dict(values, course=cat.course_a.id),
                dict(values, course=cat.course_b.id),
                dict(values, course=cat.course_c.id, start=past,
                    end=past + dt.timedelta(days=1)),
                dict(values, course=cat.course_c.id),
                ])
        other, = pool.get('party.party').create([{'name': "Other"}])
        twice = dict(values, party=other.id, course=cat.course_c.id)
        with self.assertRaises(ValidationError) as cm:
            Enrollment.create([twice, twice])
        self.assertIn('already has a live enrollment', cm.exception.message)


    @with_transaction()
    def test_price_name_in_company_language(self):
        """Price names are the company's language, not the caller's: the
        regular price's and an activity's (order lines keep them)"""
        pool = Pool()
        Activity = pool.get('course.activity')
        company, cat = self._catalog()
        with set_company(company):
            self.assertEqual(
                cat.course_a.get_sale_price().discount_name, "Regular price")
            set_company_language(company, 'zh_CN')
            for language in ['en', 'zh_CN']:
                with Transaction().set_context(language=language):
                    self.assertEqual(
                        cat.course_a.get_sale_price().discount_name,
                        "原价购买")
            activity = self._activity(
                company, cat.course_a, 'percentage', Decimal(80))
            with Transaction().set_context(language='zh_CN'):
                Activity.write([activity], {'name': "春季特惠"})
            with Transaction().set_context(language='en'):
                self.assertEqual(Activity(activity.id).name, "percentage 80")
                self.assertEqual(
                    cat.course_a.get_sale_price().discount_name, "春季特惠")

    @with_transaction()
    def test_price_name_without_company_language(self):
        "A company without language: the database's (English)"
        company, cat = self._catalog()
        with set_company(company), Transaction().set_context(
                language='zh_CN'):
            self.assertEqual(
                cat.course_a.get_sale_price().discount_name, "Regular price")

    @with_transaction()
    def test_user_default_language(self):
        """A user created in a company whose language is loaded speaks it;
        otherwise (no company, language not loaded) the database's"""
        pool = Pool()
        Lang = pool.get('ir.lang')
        User = pool.get('res.user')
        company = create_company()
        with set_company(company):
            self.assertIsNone(User.default_language())
            french, = Lang.search([('code', '=', 'fr')])
            Party = pool.get('party.party')
            party = Party(company.party.id)
            party.lang = french
            party.save()
            self.assertFalse(french.translatable)
            self.assertIsNone(User.default_language())
            chinese = set_company_language(company, 'zh_CN')
            user, = User.create([{'name': "Staff", 'login': 'staff'}])
            self.assertEqual(user.language, chinese)
            self.assertEqual(User(user.id).get_preferences(True)[
                    'language'], 'en')  # the preferences of root
        with Transaction().set_context(company=None):
            self.assertIsNone(User.default_language())

    @with_transaction()
    def test_students(self):
        """Students are the parties holding enrollments in the current
        company; searchable both ways"""
        pool = Pool()
        Enrollment = pool.get('course.enrollment')
        Party = pool.get('party.party')
        company, cat = self._catalog()
        other_company = create_company("Other School")
        with set_company(other_company):
            other_cat = create_catalog(other_company)
        Enrollment.create([{
                    'party': cat.student.id, 'course': cat.course_a.id,
                    'company': company.id, 'source': 'free'}, {
                    'party': other_cat.student.id,
                    'course': other_cat.course_a.id,
                    'company': other_company.id, 'source': 'free'}])
        with set_company(company):
            self.assertEqual(
                Party.search([('is_student', '=', True)]), [cat.student])
            self.assertNotIn(
                cat.student, Party.search([('is_student', '=', False)]))
            self.assertIn(
                cat.other_student,
                Party.search([('is_student', '!=', True)]))
            # Browsed here: a record reads in the context it was made in
            self.assertEqual(
                [p.is_student for p in Party.browse([cat.student,
                            cat.other_student, other_cat.student])],
                [True, False, False])
            self.assertEqual(
                [e.course for e in Party(cat.student.id).enrollments],
                [cat.course_a])
        with set_company(other_company):
            self.assertEqual(
                Party.search([('is_student', '=', True)]),
                [other_cat.student])
        with Transaction().set_context(company=None):
            self.assertEqual(
                Party.search([('is_student', '=', True)],
                    order=[('id', 'ASC')]),
                [cat.student, other_cat.student])


del ModuleTestCase

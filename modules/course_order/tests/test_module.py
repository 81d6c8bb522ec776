import datetime as dt
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.modules.company.tests import CompanyTestMixin, create_company
from trytond.modules.course.tests.tools import create_catalog
from trytond.modules.course_order.tests.tools import (
    StatementCounter, checkout)
from trytond.pool import Pool
from trytond.tests.test_tryton import ModuleTestCase, with_transaction
from trytond.transaction import Transaction


class CourseOrderTestCase(CompanyTestMixin, ModuleTestCase):
    "Test Course Order module"
    module = 'course_order'

    def setUp(self):
        super().setUp()
        self._steps = None

    def catalog(self):
        company = create_company()
        # The whole test runs in this company (the transaction ends with it)
        transaction = Transaction()
        transaction.context = dict(transaction.context, company=company.id)
        return create_catalog(company)

    def activity(self, course, method, value=None):
        Activity = Pool().get('course.activity')
        now = dt.datetime.now()
        activity, = Activity.create([{
                    'name': f"限时{method}",
                    'start': now - dt.timedelta(days=1),
                    'end': now + dt.timedelta(days=1),
                    'lines': [('create', [{
                                    'course': course.id, 'method': method,
                                    'value': value}])],
                    }])
        return activity

    def assertCheckoutRefused(self, text, party, *items, **kwargs):
        "The checkout is refused with text and leaves no order behind"
        Order = Pool().get('course.order')
        before = Order.search([], count=True)
        with self.assertRaises(UserError) as cm:
            checkout(party, *items, **kwargs)
        self.assertIn(text, cm.exception.message)
        self.assertEqual(Order.search([], count=True), before)

    def with_discount(self, amount, lines=None):
        "Add a test discount step taking amount off (some of) the lines"
        Order = Pool().get('course.order')

        def step(cls, checkout):
            targets = [checkout.lines[i] for i in lines] if lines else (
                checkout.lines)
            checkout.add_discount(None, Decimal(amount), targets, "test")
        Order.checkout_discount_test = classmethod(step)
        Order._discount_steps.append((50, 'test'))
        self.addCleanup(Order._discount_steps.remove, (50, 'test'))

    @with_transaction()
    def test_checkout_prices(self):
        "Lines carry list price, unit price and price name"
        cat = self.catalog()
        self.activity(cat.course_b, 'percentage', Decimal(80))
        order = checkout(
            cat.student, (cat.course_a, cat.option_a_month), cat.course_b)
        a, b = order.lines
        self.assertEqual(order.state, 'unpaid')
        self.assertEqual(order.pay_method, 'manual')
        self.assertEqual(
            (a.list_price, a.unit_price, a.discount_name),
            (Decimal('199.00'), Decimal('199.00'), "Regular price"))
        self.assertEqual(
            (b.list_price, b.unit_price, b.discount_name),
            (Decimal('500.00'), Decimal('400.00'), "限时percentage"))
        self.assertEqual(order.total_amount, Decimal('599.00'))
        self.assertEqual(order.discount_amount, Decimal('0.00'))
        self.assertEqual(order.payable_amount, Decimal('599.00'))
        self.assertEqual(sum(l.amount for l in order.lines),
            order.payable_amount)
        self.assertTrue(order.number.isdigit())
        self.assertTrue(order.number.startswith(
                dt.date.today().strftime('%Y%m%d')))
        self.assertAlmostEqual(
            (order.pay_deadline - order.create_date).total_seconds(), 900,
            delta=5)

    @with_transaction()
    def test_free_activity_paid_at_once(self):
        "A free activity makes the order paid at once with enrollments"
        cat = self.catalog()
        self.activity(cat.course_c, 'free')
        order = checkout(cat.student, cat.course_c, pay_method='manual')
        self.assertEqual(order.payable_amount, Decimal('0.00'))
        self.assertEqual(order.pay_method, 'free')
        self.assertEqual(order.state, 'paid')
        self.assertTrue(order.paid_at)
        enrollment, = order.enrollments
        self.assertEqual(enrollment.course, cat.course_c)
        self.assertEqual(enrollment.source, 'free')
        self.assertIsNone(enrollment.end)
        self.assertEqual(enrollment.order_line, order.lines[0])

    @with_transaction()
    def test_discount_allocation_awkward(self):
        "Σ line amounts = payable for awkward splits"
        pool = Pool()
        Course = pool.get('course.course')
        cat = self.catalog()
        Course.write([cat.course_a, cat.course_b, cat.course_c],
            {'price': Decimal('33.33')})
        self.with_discount('10.00')
        order = checkout(
            cat.student, cat.course_a, cat.course_b, cat.course_c)
        self.assertEqual(order.total_amount, Decimal('99.99'))
        self.assertEqual(order.discount_amount, Decimal('10.00'))
        self.assertEqual(order.payable_amount, Decimal('89.99'))
        amounts = [l.amount for l in order.lines]
        self.assertEqual(sum(amounts), Decimal('89.99'))
        self.assertEqual(sorted(amounts),
            [Decimal('29.99'), Decimal('30.00'), Decimal('30.00')])
        for line in order.lines:
            self.assertEqual(
                line.discount_amount + line.amount, line.unit_price)
        discount, = order.discounts
        self.assertEqual(discount.amount, Decimal('10.00'))
        self.assertEqual(len(discount.lines), 3)

    @with_transaction()
    def test_discount_on_some_lines_capped(self):
        "A discount applies to its lines only and never below zero"
        cat = self.catalog()
        self.with_discount('700', lines=[1])
        order = checkout(cat.student, cat.course_a, cat.course_b)
        a, b = order.lines
        self.assertEqual(a.amount, Decimal('1000.00'))
        self.assertEqual(b.amount, Decimal('0.00'))
        self.assertEqual(order.discount_amount, Decimal('500.00'))
        self.assertEqual(order.payable_amount, Decimal('1000.00'))

    @with_transaction()
    def test_full_discount_paid_at_once(self):
        "A discount of everything pays the order at once"
        cat = self.catalog()
        self.with_discount('5000')
        order = checkout(cat.student, cat.course_b)
        self.assertEqual(order.payable_amount, Decimal('0.00'))
        self.assertEqual(order.state, 'paid')
        self.assertEqual(len(order.enrollments), 1)

    @with_transaction()
    def test_refuse_empty(self):
        "An empty selection is refused"
        cat = self.catalog()
        self.assertCheckoutRefused("at least one course", cat.student)

    @with_transaction()
    def test_refuse_unknown_course(self):
        "An unknown course is refused"
        pool = Pool()
        Order = pool.get('course.order')
        cat = self.catalog()
        with self.assertRaises(UserError) as cm:
            Order.checkout(cat.student.id, [{'course': 999999}])
        self.assertIn("no course with id 999999", cm.exception.message)

    @with_transaction()
    def test_refuse_unpublished(self):
        "An unpublished course is refused"
        Course = Pool().get('course.course')
        cat = self.catalog()
        Course.write([cat.course_b], {'published': False})
        self.assertCheckoutRefused("not for sale", cat.student, cat.course_b)

    @with_transaction()
    def test_refuse_inactive(self):
        "An inactive course is refused"
        Course = Pool().get('course.course')
        cat = self.catalog()
        Course.write([cat.course_b], {'active': False})
        self.assertCheckoutRefused(
            "not for sale", cat.student, cat.course_a, cat.course_b)

    @with_transaction()
    def test_refuse_option_of_other_course(self):
        "An option of another course is refused"
        cat = self.catalog()
        self.assertCheckoutRefused(
            "is not an option of course", cat.student,
            (cat.course_b, cat.option_a_month))

    @with_transaction()
    def test_refuse_twice(self):
        "The same course twice is refused"
        cat = self.catalog()
        self.assertCheckoutRefused(
            "selected twice", cat.student, cat.course_a,
            (cat.course_a, cat.option_a_month))

    @with_transaction()
    def test_refuse_owned(self):
        "A course the student owns is refused; an ended one can be renewed"
        Enrollment = Pool().get('course.enrollment')
        cat = self.catalog()
        enrollment, = Enrollment.create([{
                    'party': cat.student.id, 'course': cat.course_b.id}])
        self.assertCheckoutRefused(
            "already own course", cat.student, cat.course_a, cat.course_b)
        Enrollment.end_now([enrollment])
        order = checkout(cat.student, cat.course_b)
        self.assertEqual(order.state, 'unpaid')

    @with_transaction()
    def test_refuse_pending(self):
        "A course already in an unpaid order is refused"
        cat = self.catalog()
        first = checkout(cat.student, cat.course_a)
        self.assertCheckoutRefused(
            f'already in your unpaid order "{first.number}"', cat.student,
            cat.course_b, cat.course_a)
        # another student is not concerned
        checkout(cat.other_student, cat.course_a)

    @with_transaction()
    def test_refuse_unknown_option_and_method(self):
        "Unknown options and payment methods are refused"
        cat = self.catalog()
        self.assertCheckoutRefused(
            "Unknown checkout options: grants", cat.student, cat.course_a,
            grants=[1])
        self.assertCheckoutRefused(
            'Unknown payment method "bitcoin"', cat.student, cat.course_a,
            pay_method='bitcoin')
        self.assertCheckoutRefused(
            "cannot be checked out as free", cat.student, cat.course_a,
            pay_method='free')

    @with_transaction()
    def test_cancel(self):
        "Cancel an unpaid order; cancelling again is refused"
        Order = Pool().get('course.order')
        cat = self.catalog()
        order = checkout(cat.student, cat.course_a)
        Order.cancel([order])
        self.assertEqual(order.state, 'cancelled')
        self.assertTrue(order.cancelled_at)
        with self.assertRaises(UserError) as cm:
            Order.cancel([order])
        self.assertIn("is Cancelled", cm.exception.message)
        with self.assertRaises(UserError):
            Order.confirm_payment([order])
        # the course can be ordered again
        self.assertEqual(checkout(cat.student, cat.course_a).state, 'unpaid')

    @with_transaction()
    def test_manual_confirm_idempotent(self):
        "Confirming a manual payment creates the enrollments once"
        Order = Pool().get('course.order')
        cat = self.catalog()
        order = checkout(
            cat.student, (cat.course_a, cat.option_a_month), cat.course_b)
        Order.confirm_payment([order])
        self.assertEqual(order.state, 'paid')
        paid_at = order.paid_at
        self.assertEqual(len(order.enrollments), 2)
        month = [e for e in order.enrollments if e.course == cat.course_a][0]
        self.assertEqual(month.end - month.start, dt.timedelta(days=30))
        Order.confirm_payment([order])
        Order.pay([order])
        self.assertEqual(order.paid_at, paid_at)
        self.assertEqual(len(order.enrollments), 2)
        with self.assertRaises(UserError):
            Order.cancel([order])

    @with_transaction()
    def test_refund_ends_enrollments(self):
        "Refunding a manual order ends its enrollments"
        Order = Pool().get('course.order')
        cat = self.catalog()
        order = checkout(cat.student, cat.course_a)
        with self.assertRaises(UserError):
            Order.refund([order])
        Order.confirm_payment([order])
        Order.refund([order])
        self.assertEqual(order.state, 'refunded')
        self.assertTrue(order.refunded_at)
        self.assertEqual(
            {e.state for e in order.enrollments}, {'ended'})
        # the student may buy it again
        self.assertEqual(checkout(cat.student, cat.course_a).state, 'unpaid')

    @with_transaction()
    def test_expire_by_cron(self):
        "The cron job expires unpaid orders past their deadline only"
        pool = Pool()
        Order = pool.get('course.order')
        Cron = pool.get('ir.cron')
        cat = self.catalog()
        late = checkout(cat.student, cat.course_a)
        on_time = checkout(cat.student, cat.course_b)
        paid = checkout(cat.other_student, cat.course_a)
        Order.confirm_payment([paid])
        Order.write([late, paid], {
                'pay_deadline': dt.datetime.now() - dt.timedelta(minutes=1)})
        cron, = Cron.search([('method', '=', 'course.order|expire_overdue')])
        self.assertEqual(cron.interval_type, 'minutes')
        with Transaction().set_context(company=cat.company.id):
            expired = Order.expire_overdue(batch_size=1)
        self.assertEqual(expired, [late])
        self.assertEqual(late.state, 'expired')
        self.assertTrue(late.cancelled_at)
        self.assertEqual(on_time.state, 'unpaid')
        self.assertEqual(paid.state, 'paid')
        with self.assertRaises(UserError):
            Order.confirm_payment([late])
        self.assertEqual(Order.expire_overdue(), [])

    @with_transaction()
    def test_expire_asks_payment_method(self):
        "An order the provider reports paid is fulfilled, not expired"
        Order = Pool().get('course.order')
        cat = self.catalog()
        order = checkout(cat.student, cat.course_a)
        Order.write([order], {
                'pay_deadline': dt.datetime.now() - dt.timedelta(minutes=1)})
        Order._payment_query_manual = classmethod(lambda cls, orders: orders)
        self.addCleanup(delattr, Order, '_payment_query_manual')
        self.assertEqual(Order.expire_overdue(), [])
        self.assertEqual(order.state, 'paid')
        self.assertEqual(len(order.enrollments), 1)

    @with_transaction()
    def test_delete_only_closed(self):
        "Only cancelled or expired orders can be deleted"
        Order = Pool().get('course.order')
        cat = self.catalog()
        order = checkout(cat.student, cat.course_a)
        with self.assertRaises(UserError):
            Order.delete([order])
        Order.cancel([order])
        Order.delete([order])

    @with_transaction()
    def test_checkout_statements_constant(self):
        "The SQL statements of a checkout do not grow with its lines"
        from trytond import backend
        if backend.name != 'postgresql':
            self.skipTest("SQLite inserts rows one by one")
        pool = Pool()
        Course = pool.get('course.course')
        Order = pool.get('course.order')
        cat = self.catalog()
        courses = Course.copy([cat.course_b] * 12)
        Course.write(courses, {'published': True})
        self.activity(courses[0], 'percentage', Decimal(50))
        # Warm the caches (sequence, configuration, translations)
        Order.cancel([checkout(cat.other_student, cat.course_c)])
        counts = []
        # (a single row is inserted without asking for ids first, so start
        # from two lines)
        for student, selection in [
                (cat.student, courses[:2]),
                (cat.other_student, courses[2:5]),
                (cat.student, courses[5:12])]:
            with StatementCounter() as counter:
                checkout(student, *selection)
            counts.append(counter.count)
        self.assertEqual(len(set(counts)), 1, counts)

    @with_transaction()
    def test_order_list_statements_constant(self):
        "Reading the order list costs the same for 1 or 10 orders"
        pool = Pool()
        Course = pool.get('course.course')
        Order = pool.get('course.order')
        cat = self.catalog()
        courses = Course.copy([cat.course_b] * 10)
        Course.write(courses, {'published': True})
        for course in courses:
            checkout(cat.student, course)
        fields = ['number', 'party.rec_name', 'order_date', 'title',
            'payable_amount', 'pay_method', 'pay_deadline', 'state']
        counts = []
        for limit in [1, 10]:
            ids = [o.id for o in Order.search([], limit=limit)]
            Transaction().counter += 1  # start from cold record caches
            with StatementCounter() as counter:
                Order.read(ids, fields)
            counts.append(counter.count)
        self.assertEqual(counts[0], counts[1], counts)


del ModuleTestCase

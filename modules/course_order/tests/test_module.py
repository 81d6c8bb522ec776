import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from unittest.mock import Mock, patch

from trytond.exceptions import ConcurrencyException, UserError
from trytond.i18n import gettext
from trytond.modules.company.tests import CompanyTestMixin, create_company
from trytond.modules.course.tests.tools import (
    create_activity, create_catalog, set_company_language)
from trytond.modules.course.tools import now as utcnow
from trytond.modules.course_order.tests.tools import (
    StatementCounter, checkout, item, plug, sell_kind)
from trytond.pool import Pool
from trytond.pyson import PYSONDecoder, PYSONEncoder
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
        return create_activity(course, method, value, name=f"限时{method}")

    def assertCheckoutRefused(self, text, party, *items, **kwargs):
        "The checkout is refused with text and leaves no order behind"
        Order = Pool().get('course.order')
        before = Order.search([], count=True)
        with self.assertRaises(UserError) as cm:
            checkout(party, *items, **kwargs)
        self.assertIn(text, cm.exception.message)
        self.assertEqual(Order.search([], count=True), before)

    def plug(self, Model, **attributes):
        "Set attributes of Model for the test, as a module's extension would"
        plug(self, Model, **attributes)

    def with_discount(self, amount, lines=None):
        "Add a test discount step taking amount off (some of) the lines"
        Order = Pool().get('course.order')

        def step(cls, checkout):
            targets = [checkout.lines[i] for i in lines] if lines else (
                checkout.lines)
            checkout.add_discount(None, Decimal(amount), targets, "test")
        steps = Order._get_discount_steps
        self.plug(
            Order, checkout_discount_test=classmethod(step),
            _get_discount_steps=classmethod(
                lambda cls: steps() + [(50, 'test')]))

    def sell_kind(self, kind, Product, price, fulfil=None, revoke=None):
        sell_kind(self, kind, Product, price, fulfil, revoke)

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
    def test_checkout_preview(self):
        "A preview prices like the checkout and saves nothing"
        pool = Pool()
        Order = pool.get('course.order')
        cat = self.catalog()
        self.activity(cat.course_b, 'percentage', Decimal(80))
        items = [item(cat.course_a, cat.option_a_month), item(cat.course_b)]
        self.with_discount(50, lines=[1])
        preview = Order.checkout_preview(cat.student.id, items, {})
        self.assertTrue(preview.preview)
        self.assertIsNone(preview.order.id)
        self.assertEqual(Order.search([], count=True), 0)
        self.assertEqual(
            [l.unit_price for l in preview.lines],
            [Decimal('199.00'), Decimal('400.00')])
        self.assertEqual(preview.total, Decimal('599.00'))
        self.assertEqual(preview.payable, Decimal('549.00'))
        self.assertEqual(Order.checkout_preview_info(preview), {})
        # The order then costs what the preview said
        order = Order.checkout(cat.student.id, items, 'manual', {})
        self.assertEqual(order.payable_amount, preview.payable)
        self.assertEqual(
            [l.amount for l in order.lines],
            [preview.remaining[l] for l in preview.lines])
        # Refused like the checkout: the courses are now pending
        with self.assertRaises(UserError):
            Order.checkout_preview(cat.student.id, items, {})
        with self.assertRaises(UserError):
            Order.checkout_preview(cat.student.id, [], {})

    @with_transaction()
    def test_number_unique(self):
        "Order numbers are distinct digits; the database refuses a duplicate"
        Order = Pool().get('course.order')
        cat = self.catalog()
        first = checkout(cat.student, cat.course_a)
        second = checkout(cat.student, cat.course_b)
        self.assertNotEqual(first.number, second.number)
        self.assertTrue(second.number.isdigit())
        with self.assertRaises(UserError) as cm:
            Order.write([second], {'number': first.number})
        self.assertIn("must be unique in its company", cm.exception.message)

    @with_transaction()
    def test_number_sequence_per_company(self):
        """A company with its own order sequence numbers its orders with it;
        the others keep the shared one"""
        pool = Pool()
        Configuration = pool.get('course.configuration')
        Sequence = pool.get('ir.sequence')
        ModelData = pool.get('ir.model.data')
        cat = self.catalog()
        company = cat.course_a.company
        shared = Sequence(ModelData.get_id('course_order', 'sequence_order'))
        own, = Sequence.create([{
                    'name': "Orders of the test company",
                    'sequence_type': ModelData.get_id(
                        'course_order', 'sequence_type_order'),
                    'company': company.id,
                    'prefix': '9',
                    'padding': 4,
                    }])
        config = Configuration(1)
        self.assertEqual(
            config.get_multivalue('order_sequence', company=company.id),
            shared)
        config.order_sequence = own  # the context's company
        config.save()
        other = create_company(name="Other School")
        config = Configuration(1)
        self.assertEqual(
            config.get_multivalue('order_sequence', company=company.id), own)
        self.assertEqual(
            config.get_multivalue('order_sequence', company=other.id),
            shared)
        order = checkout(cat.student, cat.course_a)
        self.assertEqual(order.number, '90001')
        self.assertEqual(order.company, company)

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

    def assertRawCheckoutRefused(self, text, party, items):
        "A checkout of raw items is refused with text, leaving no order"
        pool = Pool()
        Order = pool.get('course.order')
        Line = pool.get('course.order.line')
        before = Order.search([], count=True), Line.search([], count=True)
        with self.assertRaises(UserError) as cm:
            Order.checkout(party.id, items)
        self.assertIn(text, cm.exception.message)
        self.assertEqual(
            (Order.search([], count=True), Line.search([], count=True)),
            before)

    @with_transaction()
    def test_refuse_unknown_course(self):
        "An unknown course or option is refused"
        cat = self.catalog()
        self.assertRawCheckoutRefused(
            "no course with id 999999", cat.student,
            [{'course': cat.course_a.id}, {'course': 999999}])
        self.assertRawCheckoutRefused(
            "no validity option with id 999998", cat.student,
            [{'course': cat.course_a.id, 'option': 999998}])

    @with_transaction()
    def test_refuse_bad_items(self):
        "Items without a course, with unknown keys or bad ids are refused"
        cat = self.catalog()
        course = cat.course_a.id
        for items, text in [
                ([{'option': cat.option_a_month.id}], "needs a course"),
                ([None], "needs a course"),
                ([{}], "needs a course"),
                ([{'course': 'abc'}], "of \"course\" is not valid"),
                ([{'course': 7.9}], "of \"course\" is not valid"),
                ([{'course': course, 'option': 0}],
                    "of \"option\" is not valid"),
                ([{'course': course, 'opton': 1}],
                    "Unknown keys in an item to check out: opton"),
                ([course], "of \"items\" is not valid"),
                (course, "of \"items\" is not valid"),
                ]:
            with self.subTest(items=items):
                self.assertRawCheckoutRefused(text, cat.student, items)

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
        permanent, = [
            e for e in order.enrollments if e.course == cat.course_b]
        self.assertIsNone(permanent.end)
        self.assertEqual(
            {(e.source, e.state, e.order_line.order) for e in
                order.enrollments}, {('purchase', 'live', order)})
        end = month.end
        Order.confirm_payment([order])
        Order.pay([order])
        Order.fulfil([order])  # as a late provider notification would
        self.assertEqual(order.paid_at, paid_at)
        self.assertEqual(len(order.enrollments), 2)
        self.assertEqual(month.end, end)  # not extended by itself
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
    def test_refund_takes_back_extension(self):
        """A course the student got meanwhile is extended on payment; the
        refund takes the days (or the permanence) back"""
        pool = Pool()
        Order = pool.get('course.order')
        Enrollment = pool.get('course.enrollment')
        cat = self.catalog()
        month = checkout(cat.student, (cat.course_a, cat.option_a_month))
        forever = checkout(cat.other_student, cat.course_a)
        end = utcnow().replace(microsecond=0) + dt.timedelta(days=10)
        # staff give the course while the orders wait for their payment
        gift, gift2 = Enrollment.create([{
                    'party': party.id, 'course': cat.course_a.id,
                    'source': 'gift', 'end': end,
                    } for party in [cat.student, cat.other_student]])
        Order.confirm_payment([month, forever])
        self.assertEqual(month.enrollments, ())
        self.assertEqual(gift.end, end + dt.timedelta(days=30))
        self.assertIsNone(gift2.end)
        line, = month.lines
        self.assertEqual(line.extended_enrollment, gift)
        self.assertEqual(line.extended_end, end)
        Order.fulfil([month, forever])  # gives once
        self.assertEqual(gift.end, end + dt.timedelta(days=30))

        Order.refund([month, forever])
        self.assertEqual(gift.end, end)
        self.assertEqual(gift2.end, end)
        self.assertEqual({gift.state, gift2.state}, {'live'})

    @with_transaction()
    def test_checkout_lines_saved_checked(self):
        """The checkout's lines and discounts are inserted without create's
        validation: the same rows, links and ids as save() gives them"""
        pool = Pool()
        Line = pool.get('course.order.line')
        Discount = pool.get('course.order.discount')
        cat = self.catalog()
        Order = pool.get('course.order')
        self.with_discount('100', lines=[0, 1])
        saved = []
        save = Line.save

        def recorded_save(records):
            saved.append(records)
            return save(records)
        with patch.object(Line, 'save', recorded_save):
            order = checkout(cat.student, cat.course_a, cat.course_b,
                cat.course_c)
        self.assertEqual(saved, [])
        Transaction().counter += 1  # read from the database
        order = Order(order.id)
        lines = Line.search([('order', '=', order.id)], order=[('id', 'ASC')])
        self.assertEqual([l.course for l in lines],
            [cat.course_a, cat.course_b, cat.course_c])
        self.assertEqual([str(l.product) for l in lines],
            [f'course.course,{c.id}'
                for c in [cat.course_a, cat.course_b, cat.course_c]])
        self.assertEqual(sum(l.amount for l in lines), order.payable_amount)
        self.assertEqual(
            [l.amount + l.discount_amount for l in lines],
            [l.unit_price for l in lines])
        self.assertTrue(all(l.create_uid and l.create_date for l in lines))
        discount, = Discount.search([('order', '=', order.id)])
        self.assertEqual(discount.amount, Decimal('100'))
        self.assertEqual(set(discount.lines), set(lines[:2]))
        self.assertEqual(
            sum(l.discount_amount for l in lines), Decimal('100'))

    @with_transaction()
    def test_checkout_run_records_saved(self):
        """checkout_run gives the checkout it saved: each line record has
        the id of its row, and discount_totals what the discounts took"""
        pool = Pool()
        Line = pool.get('course.order.line')
        Order = pool.get('course.order')
        cat = self.catalog()
        self.with_discount('100', lines=[0, 1])
        courses = [cat.course_c, cat.course_a, cat.course_b]
        run = Order.checkout_run(
            cat.student.id, [{'course': c.id} for c in courses], 'manual')
        in_memory = {l.id: l.course for l in run.lines}
        Transaction().counter += 1  # read from the database
        self.assertEqual(
            {l.id: l.course for l in Line.browse(list(in_memory))},
            in_memory)
        self.assertEqual([in_memory[l.id] for l in run.lines], courses)
        self.assertEqual(run.discount_totals, {None: Decimal('100')})
        self.assertEqual(
            sum(d.amount for d in Order(run.order.id).discounts),
            Decimal('100'))

    @with_transaction()
    def test_pay_written_checked(self):
        """Paying writes the date and the state by one UPDATE each, not by
        write(), and logs the transition as the workflow does"""
        pool = Pool()
        Order = pool.get('course.order')
        Log = pool.get('ir.model.log')
        cat = self.catalog()
        order = checkout(cat.student, cat.course_a)
        writes, validated = [], []
        write = Order.write
        validate_fields = Order.validate_fields

        def recorded_write(*args):
            writes.append(args)
            return write(*args)

        def recorded_validate_fields(orders, field_names):
            validated.append(set(field_names))
            return validate_fields(orders, field_names)
        with patch.object(Order, 'write', recorded_write), \
                patch.object(Order, 'validate_fields',
                    recorded_validate_fields):
            Order.pay([order])
        self.assertEqual(writes, [])
        # The model's field rules still run on what was written
        self.assertEqual(validated, [{'paid_at'}, {'state'}])
        Transaction().counter += 1
        order = Order(order.id)
        self.assertEqual(order.state, 'paid')
        self.assertTrue(order.paid_at)
        self.assertEqual(len(order.enrollments), 1)
        log, = Log.search([
                ('resource', '=', str(order)), ('event', '=', 'transition')])
        self.assertEqual(
            (log.target, log.user.id), ('state:paid', Transaction().user))

    @with_transaction()
    def test_confirm_payment_with_client_timestamp(self):
        """A client's button sends the order's timestamp: paying checks it
        once, as write() does, and the writes after it go through"""
        Order = Pool().get('course.order')
        cat = self.catalog()
        order = checkout(cat.student, cat.course_a)
        # As saved in an earlier transaction: a write now changes the stamp
        table = Order.__table__()
        transaction = Transaction()
        transaction.connection.cursor().execute(*table.update(
                [table.write_date], [dt.datetime(2020, 1, 1)],
                where=table.id == order.id))
        timestamp, = Order.read([order.id], ['_timestamp'])
        transaction.timestamp[str(order)] = timestamp['_timestamp']
        Order.confirm_payment([order])
        self.assertEqual(transaction.timestamp, {})
        self.assertEqual(Order(order.id).state, 'paid')

        # A stale one is refused
        other = checkout(cat.student, cat.course_b)
        transaction.timestamp[str(other)] = '1'
        with self.assertRaises(ConcurrencyException):
            Order.confirm_payment([other])

    @with_transaction()
    def test_pay_written_by_orm_with_trigger(self):
        "A write trigger on orders: paying writes them by write()"
        pool = Pool()
        Order = pool.get('course.order')
        Trigger = pool.get('ir.trigger')
        cat = self.catalog()
        order = checkout(cat.student, cat.course_a)
        get_triggers = Trigger.get_triggers
        trigger = Mock()
        trigger.eval.return_value = False

        def triggers(model, mode):
            if model == Order.__name__ and mode == 'write':
                return [trigger]
            return get_triggers(model, mode)
        writes = []
        write = Order.write

        def recorded_write(*args):
            writes.append(args[1])
            return write(*args)
        with patch.object(Order, 'write', recorded_write), \
                patch.object(Trigger, 'get_triggers', triggers), \
                patch.object(Trigger, 'eval', lambda t, r: False):
            Order.pay([order])
        self.assertEqual(
            [set(v) for v in writes], [{'paid_at'}, {'state'}])
        self.assertEqual(trigger.queue_trigger_action.call_count, 2)
        self.assertEqual(Order(order.id).state, 'paid')

    @with_transaction()
    def test_write_checked_columns(self):
        """write_checked UPDATEs plain stored columns only: a relation or a
        function field goes by write()"""
        from trytond.modules.course.tools import _plain_columns
        Order = Pool().get('course.order')
        self.assertTrue(_plain_columns(Order, {'paid_at': None}))
        self.assertTrue(_plain_columns(Order, {'state': 'paid'}))
        # company, number: a SQL constraint holds them, the database checks
        self.assertTrue(_plain_columns(Order, {'number': 'X'}))
        self.assertTrue(_plain_columns(Order, {'company': 1}))
        self.assertFalse(_plain_columns(Order, {'lines': []}))
        self.assertFalse(_plain_columns(Order, {'title': 'x'}))
        self.assertFalse(_plain_columns(Order, {'nothing': 1}))

    @with_transaction()
    def test_checked_constraint_message(self):
        """A SQL constraint broken by write_checked or save_checked gives
        the constraint's message, as write() and create() do"""
        from trytond.model.exceptions import SQLConstraintError
        from trytond.modules.course.tools import write_checked
        Order = Pool().get('course.order')
        cat = self.catalog()
        first = checkout(cat.student, cat.course_a)
        second = checkout(cat.student, cat.course_b)
        with self.assertRaises(SQLConstraintError) as raised:
            write_checked(Order, [second], {'number': first.number})
        self.assertEqual(raised.exception.message, gettext(
                'course_order.msg_order_number_unique'))

    @with_transaction()
    def test_save_checked_constraint_message(self):
        "An order saved by save_checked with a number taken: its message"
        from trytond.model.exceptions import SQLConstraintError
        from trytond.modules.course.tools import save_checked
        Order = Pool().get('course.order')
        cat = self.catalog()
        first = checkout(cat.student, cat.course_a)
        copy = Order(
            party=first.party, company=first.company,
            currency=first.currency, number=first.number,
            pay_method='manual', total_amount=first.total_amount,
            payable_amount=first.payable_amount,
            discount_amount=first.discount_amount)
        with self.assertRaises(SQLConstraintError) as raised:
            save_checked(Order, [copy])
        self.assertEqual(raised.exception.message, gettext(
                'course_order.msg_order_number_unique'))

    @with_transaction()
    def test_checkout_lines_saved_by_orm_with_trigger(self):
        "A create trigger on order lines: the checkout saves them by save()"
        pool = Pool()
        Line = pool.get('course.order.line')
        Trigger = pool.get('ir.trigger')
        cat = self.catalog()
        saved = []
        save = Line.save

        def recorded_save(records):
            saved.append(list(records))
            return save(records)
        get_triggers = Trigger.get_triggers
        trigger = Mock()

        def triggers(model, mode):
            if model == Line.__name__ and mode == 'create':
                return [trigger]
            return get_triggers(model, mode)
        with patch.object(Line, 'save', recorded_save), \
                patch.object(Trigger, 'get_triggers', triggers):
            order = checkout(cat.student, cat.course_a, cat.course_b)
        self.assertEqual(saved, [list(order.lines)])
        (queued,), _ = trigger.queue_trigger_action.call_args
        self.assertEqual(list(queued), list(order.lines))

    @with_transaction()
    def test_checkout_amounts_in_currency_precision(self):
        "Lines or discounts with more digits than the currency are refused"
        Order = Pool().get('course.order')
        cat = self.catalog()
        order = checkout(cat.student, cat.course_a)
        line, = order.lines
        good = SimpleNamespace(order=order, lines=[line], discounts=[])
        Order.check_checkout_amounts(good)
        bad_line = SimpleNamespace(
            list_price=line.list_price, unit_price=line.unit_price,
            amount=Decimal('0.001'), discount_amount=line.discount_amount)
        with self.assertRaises(ValueError):
            Order.check_checkout_amounts(SimpleNamespace(
                    order=order, lines=[bad_line], discounts=[]))
        with self.assertRaises(ValueError):
            Order.check_checkout_amounts(SimpleNamespace(
                    order=order, lines=[line],
                    discounts=[SimpleNamespace(amount=Decimal('1.005'))]))

    @with_transaction()
    def test_pay_reads_enrollments_of_its_courses(self):
        """Paying an order looks at the student's live enrollments in the
        order's courses only: not at all they own, which grows with each
        order they pay"""
        pool = Pool()
        Course = pool.get('course.course')
        Order = pool.get('course.order')
        Enrollment = pool.get('course.enrollment')
        cat = self.catalog()
        owned = Course.copy([cat.course_c] * 6)
        Enrollment.create([{
                    'party': cat.student.id, 'course': c.id,
                    'source': 'gift'} for c in owned + [cat.course_b]])
        order = checkout(cat.student, (cat.course_a, cat.option_a_month))
        gift, = Enrollment.create([{
                    'party': cat.student.id, 'course': cat.course_a.id,
                    'source': 'gift',
                    'end': utcnow() + dt.timedelta(days=10)}])
        found = []
        search = Enrollment.search

        def recorded_search(domain, *args, **kwargs):
            records = search(domain, *args, **kwargs)
            found.append(records)
            return records
        with patch.object(Enrollment, 'search', recorded_search):
            Order.confirm_payment([order])
        # The live enrollment in course A (extended), none of the 7 others
        self.assertIn([gift], found)
        self.assertFalse(
            [r for records in found for r in records if r != gift])
        line, = order.lines
        self.assertEqual(line.extended_enrollment, gift)

    @with_transaction()
    def test_refund_after_end_access(self):
        """Staff ended the extended enrollment: the refund leaves its end
        alone (it never goes before its start) and goes through"""
        pool = Pool()
        Order = pool.get('course.order')
        Enrollment = pool.get('course.enrollment')
        cat = self.catalog()
        month = checkout(cat.student, (cat.course_a, cat.option_a_month))
        gift, = Enrollment.create([{
                    'party': cat.student.id, 'course': cat.course_a.id,
                    'source': 'gift',
                    'end': utcnow() + dt.timedelta(days=10),
                    }])
        Order.confirm_payment([month])
        Enrollment.end_access([gift])
        ended = gift.end
        self.assertEqual(gift.state, 'ended')

        Order.refund([month])
        self.assertEqual(month.state, 'refunded')
        self.assertEqual(gift.end, ended)
        self.assertGreaterEqual(gift.end, gift.start)

    @with_transaction()
    def test_line_product(self):
        """A line sells a product: the course of a course line, kept in
        sync with its course"""
        pool = Pool()
        Line = pool.get('course.order.line')
        cat = self.catalog()
        order = checkout(cat.student, cat.course_a, cat.course_b)
        self.assertEqual(
            [(l.product, l.course) for l in order.lines],
            [(cat.course_a, cat.course_a), (cat.course_b, cat.course_b)])
        self.assertIn('course.course', dict(Line.get_product()))
        values = {
            'order': order.id, 'list_price': 1, 'unit_price': 1,
            'discount_amount': 0, 'amount': 1}
        by_course, by_product = Line.create([
                dict(values, course=cat.course_c.id),
                dict(values, product=str(cat.course_c)),
                ])
        self.assertEqual(by_course.product, cat.course_c)
        self.assertEqual(by_product.course, cat.course_c)
        # a module's product leaves no course
        self.plug(Line, _get_product=classmethod(
                lambda cls: ['course.course', 'party.party']))
        Line.write([by_product], {'product': str(cat.student)})
        self.assertIsNone(by_product.course)

    @with_transaction()
    def test_migration_line_product(self):
        "Updating from lines without product gives each line its course"
        pool = Pool()
        Line = pool.get('course.order.line')
        cat = self.catalog()
        order = checkout(cat.student, cat.course_a, cat.course_b)
        Line.__table_handler__().not_null_action('product', 'remove')
        table = Line.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.update([table.product], [None]))
        Line.__register__('course_order')
        Transaction().counter += 1  # forget the cached lines
        self.assertEqual(
            [l.product for l in Line.browse(order.lines)],
            [cat.course_a, cat.course_b])

    @with_transaction()
    def test_line_sells_other_product(self):
        """A module sells something other than a course through the hooks:
        its kind of item, its product, what payment gives and a refund
        takes back"""
        pool = Pool()
        Order = pool.get('course.order')
        Party = pool.get('party.party')
        Category = pool.get('party.category')
        cat = self.catalog()
        vip, = Category.create([{'name': "VIP"}])

        def join(lines):
            for line in lines:
                Party.write([line.order.party], {
                        'categories': [('add', [line.product.id])]})

        def leave(lines):
            for line in lines:
                Party.write([line.order.party], {
                        'categories': [('remove', [line.product.id])]})
        self.sell_kind('membership', Category, '99', join, leave)
        order = Order(Order.checkout(cat.student.id, [
                    {'membership': vip.id}, {'course': cat.course_b.id}]))
        membership, course = order.lines
        self.assertEqual((membership.product, membership.course), (vip, None))
        self.assertEqual(
            (course.product, course.course), (cat.course_b, cat.course_b))
        self.assertEqual(order.total_amount, Decimal('599.00'))
        self.assertEqual(order.title, "VIP and more (2 items in all)")
        self.assertEqual(membership.rec_name, f'{order.number} - VIP')
        Order.confirm_payment([order])
        self.assertEqual(cat.student.categories, (vip,))
        enrollment, = order.enrollments
        self.assertEqual(enrollment.order_line, course)
        Order.fulfil([order])  # gives once
        self.assertEqual(order.enrollments, (enrollment,))
        Order.refund([order])
        self.assertEqual(cat.student.categories, ())
        self.assertEqual(enrollment.state, 'ended')
        # an item of no kind or of two kinds is refused
        for item in [{'membership': vip.id, 'course': cat.course_a.id},
                {'program': 1}]:
            self.assertRawCheckoutRefused(
                "needs a course", cat.student, [item])

    @with_transaction()
    def test_line_gives_enrollments_its_way(self):
        """A module's line gives enrollments its own way (get_enrollments);
        a refund ends them (get_revoked_enrollments)"""
        pool = Pool()
        Order = pool.get('course.order')
        Line = pool.get('course.order.line')
        Course = pool.get('course.course')
        Enrollment = pool.get('course.enrollment')
        Category = pool.get('course.category')
        cat = self.catalog()
        self.sell_kind('bundle', Category, '1200')
        get_enrollments = Line.get_enrollments

        def bundle_enrollments(line, live, start):
            "Every course of the category the student does not own"
            enrollments = get_enrollments(line, live, start)
            if line.product != cat.category or line.enrollments:
                return enrollments
            party = line.order.party
            return enrollments + [Enrollment(
                    party=party, course=course, company=line.order.company,
                    order_line=line, order=line.order, source='purchase',
                    start=start)
                for course in Course.search(
                    [('category', '=', line.product.id)])
                if (party, course) not in live]
        self.plug(Line, get_enrollments=bundle_enrollments)
        owned, = Enrollment.create([{
                    'party': cat.student.id, 'course': cat.course_c.id}])
        order = Order(Order.checkout(
                cat.student.id, [{'bundle': cat.category.id}]))
        line, = order.lines
        self.assertEqual(order.title, cat.category.rec_name)
        Order.confirm_payment([order])
        given = {(e.course, e.order_line) for e in order.enrollments}
        self.assertEqual(
            given, {(cat.course_a, line), (cat.course_b, line)})
        Order.fulfil([order])  # gives once
        self.assertEqual(len(order.enrollments), 2)
        Order.refund([order])
        self.assertEqual({e.state for e in order.enrollments}, {'ended'})
        self.assertEqual(owned.state, 'live')

    @with_transaction()
    def test_confirm_only_manual(self):
        "Staff confirm manual payments only; other methods pay by provider"
        pool = Pool()
        Order = pool.get('course.order')
        cat = self.catalog()
        order = checkout(cat.student, cat.course_a)
        # as a payment module's method would be
        Order.write([order], {'pay_method': 'free'})
        with self.assertRaises(UserError) as cm:
            Order.confirm_payment([order])
        self.assertIn(
            "only manual payments can be confirmed", cm.exception.message)
        self.assertEqual(order.state, 'unpaid')
        self.assertEqual(order.enrollments, ())

    @with_transaction()
    def test_pay_closed_order_refused(self):
        "A payment for a cancelled or expired order is refused, not kept"
        Order = Pool().get('course.order')
        cat = self.catalog()
        cancelled = checkout(cat.student, cat.course_a)
        Order.cancel([cancelled])
        expired = checkout(cat.student, cat.course_b)
        self.assertEqual(Order._expire([expired]), [expired])
        for order, state in [(cancelled, "Cancelled"), (expired, "Expired")]:
            with self.assertRaises(UserError) as cm:
                Order.pay([order])
            self.assertIn(f"is {state} and cannot be paid",
                cm.exception.message)
            self.assertIn("must be refunded", cm.exception.message)
            self.assertIsNone(order.paid_at)
            self.assertEqual(order.enrollments, ())

    @with_transaction()
    def test_refund_by_provider_later(self):
        "A provider refunding later leaves the order refunding until it calls"
        Order = Pool().get('course.order')
        cat = self.catalog()
        order = checkout(cat.student, cat.course_a)
        Order.confirm_payment([order])
        with self.assertRaises(UserError):
            Order.refunded([order])  # not asked to refund
        asked = []
        Order._payment_refund_manual = classmethod(
            lambda cls, orders: asked.extend(orders) or [])
        self.addCleanup(delattr, Order, '_payment_refund_manual')
        Order.refund([order])
        self.assertEqual(asked, [order])
        self.assertEqual(order.state, 'refunding')
        self.assertIsNone(order.refunded_at)
        self.assertEqual({e.state for e in order.enrollments}, {'live'})
        with self.assertRaises(UserError) as cm:
            Order.refund([order])
        self.assertIn("is Refunding", cm.exception.message)
        # the provider confirms (twice: idempotent)
        Order.refunded([order])
        self.assertEqual(order.state, 'refunded')
        refunded_at = order.refunded_at
        self.assertTrue(refunded_at)
        self.assertEqual({e.state for e in order.enrollments}, {'ended'})
        Order.refunded([order])
        self.assertEqual(order.refunded_at, refunded_at)

    @with_transaction()
    def test_staff_views(self):
        "Orders menu tabs, list and form fields, buttons and their groups"
        pool = Pool()
        ModelData = pool.get('ir.model.data')
        ActWindow = pool.get('ir.action.act_window')
        Order = pool.get('course.order')
        Button = pool.get('ir.model.button')
        Group = pool.get('res.group')
        action = ActWindow(ModelData.get_id('course_order', 'act_order_form'))
        self.assertEqual(action.res_model, 'course.order')
        self.assertEqual(
            [(d.name, PYSONDecoder().decode(d.domain) if d.domain else None)
                for d in action.act_window_domains], [
                ("Unpaid", [['state', '=', 'unpaid']]),
                ("Payment Unknown", [['payment_unknown', '=', True]]),
                ("Paid", [['state', '=', 'paid']]),
                ("Cancelled / Expired",
                    [['state', 'in', ['cancelled', 'expired']]]),
                ("Refunds", [['state', 'in', ['refunding', 'refunded']]]),
                ("All", None),
                ])
        tree = Order.fields_view_get(view_type='tree')
        for name in ['number', 'party', 'order_date', 'payable_amount',
                'state']:
            self.assertIn(f'name="{name}"', tree['arch'])
        form = Order.fields_view_get(view_type='form')
        for name in ['lines', 'total_amount', 'discount_amount',
                'payable_amount', 'pay_deadline', 'enrollments', 'state']:
            self.assertIn(f'name="{name}"', form['arch'])
        for button in ['cancel', 'confirm_payment', 'refund']:
            self.assertIn(f'<button name="{button}"', form['arch'])
        sales = Group(ModelData.get_id('course', 'group_course_sales'))
        admin = Group(ModelData.get_id('course', 'group_course_admin'))
        self.assertEqual(
            Button.get_groups('course.order', 'cancel'),
            {sales.id, admin.id})
        self.assertEqual(
            Button.get_groups('course.order', 'confirm_payment'),
            {sales.id, admin.id})
        self.assertEqual(
            Button.get_groups('course.order', 'refund'), {admin.id})
        # the states in which each button shows, to a user of groups
        def shown(button, method='manual', groups=(admin.id,)):
            invisible = PYSONEncoder().encode(
                Order._buttons[button]['invisible'])
            return {state for state, _ in Order.state.selection
                if not PYSONDecoder({
                        'state': state, 'pay_method': method,
                        'context': {'groups': list(groups)}}).decode(
                    invisible)}
        self.assertEqual(shown('cancel'), {'unpaid'})
        self.assertEqual(shown('confirm_payment'), {'unpaid'})
        self.assertEqual(shown('confirm_payment', 'free'), set())
        self.assertEqual(shown('refund'), {'paid'})
        # hidden, not only greyed, for the groups that may not refund
        self.assertEqual(shown('refund', groups=[sales.id]), set())
        self.assertEqual(shown('cancel', groups=[sales.id]), {'unpaid'})

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
        Party = pool.get('party.party')
        cat = self.catalog()
        courses = Course.copy([cat.course_b] * 12)
        Course.write(courses, {'published': True})
        selections = [courses[:2], courses[2:5], courses[5:12]]
        # A line priced by an activity in each (the activities' names are
        # read in the company's language: one statement for any number)
        for selection in selections:
            self.activity(selection[0], 'percentage', Decimal(50))
        # Warm the caches with the same selections (sequence,
        # configuration, and the translations of the messages and records
        # the lines are named with in the company's language)
        for i, selection in enumerate(selections):
            warm, = Party.create([{'name': f"W{i}"}])
            Order.cancel([checkout(warm, *selection)])
        counts = []
        # A student of their own each (as one call each: lock_rows writes
        # a student once per transaction); a single row is inserted without
        # asking for ids first, so start from two lines
        students = Party.create([{'name': f"S{i}"} for i in range(3)])
        for student, selection in zip(students, selections):
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
        # The estimated count of orders is a process cache, warm in a
        # server: the first read must not count its query
        Order.estimated_count()
        for limit in [1, 10]:
            ids = [o.id for o in Order.search([], limit=limit)]
            Transaction().counter += 1  # start from cold record caches
            with StatementCounter() as counter:
                Order.read(ids, fields)
            counts.append(counter.count)
        self.assertEqual(counts[0], counts[1], counts)

    @with_transaction(user=0)
    def test_workflow_by_root_records_nobody(self):
        "The workflow run by root (the scheduler, routes) records no user"
        Order = Pool().get('course.order')
        cat = self.catalog()
        paid = checkout(cat.student, cat.course_a)
        cancelled = checkout(cat.student, cat.course_b)
        Order.confirm_payment([paid])
        Order.cancel([cancelled])
        Order.refund([paid])
        self.assertEqual(
            (paid.paid_by, paid.refunded_by, cancelled.cancelled_by),
            (None, None, None))

    @with_transaction()
    def test_external_delete_refused(self):
        """A user's delete is refused even when an access record would
        allow it; code still deletes closed orders"""
        Order = Pool().get('course.order')
        cat = self.catalog()
        order = checkout(cat.student, cat.course_a)
        Order.cancel([order])
        with self.assertRaises(UserError) as cm:
            Order.check_modification('delete', [order], external=True)
        self.assertIn("orders are kept", cm.exception.message)
        Order.check_modification('delete', [order])

    def gift(self, party, course, reason="Contest winner", user=None):
        "A gift made by code, as the wizard would for user"
        Enrollment = Pool().get('course.enrollment')
        with Transaction().set_user(user or 0):
            return Enrollment.give(party, course, 0, reason)

    @with_transaction()
    def test_audit_healthy(self):
        """Orders in every state and a gift with its reason and giver: the
        audit finds nothing, the gift is listed for review only"""
        pool = Pool()
        Order = pool.get('course.order')
        User = pool.get('res.user')
        cat = self.catalog()
        admin, = User.search([('login', '=', 'admin')])
        self.activity(cat.course_c, 'free')
        checkout(cat.student, cat.course_c)  # free: paid at once
        paid = checkout(cat.student, cat.course_a)
        Order.confirm_payment([paid])
        refunded = checkout(cat.other_student, cat.course_a)
        Order.confirm_payment([refunded])
        Order.refund([refunded])
        Order.cancel([checkout(cat.other_student, cat.course_b)])
        checkout(cat.other_student, cat.course_b)  # unpaid
        self.gift(cat.student, cat.course_b, user=admin.id)
        self.assertEqual(Order.audit(), [])
        self.assertEqual(Order.audit_gifts(), [
                'Gift: Administrator gave "B" to "Student" on '
                f'{utcnow().strftime("%m/%d/%Y")} (permanent), because: '
                'Contest winner'])

    @with_transaction()
    def test_audit_problems(self):
        """The audit names enrollments nothing explains, gifts without
        reason or giver, live enrollments of refunded orders and paid
        lines that gave nothing"""
        pool = Pool()
        Enrollment = pool.get('course.enrollment')
        Order = pool.get('course.order')
        cat = self.catalog()
        # made by code around the workflow: no user can do it any more
        Enrollment.create([{
                    'party': cat.student.id, 'course': cat.course_c.id,
                    'source': 'purchase'}])
        unpaid = checkout(cat.other_student, cat.course_c)
        Enrollment.create([{
                    'party': cat.other_student.id,
                    'course': cat.course_c.id, 'source': 'purchase',
                    'order_line': unpaid.lines[0].id}])
        self.gift(cat.student, cat.course_b, reason="")
        refunded = checkout(cat.other_student, cat.course_a)
        Order.confirm_payment([refunded])
        Order.refund([refunded])
        Enrollment.write(list(refunded.enrollments), {'end': None})
        paid = checkout(cat.student, cat.course_a)
        Order.confirm_payment([paid])
        Enrollment.delete(list(paid.enrollments))
        texts = Order.audit()
        for text in [
                'The enrollment of "Student" in "C" (Purchase, ',
                'The enrollment of "Other" in "C" (Purchase, ',
                f'still live although its order "{refunded.number}" was '
                'refunded',
                'The gift of "B" to "Student" (',
                f'Order "{paid.number}" is Paid but its line for "A" gave '
                'no enrollment',
                ]:
            with self.subTest(text=text):
                self.assertEqual(
                    len([t for t in texts if text in t]), 1, texts)
        self.assertEqual(len(texts), 5, texts)
        gift, = Order.audit_gifts()
        self.assertIn('Gift: an unknown user gave "B" to "Student"', gift)


    @with_transaction()
    def test_line_price_name_company_language(self):
        """A line keeps its price name in the company's language, whoever
        checks out; who ordered (even unpaid) is a student"""
        Party = Pool().get('party.party')
        cat = self.catalog()
        set_company_language(cat.company, 'zh_CN')
        with Transaction().set_context(language='en'):
            order = checkout(cat.student, cat.course_a)
        line, = order.lines
        self.assertEqual(line.discount_name, "原价购买")
        self.assertEqual(order.state, 'unpaid')
        self.assertEqual(
            Party.search([('is_student', '=', True)]), [cat.student])
        self.assertEqual(
            list(Party(cat.student.id).course_orders), [order])


del ModuleTestCase

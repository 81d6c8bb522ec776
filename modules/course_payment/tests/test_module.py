"Payments, late payments, refunds and refund requests with a fake provider"
import datetime as dt
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.modules.company.tests import CompanyTestMixin
from trytond.modules.course.tests.tools import set_company_language
from trytond.modules.course.tools import now
from trytond.modules.course_credit.tests.tools import adjust, company_catalog
from trytond.modules.course_order.tests.tools import checkout
from trytond.pool import Pool
from trytond.tests.test_tryton import ModuleTestCase, with_transaction
from trytond.transaction import Transaction

from .tools import plug_fake


class CoursePaymentTestCase(CompanyTestMixin, ModuleTestCase):
    "Test Course Payment module"
    module = 'course_payment'
    extras = ['course_credit']

    # ---- helpers ------------------------------------------------------------

    def setup_fake(self):
        "Plug the fake provider and create a catalog; (fake, catalog)"
        fake = plug_fake(self)
        return fake, company_catalog()

    def paid_order(self, fake, party, *items, **options):
        "Check out items with the fake method and pay them by notify"
        Payment = Pool().get('course.payment')
        order = checkout(party, *items, pay_method='fake', **options)
        Payment.start(order)
        Payment.succeed(
            order, 'fake', order.payable_amount, f'T{order.number}',
            buyer='buyer-1')
        return order

    def credit_movements(self, order):
        Credit = Pool().get('course.credit.movement')
        return [(m.kind, m.points) for m in Credit.search(
                [('order', '=', order.id)], order=[('id', 'ASC')])]

    # ---- pay -----------------------------------------------------------------

    @with_transaction()
    def test_start_and_succeed(self):
        "Start returns the provider's answer; succeed pays and enrolls"
        Payment = Pool().get('course.payment')
        fake, cat = self.setup_fake()
        order = checkout(cat.student, cat.course_b, pay_method='fake')
        self.assertEqual(order.state, 'unpaid')
        answer = Payment.start(order)
        self.assertEqual(answer['url'], f'https://fake.test/pay/{order.number}')
        # Paying again: the same pending payment (the same trade)
        Payment.start(order)
        payment, = Payment.search([('order', '=', order.id)])
        self.assertEqual(payment.state, 'pending')
        self.assertEqual(payment.amount, Decimal('500'))

        Payment.succeed(order, 'fake', Decimal('500.00'), 'T1', buyer='b1')
        self.assertEqual(order.state, 'paid')
        self.assertEqual(len(order.enrollments), 1)
        payment, = Payment.search([('order', '=', order.id)])
        self.assertEqual(
            (payment.state, payment.reference, payment.buyer, payment.late),
            ('succeeded', 'T1', 'b1', False))
        self.assertTrue(payment.paid_at)
        self.assertEqual(
            [m.api for m in payment.messages], ['start', 'start'])

    @with_transaction()
    def test_succeed_replayed(self):
        "A notify replayed 5 times: one payment, one fulfilment"
        pool = Pool()
        Payment = pool.get('course.payment')
        Enrollment = pool.get('course.enrollment')
        fake, cat = self.setup_fake()
        order = checkout(cat.student, cat.course_b, pay_method='fake')
        Payment.start(order)
        for _ in range(5):
            Payment.succeed(order, 'fake', Decimal('500'), 'T1')
        self.assertEqual(order.state, 'paid')
        self.assertEqual(Payment.search([], count=True), 1)
        self.assertEqual(Enrollment.search(
                [('party', '=', cat.student.id)], count=True), 1)
        self.assertEqual(fake.count('refund'), 0)
        # the points earned, once
        earned = pool.get('course.order').credit_to_earn(order)
        self.assertEqual(
            self.credit_movements(order), [('earn', earned)] if earned else [])

    @with_transaction()
    def test_succeed_expired_order_is_late(self):
        "Money for an expired order: late, refunded at once, order expired"
        pool = Pool()
        Payment = pool.get('course.payment')
        Order = pool.get('course.order')
        Refund = pool.get('course.payment.refund')
        fake, cat = self.setup_fake()
        order = checkout(cat.student, cat.course_b, pay_method='fake')
        Payment.start(order)
        Order.write([order], {'pay_deadline': now() - dt.timedelta(1)})
        Order._expire([order])
        self.assertEqual(order.state, 'expired')
        self.assertEqual(fake.count('close'), 1)
        for _ in range(3):
            payment = Payment.succeed(order, 'fake', Decimal('500'), 'T9')
        self.assertEqual(order.state, 'expired')
        self.assertEqual(order.enrollments, ())
        self.assertEqual(Payment.search([], count=True), 1)
        self.assertTrue(payment.late)
        self.assertEqual(payment.state, 'refunded')
        refund, = Refund.search([('payment', '=', payment.id)])
        self.assertEqual(
            (refund.amount, refund.state, refund.full, refund.lines),
            (Decimal('500'), 'succeeded', False, ()))
        self.assertEqual(fake.count('refund'), 1)
        late = Payment.search([('late', '=', True)])
        self.assertEqual(late, [payment])

    @with_transaction()
    def test_late_refund_refused_stays_listed(self):
        "The provider refuses the late refund: failed, payment stays late"
        pool = Pool()
        Payment = pool.get('course.payment')
        Order = pool.get('course.order')
        Refund = pool.get('course.payment.refund')
        fake, cat = self.setup_fake()
        order = checkout(cat.student, cat.course_b, pay_method='fake')
        Order.cancel([order])
        fake.error = ConnectionError("gateway down")
        payment = Payment.succeed(order, 'fake', Decimal('500'), 'T2')
        self.assertEqual((payment.state, payment.late), ('late', True))
        refund, = Refund.search([('payment', '=', payment.id)])
        self.assertEqual(refund.state, 'failed')
        self.assertIn('gateway down', refund.failure)
        self.assertEqual(order.state, 'cancelled')

    @with_transaction()
    def test_succeed_other_amount_is_late(self):
        "A different amount never pays the order: late and refunded"
        Payment = Pool().get('course.payment')
        fake, cat = self.setup_fake()
        order = checkout(cat.student, cat.course_b, pay_method='fake')
        payment = Payment.succeed(order, 'fake', Decimal('1'), 'T3')
        self.assertEqual(order.state, 'unpaid')
        self.assertEqual((payment.state, payment.late), ('refunded', True))

    @with_transaction()
    def test_expiry_asks_provider(self):
        "The expiry job: paid → fulfilled, unknown → kept, unpaid → expired"
        pool = Pool()
        Payment = pool.get('course.payment')
        Order = pool.get('course.order')
        fake, cat = self.setup_fake()
        orders = []
        for course in [cat.course_a, cat.course_b, cat.course_c]:
            order = checkout(cat.student, course, pay_method='fake')
            Payment.start(order)
            orders.append(order)
        Order.write(orders, {'pay_deadline': now() - dt.timedelta(1)})
        paid, unknown, unpaid = orders
        answers = {
            paid.id: {'state': 'paid', 'reference': 'TP',
                'amount': paid.payable_amount},
            unknown.id: {'state': 'unknown'},
            unpaid.id: {'state': 'unpaid'},
            }

        def query(cls, payment):
            return answers[payment.order.id]
        from trytond.modules.course_order.tests.tools import plug
        plug(self, Payment, _provider_query_fake=classmethod(query))
        result = Order._payment_ask([o.id for o in orders], 'fake')
        self.assertEqual(result, {
                paid.id: 'paid', unknown.id: 'unknown',
                unpaid.id: 'unpaid'})
        self.assertEqual(paid.state, 'paid')
        self.assertEqual(len(paid.enrollments), 1)

    @with_transaction()
    def test_provider_error(self):
        "A provider that raises: a clear UserError"
        pool = Pool()
        Payment = pool.get('course.payment')
        Order = pool.get('course.order')
        fake, cat = self.setup_fake()
        order = checkout(cat.student, cat.course_b, pay_method='fake')
        fake.error = TimeoutError("timed out")
        with self.assertRaises(UserError) as cm:
            Payment.start(order)
        self.assertIn('failed to start', cm.exception.message)
        self.assertIn('timed out', cm.exception.message)
        with self.assertRaises(UserError):
            Order.cancel([order])
        fake.error = None
        Payment.succeed(order, 'fake', Decimal('500'), 'T1')
        fake.error = ValueError("garbage")
        with self.assertRaises(UserError) as cm:
            Order.refund([order])
        self.assertIn('garbage', cm.exception.message)

    # ---- refunds -------------------------------------------------------------

    @with_transaction()
    def test_refund_whole_order(self):
        "Refund button: through the provider, the order refunded"
        pool = Pool()
        Order = pool.get('course.order')
        Refund = pool.get('course.payment.refund')
        fake, cat = self.setup_fake()
        order = self.paid_order(fake, cat.student, cat.course_a, cat.course_b)
        Order.refund([order])
        self.assertEqual(order.state, 'refunded')
        self.assertEqual({e.state for e in order.enrollments}, {'ended'})
        refund, = Refund.search([('order', '=', order.id)])
        self.assertEqual((refund.amount, refund.full, refund.state),
            (Decimal('1500'), True, 'succeeded'))
        self.assertEqual(len(refund.lines), 2)
        payment, = order.payments
        self.assertEqual(payment.state, 'refunded')
        self.assertEqual(payment.refunded_amount, Decimal('1500'))

    @with_transaction()
    def test_refund_partial_then_rest(self):
        """Partial refund: those lines' enrollments end, their points share
        comes back; the order is refunded once all lines are"""
        pool = Pool()
        Refund = pool.get('course.payment.refund')
        fake, cat = self.setup_fake()
        adjust(cat.student, 'grant', 200)
        order = self.paid_order(
            fake, cat.student, cat.course_a, cat.course_b, credit=150)
        line_a, line_b = order.lines
        self.assertEqual(order.payable_amount, Decimal('1485'))
        refund = Refund.refund_order(order, [line_b], reason="B not wanted")
        self.assertEqual(refund.state, 'succeeded')
        self.assertFalse(refund.full)
        self.assertEqual(refund.amount, line_b.amount)
        self.assertEqual(order.state, 'paid')
        states = {e.course: e.state for e in order.enrollments}
        self.assertEqual(states, {cat.course_a: 'live', cat.course_b: 'ended'})
        # B's share: 500 of 1500 of the credit discount → 50 points
        self.assertEqual(
            [m for m in self.credit_movements(order) if m[0] != 'earn'],
            [('spend', -150), ('refund', 50)])
        payment, = order.payments
        self.assertEqual(payment.state, 'partially_refunded')
        # The same line again is refused
        with self.assertRaises(UserError):
            Refund.refund_order(order, [line_b], reason="again")
        # The rest: the order is refunded, every point back
        last = Refund.refund_order(order, [line_a], reason="all")
        self.assertTrue(last.full)
        self.assertEqual(order.state, 'refunded')
        self.assertEqual({e.state for e in order.enrollments}, {'ended'})
        kinds = self.credit_movements(order)
        self.assertEqual(sum(p for k, p in kinds if k in {'spend', 'refund'}),
            0)
        self.assertEqual(payment.state, 'refunded')
        self.assertEqual(
            sum(r.amount for r in order.refunds), order.payable_amount)

    @with_transaction()
    def test_refund_never_more_than_paid(self):
        "Refunds never exceed what was paid; a number is idempotent"
        pool = Pool()
        Refund = pool.get('course.payment.refund')
        fake, cat = self.setup_fake()
        order = self.paid_order(fake, cat.student, cat.course_a, cat.course_b)
        line_a, line_b = order.lines
        first = Refund.refund_order(order, [line_a], reason="r", number='N1')
        again = Refund.refund_order(order, [line_a], reason="r", number='N1')
        self.assertEqual(first, again)
        self.assertEqual(fake.count('refund'), 1)
        payment, = order.payments
        # Someone lowered the recorded amount: the check still holds
        Pool().get('course.payment').write([payment], {'amount': Decimal(1000)})
        with self.assertRaises(UserError) as cm:
            Refund.refund_order(order, [line_b], reason="r")
        self.assertIn('already refunded', cm.exception.message)

    @with_transaction()
    def test_refund_pending_then_query(self):
        "A refund the provider only accepted: pending until its query"
        pool = Pool()
        Order = pool.get('course.order')
        Refund = pool.get('course.payment.refund')
        fake, cat = self.setup_fake()
        order = self.paid_order(fake, cat.student, cat.course_b)
        fake.refund = 'pending'
        Order.refund([order])
        self.assertEqual(order.state, 'refunding')
        refund, = order.refunds
        self.assertEqual(refund.state, 'pending')
        Refund.check_status([refund])
        self.assertEqual(refund.state, 'succeeded')
        self.assertEqual(order.state, 'refunded')

    @with_transaction()
    def test_refund_failed_then_retried(self):
        """A refund the provider reports failed leaves the order refunding;
        Retry sends it again with its number until it goes through"""
        pool = Pool()
        Order = pool.get('course.order')
        Refund = pool.get('course.payment.refund')
        fake, cat = self.setup_fake()
        order = self.paid_order(fake, cat.student, cat.course_b)
        fake.refund = 'pending'
        fake.refund_query = 'failed'
        Order.refund([order])
        refund, = order.refunds
        Refund.check_status([refund])
        self.assertEqual(refund.state, 'failed')
        self.assertEqual(order.state, 'refunding')
        # The provider refuses again: nothing moves
        fake.error = RuntimeError("gateway down")
        with self.assertRaises(UserError):
            Refund.retry([refund])
        self.assertEqual(refund.state, 'failed')
        fake.error = None
        fake.refund = 'succeeded'
        Refund.retry([refund])
        self.assertEqual(refund.state, 'succeeded')
        self.assertEqual(order.state, 'refunded')
        self.assertEqual(
            [r.number for r in order.refunds], [refund.number])
        self.assertEqual(
            [c for c in fake.calls if c[0] == 'refund'],
            [('refund', refund.id)] * 3)
        # Only failed refunds are sent again
        Refund.retry([refund])
        self.assertEqual(fake.count('refund'), 3)

    @with_transaction()
    def test_refund_manual_and_wallet(self):
        "Manual and wallet orders: whole and partial refunds as before"
        pool = Pool()
        Order = pool.get('course.order')
        Refund = pool.get('course.payment.refund')
        Wallet = pool.get('course.wallet.movement')
        fake, cat = self.setup_fake()
        manual = checkout(cat.student, cat.course_a)
        Order.confirm_payment([manual])
        Order.refund([manual])
        self.assertEqual(manual.state, 'refunded')
        self.assertEqual(manual.refunds[0].state, 'succeeded')

        adjust(cat.other_student, 'topup', Decimal('800'))
        wallet = checkout(cat.other_student, cat.course_b, cat.course_c,
            pay_method='wallet')
        self.assertEqual(wallet.state, 'paid')
        line_b, line_c = wallet.lines
        Refund.refund_order(wallet, [line_c], reason="C")
        Order.refund([wallet])
        self.assertEqual(wallet.state, 'refunded')
        self.assertEqual(sum(m.amount for m in Wallet.search(
                    [('order', '=', wallet.id)])), 0)

    # ---- refund requests -------------------------------------------------------

    @with_transaction()
    def test_request_approve_reject(self):
        "One open request per order; approve refunds, reject records why"
        pool = Pool()
        Request = pool.get('course.payment.refund.request')
        fake, cat = self.setup_fake()
        order = self.paid_order(fake, cat.student, cat.course_b)
        other = self.paid_order(fake, cat.other_student, cat.course_c)
        request = Request(Request.request_refund(order.id, "Not for me"))
        self.assertEqual(request.state, 'open')
        with self.assertRaises(UserError) as cm:
            Request.request_refund(order.id, "again")
        self.assertIn('open refund request', cm.exception.message)
        for reason in ['', '   ']:
            with self.assertRaises(UserError):
                Request.request_refund(other.id, reason)
        Request.do_reject([request], "Course finished")
        self.assertEqual(
            (request.state, request.rejection_reason), ('rejected', "Course finished"))
        self.assertTrue(request.decided_at)
        # Rejected: the student may ask again, and staff approve
        request = Request(Request.request_refund(order.id, "Please"))
        Request.approve([request])
        self.assertEqual(request.state, 'approved')
        self.assertEqual(order.state, 'refunded')
        self.assertEqual(request.refund.request, request)
        with self.assertRaises(UserError):
            Request.approve([request])
        with self.assertRaises(UserError) as cm:
            Request.request_refund(order.id, "again")
        self.assertIn('only a paid order', cm.exception.message)

    @with_transaction()
    def test_messages_immutable(self):
        "Messages are never changed, even by code"
        Payment = Pool().get('course.payment')
        Message = Pool().get('course.payment.message')
        fake, cat = self.setup_fake()
        order = checkout(cat.student, cat.course_b, pay_method='fake')
        Payment.start(order)
        message, = Message.search([])
        with self.assertRaises(UserError):
            Message.write([message], {'payload': 'x'})
        with self.assertRaises(UserError):
            Message.delete([message])


    @with_transaction()
    def test_refund_texts_in_company_language(self):
        """The wallet's refund note and the Refund button's reason are
        written in the company's language, not the caller's"""
        pool = Pool()
        Order = pool.get('course.order')
        Refund = pool.get('course.payment.refund')
        Wallet = pool.get('course.wallet.movement')
        fake, cat = self.setup_fake()
        set_company_language(cat.company, 'zh_CN')
        adjust(cat.student, 'topup', Decimal('800'))
        with Transaction().set_context(language='en'):
            order = checkout(cat.student, cat.course_b, cat.course_c,
                pay_method='wallet')
            line_b, line_c = order.lines
            partial = Refund.refund_order(order, [line_c], reason="C")
            Order.refund([order])
        movement, = Wallet.search([
                ('order', '=', order.id), ('kind', '=', 'refund'),
                ('amount', '=', line_c.amount)])
        self.assertEqual(
            movement.note, f"订单 {order.number}，退款 {partial.number}")
        whole, = [r for r in order.refunds if r != partial]
        self.assertEqual(whole.reason, "工作人员整单退款。")


del ModuleTestCase

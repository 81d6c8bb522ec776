"WeChat Pay accounts, the Native code, query, close and refunds (fake gateway)"
import datetime as dt
import json
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.modules.company.tests import CompanyTestMixin, create_company
from trytond.modules.course.tests.tools import create_catalog
from trytond.modules.course_order.tests.tools import checkout
from trytond.pool import Pool
from trytond.tests.test_tryton import ModuleTestCase, with_transaction
from trytond.transaction import Transaction

from ..wechat import from_fen, from_rfc3339, to_fen, to_rfc3339
from .tools import FakeWechat, key_pair, pem_pair


class CoursePaymentWechatTestCase(CompanyTestMixin, ModuleTestCase):
    "Test Course Payment WeChat module"
    module = 'course_payment_wechat'

    def setUp(self):
        super().setUp()
        self.fake = FakeWechat().start()
        self.addCleanup(self.fake.stop)

    def setup_account(self, **values):
        "A company with a WeChat Pay account on the fake gateway; (cat, acc)"
        Account = Pool().get('course.payment.wechat.account')
        company = create_company()
        transaction = Transaction()
        transaction.context = dict(transaction.context, company=company.id)
        account, = Account.create([
                self.fake.account_values(company.id, **values)])
        return create_catalog(company), account

    def order(self, cat, *courses, party=None):
        "An order of the student paid with WeChat Pay, its payment started"
        Payment = Pool().get('course.payment')
        order = checkout(party or cat.student, *(courses or [cat.course_b]),
            pay_method='wechat')
        answer = Payment.start(order)
        return order, answer

    def paid(self, cat, *courses, party=None):
        "An order paid at WeChat Pay and confirmed by the query"
        Payment = Pool().get('course.payment')
        order, _ = self.order(cat, *courses, party=party)
        self.fake.pay(order.number)
        payment, = order.payments
        self.assertEqual(Payment.query([payment]), {payment: 'paid'})
        return order, Payment(payment.id)

    # ---- amounts and times ----------------------------------------------------

    def test_fen(self):
        "Yuan to fen exactly, never rounded; fen back to yuan"
        self.assertEqual(to_fen(Decimal('500')), 50000)
        self.assertEqual(to_fen(Decimal('299.50')), 29950)
        self.assertEqual(to_fen(Decimal('0.01')), 1)
        self.assertIs(type(to_fen(Decimal('1.10'))), int)
        for value in [Decimal('0.001'), Decimal('-1'), Decimal('NaN'),
                Decimal('Infinity'), 1.1, '5', None, True]:
            with self.subTest(value=value):
                with self.assertRaises(ValueError):
                    to_fen(value)
        self.assertEqual(from_fen(29950), Decimal('299.50'))
        for value in [-1, '100', 1.0, None, True]:
            with self.subTest(value=value):
                self.assertIsNone(from_fen(value))

    def test_times(self):
        "Naive UTC to +08:00 and back"
        value = dt.datetime(2030, 1, 1, 4, 0, 0, 123)
        self.assertEqual(to_rfc3339(value), '2030-01-01T12:00:00+08:00')
        self.assertEqual(from_rfc3339('2030-01-01T12:00:00+08:00'),
            dt.datetime(2030, 1, 1, 4))
        self.assertIsNone(from_rfc3339('yesterday'))
        self.assertIsNone(from_rfc3339(None))

    # ---- accounts ------------------------------------------------------------

    @with_transaction()
    def test_account_checked(self):
        "Wrong keys, APIv3 key, ids or URLs are refused with a clear message"
        Account = Pool().get('course.payment.wechat.account')
        _, merchant_private, merchant_public = key_pair('merchant')
        from cryptography.hazmat.primitives import serialization
        pkcs1 = key_pair('merchant')[0].private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()).decode()
        for values, text in [
                ({'merchant_private_key': 'not a key'},
                    'merchant private key'),
                ({'merchant_private_key': pkcs1}, 'merchant private key'),
                ({'merchant_private_key': merchant_public},
                    'merchant private key'),
                ({'wechatpay_public_key': merchant_private},
                    'WeChat Pay public key'),
                ({'wechatpay_public_key': '-----BEGIN PUBLIC KEY-----\nAAAA'
                        '\n-----END PUBLIC KEY-----'},
                    'WeChat Pay public key'),
                ({'apiv3_key': 'short'}, 'APIv3 key'),
                ({'apiv3_key': 'x' * 31 + ' '}, 'APIv3 key'),
                ({'apiv3_key': 'x' * 33}, 'APIv3 key'),
                ({'mchid': '19000abc'}, 'merchant ID'),
                ({'merchant_serial': 'not hex'}, 'serial'),
                ({'wechatpay_public_key_id': 'PUB KEY'}, 'public key ID'),
                ({'notify_url': 'ftp://x'}, 'Notify URL'),
                ({'gateway_url': 'localhost'}, 'Gateway URL'),
                ]:
            with self.subTest(values=list(values)):
                company = create_company()
                with self.assertRaises(UserError) as cm:
                    Account.create([
                            self.fake.account_values(company.id, **values)])
                self.assertIn(text, cm.exception.message)
        company = create_company()
        account, = Account.create([self.fake.account_values(company.id)])
        self.assertTrue(account.client())
        with self.assertRaises(UserError) as cm:
            Account.write([account], {'apiv3_key': 'x'})
        self.assertIn('APIv3 key', cm.exception.message)

    @with_transaction()
    def test_client_built_offline_and_kept(self):
        """The client is built in public-key mode (no call to the gateway),
        with a timeout, pointed at the account's gateway; kept per
        settings, a new one when a key changes"""
        Account = Pool().get('course.payment.wechat.account')
        cat, account = self.setup_account()
        client = account.client()
        self.assertEqual(self.fake.calls, [])
        self.assertEqual(client._core._gate_way, self.fake.url)
        self.assertEqual(client._core._timeout, (1, 1))
        self.assertEqual(client._core._proxy, {'http': None, 'https': None})
        self.assertIs(Account(account.id).client(), client)
        _, other_private, _ = pem_pair(key_pair('other')[0])
        Account.write([account], {'merchant_private_key': other_private})
        changed = Account(account.id).client()
        self.assertIsNot(changed, client)
        # The fake refuses a request signed by another key
        order = checkout(cat.student, cat.course_b, pay_method='wechat')
        with self.assertRaises(UserError) as cm:
            Pool().get('course.payment').start(order)
        self.assertIn('401 SIGN_ERROR', cm.exception.message)

    @with_transaction()
    def test_one_active_account(self):
        "One active account per company; inactive ones may stay"
        Account = Pool().get('course.payment.wechat.account')
        cat, account = self.setup_account()
        Account.write([account], {'active': False})
        Account.create([self.fake.account_values(cat.company.id)])
        other = create_company()
        Account.create([self.fake.account_values(other.id)])
        # Last: on PostgreSQL the constraint aborts the transaction
        with self.assertRaises(UserError) as cm:
            Account.create([self.fake.account_values(cat.company.id)])
        self.assertIn('only one active', cm.exception.message)

    @with_transaction()
    def test_no_account(self):
        "Paying with WeChat Pay without an account: a clear error"
        Payment = Pool().get('course.payment')
        company = create_company()
        transaction = Transaction()
        transaction.context = dict(transaction.context, company=company.id)
        cat = create_catalog(company)
        order = checkout(cat.student, cat.course_b, pay_method='wechat')
        with self.assertRaises(UserError) as cm:
            Payment.start(order)
        self.assertIn('no active WeChat Pay account', cm.exception.message)

    # ---- Native pay ------------------------------------------------------------

    @with_transaction()
    def test_code_url(self):
        """The code_url of the order's transaction: amount in fen, the
        order's deadline as time_expire; paying again gives a valid code of
        the same transaction and the same payment"""
        Payment = Pool().get('course.payment')
        cat, account = self.setup_account()
        order, answer = self.order(cat)
        trade = self.fake.trades[order.number]
        self.assertEqual(answer, {
                'code_url': trade['code_url'],
                'out_trade_no': order.number,
                'time_expire': (order.pay_deadline.replace(microsecond=0)
                    + dt.timedelta(hours=8)).isoformat() + '+08:00',
                })
        self.assertTrue(answer['code_url'].startswith('weixin://'))
        body = json.loads(self.fake.bodies('pay')[0])
        self.assertEqual(body['amount'], {'total': 50000, 'currency': 'CNY'})
        self.assertEqual(body['time_expire'], answer['time_expire'])
        self.assertEqual(body['description'], order.title)
        self.assertEqual(
            (body['mchid'], body['appid'], body['notify_url']),
            (account.mchid, account.appid, account.notify_url))
        payment, = order.payments
        self.assertEqual(
            [(m.direction, m.api) for m in payment.messages],
            [('out', 'pay'), ('in', 'pay'), ('out', 'start')])

        again = Payment.start(order)
        self.assertEqual(again['code_url'], answer['code_url'])
        self.assertEqual(self.fake.count('pay'), 2)
        self.assertEqual(Payment.search([('order', '=', order.id)],
                count=True), 1)

    @with_transaction()
    def test_code_url_amount_decimals(self):
        "299.50 yuan is 29950 fen"
        Course = Pool().get('course.course')
        cat, _ = self.setup_account()
        Course.write([cat.course_c], {'price': Decimal('299.5')})
        order, _ = self.order(cat, cat.course_c)
        body = json.loads(self.fake.bodies('pay')[0])
        self.assertEqual(body['amount']['total'], 29950)

    @with_transaction()
    def test_code_url_gateway_failures(self):
        "The gateway failing when starting: a clear error, no code"
        Payment = Pool().get('course.payment')
        cat, _ = self.setup_account()
        order = checkout(cat.student, cat.course_b, pay_method='wechat')
        for mode in ['down', 'slow', '500', 'garbage', 'badsign', 'error']:
            with self.subTest(mode=mode):
                self.fake.mode = mode
                with self.assertRaises(UserError) as cm:
                    Payment.start(order)
                self.assertIn('WeChat Pay', cm.exception.message)
                self.assertIn('Nothing was changed', cm.exception.message)

    # ---- query and close ----------------------------------------------------

    @with_transaction()
    def test_query(self):
        "Query: no transaction → unpaid; NOTPAY → unpaid; paid → succeeded"
        Payment = Pool().get('course.payment')
        cat, _ = self.setup_account()
        order, _ = self.order(cat)
        payment, = order.payments
        del self.fake.trades[order.number]
        self.assertEqual(Payment.query([payment]), {payment: 'unpaid'})
        self.fake.pay(order.number, '500', state='NOTPAY')
        self.assertEqual(Payment.query([payment]), {payment: 'unpaid'})
        self.fake.pay(order.number, '500', state='USERPAYING')
        self.assertEqual(Payment.query([payment]), {payment: 'unknown'})
        self.assertEqual(order.state, 'unpaid')
        trade = self.fake.pay(order.number, '500')
        self.assertEqual(Payment.query([payment]), {payment: 'paid'})
        payment = Payment(payment.id)
        self.assertEqual(
            (payment.state, payment.reference, payment.buyer, payment.amount),
            ('succeeded', trade['transaction_id'], trade['payer']['openid'],
                Decimal('500')))
        self.assertEqual(payment.paid_at, from_rfc3339(trade['success_time']))
        self.assertEqual(order.state, 'paid')
        self.assertEqual(len(order.enrollments), 1)
        self.assertIn('query', [m.api for m in payment.messages])

    @with_transaction()
    def test_query_other_amount_is_late(self):
        "A query saying another amount was paid: late, refunded"
        Payment = Pool().get('course.payment')
        cat, _ = self.setup_account()
        order, _ = self.order(cat)
        payment, = order.payments
        self.fake.pay(order.number, '400')
        self.assertEqual(Payment.query([payment]), {payment: 'paid'})
        self.assertEqual(order.state, 'unpaid')
        payment = Payment(payment.id)
        self.assertTrue(payment.late)
        self.assertEqual(payment.state, 'refunded')
        refund, = self.fake.refunds.values()
        self.assertEqual(refund['amount']['refund'], 40000)

    @with_transaction()
    def test_query_gateway_failures(self):
        "The gateway down, slow, 5xx, garbage, badly signed: unknown"
        Payment = Pool().get('course.payment')
        cat, _ = self.setup_account()
        order, _ = self.order(cat)
        self.fake.pay(order.number)
        payment, = order.payments
        for mode in ['down', 'slow', '500', 'garbage', 'badsign', 'error']:
            with self.subTest(mode=mode):
                self.fake.mode = mode
                self.assertEqual(
                    Payment.query([payment]), {payment: 'unknown'})
                self.assertEqual(Payment(payment.id).state, 'pending')
                self.assertEqual(order.state, 'unpaid')

    @with_transaction()
    def test_close_on_cancel(self):
        "Cancel closes the transaction; one WeChat Pay never saw is too"
        Order = Pool().get('course.order')
        cat, _ = self.setup_account()
        order, _ = self.order(cat)
        Order.cancel([order])
        self.assertEqual(order.state, 'cancelled')
        self.assertEqual(
            self.fake.trades[order.number]['trade_state'], 'CLOSED')
        payment, = order.payments
        self.assertEqual(payment.state, 'cancelled')
        self.assertIn(('out', 'close'),
            [(m.direction, m.api) for m in payment.messages])
        order2, _ = self.order(cat, cat.course_c)
        del self.fake.trades[order2.number]
        Order.cancel([order2])
        self.assertEqual(order2.payments[0].state, 'cancelled')
        self.assertEqual(self.fake.count('close'), 2)

    @with_transaction()
    def test_close_gateway_down(self):
        "The gateway failing: cancelling raises a clear error"
        Order = Pool().get('course.order')
        cat, _ = self.setup_account()
        order, _ = self.order(cat)
        for mode in ['down', '500', 'garbage', 'badsign', 'error']:
            with self.subTest(mode=mode):
                self.fake.mode = mode
                with self.assertRaises(UserError) as cm:
                    Order.cancel([Order(order.id)])
                self.assertIn('Nothing was changed', cm.exception.message)

    # ---- refunds ---------------------------------------------------------------

    @with_transaction()
    def test_refund_full(self):
        "A refund of the whole order through the gateway (SUCCESS at once)"
        pool = Pool()
        Refund = pool.get('course.payment.refund')
        Payment = pool.get('course.payment')
        cat, _ = self.setup_account()
        order, payment = self.paid(cat)
        refund = Refund.refund_order(order, reason="Changed my mind")
        self.assertEqual(refund.state, 'succeeded')
        self.assertEqual(order.state, 'refunded')
        self.assertEqual(Payment(payment.id).state, 'refunded')
        body = json.loads(self.fake.bodies('refund')[0])
        self.assertEqual(
            (body['out_trade_no'], body['out_refund_no'], body['amount'],
                body['reason']),
            (order.number, refund.number,
                {'refund': 50000, 'total': 50000, 'currency': 'CNY'},
                "Changed my mind"))
        self.assertEqual(
            Payment._provider_refund_query_wechat(refund), 'succeeded')

    @with_transaction()
    def test_refund_partial(self):
        "A refund of one line; then the rest; never more than paid"
        pool = Pool()
        Refund = pool.get('course.payment.refund')
        Payment = pool.get('course.payment')
        cat, _ = self.setup_account()
        order, payment = self.paid(cat, cat.course_b, cat.course_c)
        line_c, = [l for l in order.lines if l.amount == Decimal('300')]
        refund = Refund.refund_order(order, [line_c], reason="C")
        self.assertEqual(refund.state, 'succeeded')
        self.assertEqual(order.state, 'paid')
        self.assertEqual(Payment(payment.id).state, 'partially_refunded')
        refund2 = Refund.refund_order(order)
        self.assertEqual(refund2.amount, Decimal('500'))
        self.assertEqual(order.state, 'refunded')
        self.assertEqual(Payment(payment.id).state, 'refunded')
        self.assertEqual(
            {n: r['amount']['refund'] for n, r in self.fake.refunds.items()},
            {refund.number: 30000, refund2.number: 50000})

    @with_transaction()
    def test_refund_processing_then_query(self):
        "PROCESSING: the refund is pending, the order refunding; the query"
        pool = Pool()
        Refund = pool.get('course.payment.refund')
        Payment = pool.get('course.payment')
        cat, _ = self.setup_account()
        order, payment = self.paid(cat)
        self.fake.refund_status = 'PROCESSING'
        refund = Refund.refund_order(order)
        self.assertEqual(refund.state, 'pending')
        self.assertEqual(order.state, 'refunding')
        Refund.query([refund])
        self.assertEqual(refund.state, 'pending')
        self.fake.refunds[refund.number]['status'] = 'SUCCESS'
        Refund.query([refund])
        self.assertEqual(refund.state, 'succeeded')
        self.assertEqual(order.state, 'refunded')
        self.assertEqual(Payment(payment.id).state, 'refunded')

    @with_transaction()
    def test_refund_query_failed(self):
        "A refund WeChat Pay has no trace of, or closed: failed"
        pool = Pool()
        Refund = pool.get('course.payment.refund')
        Payment = pool.get('course.payment')
        cat, _ = self.setup_account()
        order, _ = self.paid(cat)
        self.fake.refund_status = 'PROCESSING'
        refund = Refund.refund_order(order)
        self.fake.refunds[refund.number]['status'] = 'ABNORMAL'
        self.assertEqual(
            Payment._provider_refund_query_wechat(refund), 'failed')
        del self.fake.refunds[refund.number]
        self.assertEqual(
            Payment._provider_refund_query_wechat(refund), 'failed')

    @with_transaction()
    def test_refund_gateway_failures(self):
        "The gateway failing: a clear error (the caller rolls back)"
        pool = Pool()
        Refund = pool.get('course.payment.refund')
        cat, _ = self.setup_account()
        for mode in ['down', 'slow', '500', 'garbage', 'badsign', 'error']:
            with self.subTest(mode=mode):
                self.fake.mode = 'ok'
                party, = Pool().get('party.party').create([{'name': mode}])
                order, _ = self.paid(cat, party=party)
                self.fake.mode = mode
                with self.assertRaises(UserError) as cm:
                    Refund.refund_order(order)
                self.assertIn('WeChat Pay', cm.exception.message)
                self.assertIn('Nothing was changed', cm.exception.message)

    @with_transaction()
    def test_refund_refused(self):
        "WeChat Pay refuses a refund: its code is shown"
        Refund = Pool().get('course.payment.refund')
        cat, _ = self.setup_account()
        order, _ = self.paid(cat)
        self.fake.trades[order.number]['trade_state'] = 'CLOSED'
        with self.assertRaises(UserError) as cm:
            Refund.refund_order(order)
        self.assertIn('INVALID_REQUEST', cm.exception.message)


del ModuleTestCase

"Alipay accounts, the page-pay URL, query, close and refunds (fake gateway)"
import datetime as dt
import json
import urllib.parse
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.modules.company.tests import CompanyTestMixin, create_company
from trytond.modules.course.tests.tools import create_catalog
from trytond.modules.course_order.tests.tools import checkout
from trytond.pool import Pool
from trytond.tests.test_tryton import ModuleTestCase, with_transaction
from trytond.transaction import Transaction

from .tools import FakeAlipay, key_pair, verify


def pem_body(pem):
    "The base64 text of a PEM key, as the Alipay console shows it"
    return ''.join(l for l in pem.splitlines() if not l.startswith('-----'))


class CoursePaymentAlipayTestCase(CompanyTestMixin, ModuleTestCase):
    "Test Course Payment Alipay module"
    module = 'course_payment_alipay'

    def setUp(self):
        super().setUp()
        self.fake = FakeAlipay().start()
        self.addCleanup(self.fake.stop)

    def setup_account(self, **values):
        "A company with an Alipay account on the fake gateway; (cat, acc)"
        Account = Pool().get('course.payment.alipay.account')
        company = create_company()
        transaction = Transaction()
        transaction.context = dict(transaction.context, company=company.id)
        account, = Account.create([
                self.fake.account_values(company.id, **values)])
        return create_catalog(company), account

    def order(self, cat, *courses, party=None):
        "An order of the student paid with Alipay, its payment started"
        Payment = Pool().get('course.payment')
        order = checkout(party or cat.student, *(courses or [cat.course_b]),
            pay_method='alipay')
        answer = Payment.start(order)
        return order, answer

    def paid(self, cat, *courses, party=None):
        "An order paid at Alipay and confirmed by the trade query"
        Payment = Pool().get('course.payment')
        order, _ = self.order(cat, *courses, party=party)
        self.fake.pay(order.number, order.payable_amount)
        payment, = order.payments
        self.assertEqual(Payment.query([payment]), {payment: 'paid'})
        return order, Payment(payment.id)

    # ---- accounts ------------------------------------------------------------

    @with_transaction()
    def test_keys_checked(self):
        "A wrong PEM is refused on save with a clear message"
        Account = Pool().get('course.payment.alipay.account')
        _, app_private, app_public = key_pair('app')
        _, _, alipay_public = key_pair('alipay')
        for values, text in [
                ({'app_private_key': 'not a key'}, 'app private key'),
                ({'app_private_key': app_public}, 'app private key'),
                ({'alipay_public_key': '-----BEGIN PUBLIC KEY-----\nAAAA\n'
                        '-----END PUBLIC KEY-----'}, 'Alipay public key'),
                ({'alipay_public_key': app_private}, 'Alipay public key'),
                ({'notify_url': 'ftp://x'}, 'Notify URL'),
                ]:
            with self.subTest(values=values):
                # A company each: a refused create stays in the test's
                # transaction (a caller's would be rolled back)
                company = create_company()
                with self.assertRaises(UserError) as cm:
                    Account.create([
                            self.fake.account_values(company.id, **values)])
                self.assertIn(text, cm.exception.message)
        # The bare base64 the Alipay console shows is a key too
        company = create_company()
        account, = Account.create([self.fake.account_values(
                    company.id, app_private_key=pem_body(app_private),
                    alipay_public_key=pem_body(alipay_public))])
        self.assertTrue(account.client())
        with self.assertRaises(UserError) as cm:
            Account.write([account], {'app_private_key': 'x'})
        self.assertIn('app private key', cm.exception.message)

    @with_transaction()
    def test_client_kept_per_keys(self):
        """The SDK client is built once per keys and gateway (importing the
        private key checks its primes), a new one when a key changes; it
        signs with the account's key"""
        from .tools import pem_pair
        Account = Pool().get('course.payment.alipay.account')
        cat, account = self.setup_account()
        client = account.client()
        self.assertIs(Account(account.id).client(), client)
        _, other_private, _ = pem_pair(key_pair('other')[0])
        Account.write([account], {'app_private_key': other_private})
        changed = Account(account.id).client()
        self.assertIsNot(changed, client)
        query = Account(account.id).request(
            'alipay.trade.query', {'out_trade_no': 'N1'})
        params = dict(urllib.parse.parse_qsl(query))
        sign = params.pop('sign')
        unsigned = '&'.join(f'{k}={v}' for k, v in sorted(params.items()))
        self.assertTrue(verify(key_pair('other')[2], unsigned, sign))
        self.assertFalse(verify(self.fake.app_public, unsigned, sign))

    @with_transaction()
    def test_one_active_account(self):
        "One active account per company; inactive ones may stay"
        Account = Pool().get('course.payment.alipay.account')
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
        "Paying with Alipay without an account: a clear error"
        Payment = Pool().get('course.payment')
        company = create_company()
        transaction = Transaction()
        transaction.context = dict(transaction.context, company=company.id)
        cat = create_catalog(company)
        order = checkout(cat.student, cat.course_b, pay_method='alipay')
        with self.assertRaises(UserError) as cm:
            Payment.start(order)
        self.assertIn('no active Alipay account', cm.exception.message)

    # ---- page pay --------------------------------------------------------------

    @with_transaction()
    def test_page_pay_url(self):
        "The page-pay URL: method, biz_content, signed by the app's key"
        Payment = Pool().get('course.payment')
        cat, account = self.setup_account()
        order, answer = self.order(cat)
        url = urllib.parse.urlsplit(answer['url'])
        self.assertEqual(
            f'{url.scheme}://{url.netloc}{url.path}', self.fake.url)
        params = dict(urllib.parse.parse_qsl(url.query))
        self.assertEqual(params['method'], 'alipay.trade.page.pay')
        self.assertEqual(params['app_id'], self.fake.app_id)
        self.assertEqual(params['sign_type'], 'RSA2')
        self.assertEqual(params['charset'], 'utf-8')
        self.assertEqual(params['notify_url'], account.notify_url)
        self.assertEqual(params['return_url'], account.return_url)
        timestamp = dt.datetime.strptime(
            params['timestamp'], '%Y-%m-%d %H:%M:%S')
        beijing = dt.datetime.utcnow() + dt.timedelta(hours=8)
        self.assertLess(abs(timestamp - beijing), dt.timedelta(minutes=1))
        biz = json.loads(params['biz_content'])
        self.assertEqual(biz['out_trade_no'], order.number)
        self.assertEqual(biz['total_amount'], '500.00')
        self.assertEqual(biz['product_code'], 'FAST_INSTANT_TRADE_PAY')
        self.assertEqual(biz['subject'], order.title)
        self.assertEqual(biz['time_expire'], (
                order.pay_deadline + dt.timedelta(hours=8)).strftime(
                '%Y-%m-%d %H:%M:%S'))
        # Requests are signed over every parameter but sign
        unsigned = '&'.join(f'{k}={v}' for k, v in sorted(params.items())
            if k != 'sign')
        self.assertTrue(
            verify(self.fake.app_public, unsigned, params['sign']))
        self.assertFalse(verify(self.fake.public, unsigned, params['sign']))

        # Paying again: the same trade, the same payment
        again = Payment.start(order)
        biz2 = json.loads(dict(urllib.parse.parse_qsl(
                    urllib.parse.urlsplit(again['url']).query))['biz_content'])
        self.assertEqual(biz2['out_trade_no'], order.number)
        self.assertEqual(Payment.search([('order', '=', order.id)],
                count=True), 1)

    @with_transaction()
    def test_page_pay_amount_decimals(self):
        "total_amount always has 2 decimals"
        pool = Pool()
        Course = pool.get('course.course')
        cat, _ = self.setup_account()
        Course.write([cat.course_c], {'price': Decimal('299.5')})
        order, answer = self.order(cat, cat.course_c)
        params = dict(urllib.parse.parse_qsl(
                urllib.parse.urlsplit(answer['url']).query))
        self.assertEqual(
            json.loads(params['biz_content'])['total_amount'], '299.50')

    # ---- query and close ----------------------------------------------------

    @with_transaction()
    def test_query(self):
        "Query: no trade → unpaid; waiting → unpaid; paid → succeeded"
        Payment = Pool().get('course.payment')
        cat, _ = self.setup_account()
        order, _ = self.order(cat)
        payment, = order.payments
        self.assertEqual(Payment.query([payment]), {payment: 'unpaid'})
        self.fake.pay(order.number, '500', status='WAIT_BUYER_PAY')
        self.assertEqual(Payment.query([payment]), {payment: 'unpaid'})
        self.assertEqual(order.state, 'unpaid')
        trade = self.fake.pay(order.number, '500')
        self.assertEqual(Payment.query([payment]), {payment: 'paid'})
        payment = Payment(payment.id)
        self.assertEqual(
            (payment.state, payment.reference, payment.buyer),
            ('succeeded', trade['trade_no'], trade['buyer_user_id']))
        self.assertTrue(payment.paid_at)
        self.assertEqual(order.state, 'paid')
        self.assertEqual(len(order.enrollments), 1)
        apis = [m.api for m in payment.messages]
        self.assertIn('alipay.trade.query', apis)

    @with_transaction()
    def test_query_gateway_failures(self):
        "The gateway down, slow, 5xx, garbage, badly signed: unknown"
        Payment = Pool().get('course.payment')
        cat, _ = self.setup_account()
        order, _ = self.order(cat)
        self.fake.pay(order.number, '500')
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
        "Cancel closes the trade; a trade Alipay never saw is closed too"
        pool = Pool()
        Order = pool.get('course.order')
        cat, _ = self.setup_account()
        order, _ = self.order(cat)
        self.fake.pay(order.number, '500', status='WAIT_BUYER_PAY')
        Order.cancel([order])
        self.assertEqual(order.state, 'cancelled')
        self.assertEqual(
            self.fake.trades[order.number]['trade_status'], 'TRADE_CLOSED')
        payment, = order.payments
        self.assertEqual(payment.state, 'cancelled')
        order2, _ = self.order(cat, cat.course_c)
        Order.cancel([order2])
        self.assertEqual(order2.payments[0].state, 'cancelled')
        self.assertEqual(self.fake.count('alipay.trade.close'), 2)

    @with_transaction()
    def test_close_gateway_down(self):
        "The gateway down: cancelling raises a clear error"
        Order = Pool().get('course.order')
        cat, _ = self.setup_account()
        order, _ = self.order(cat)
        for mode in ['down', '500', 'garbage', 'badsign']:
            with self.subTest(mode=mode):
                self.fake.mode = mode
                with self.assertRaises(UserError) as cm:
                    Order.cancel([Order(order.id)])
                self.assertIn('Nothing was changed', cm.exception.message)

    # ---- refunds ---------------------------------------------------------------

    @with_transaction()
    def test_refund_full(self):
        "A refund of the whole order through the gateway"
        pool = Pool()
        Refund = pool.get('course.payment.refund')
        cat, _ = self.setup_account()
        order, payment = self.paid(cat)
        refund = Refund.refund_order(order, reason="Changed my mind")
        self.assertEqual(refund.state, 'succeeded')
        self.assertEqual(order.state, 'refunded')
        self.assertEqual(Pool().get('course.payment')(payment.id).state,
            'refunded')
        self.assertEqual(self.fake.trades[order.number]['refunds'],
            {refund.number: Decimal('500')})
        method, biz = [c for c in self.fake.calls
            if c[0] == 'alipay.trade.refund'][0]
        self.assertEqual(
            (biz['out_trade_no'], biz['refund_amount'],
                biz['out_request_no'], biz['refund_reason']),
            (order.number, '500.00', refund.number, "Changed my mind"))
        # Refund query
        self.assertEqual(Pool().get('course.payment')
            ._provider_refund_query_alipay(refund), 'succeeded')

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
        self.assertEqual(self.fake.trades[order.number]['refunds'], {
                refund.number: Decimal('300'),
                refund2.number: Decimal('500')})

    @with_transaction()
    def test_refund_replayed_number(self):
        "Alipay answers fund_change N for a known request: pending, query"
        pool = Pool()
        Refund = pool.get('course.payment.refund')
        Payment = pool.get('course.payment')
        cat, _ = self.setup_account()
        order, payment = self.paid(cat)
        number = f'{order.number}R01'
        # A first call whose answer was lost (the transaction rolled back)
        self.fake.trades[order.number]['refunds'][number] = Decimal('500')
        refund = Refund.refund_order(order)
        self.assertEqual(refund.number, number)
        self.assertEqual(refund.state, 'pending')
        self.assertEqual(order.state, 'refunding')
        Refund.query([refund])
        self.assertEqual(refund.state, 'succeeded')
        self.assertEqual(order.state, 'refunded')
        self.assertEqual(Payment(payment.id).state, 'refunded')

    @with_transaction()
    def test_refund_query_unknown_refund(self):
        "A refund Alipay has no trace of failed"
        pool = Pool()
        Refund = pool.get('course.payment.refund')
        Payment = pool.get('course.payment')
        cat, _ = self.setup_account()
        order, payment = self.paid(cat)
        refund = Refund.refund_order(order)
        self.fake.trades[order.number]['refunds'].clear()
        self.assertEqual(
            Payment._provider_refund_query_alipay(refund), 'failed')

    @with_transaction()
    def test_refund_gateway_failures(self):
        "The gateway failing: a clear error (the caller rolls back)"
        pool = Pool()
        Refund = pool.get('course.payment.refund')
        cat, _ = self.setup_account()
        for mode in ['down', 'slow', '500', 'garbage', 'badsign', 'error']:
            with self.subTest(mode=mode):
                # A new order each: the test's transaction keeps what a
                # caller's rollback would undo
                self.fake.mode = 'ok'
                party, = Pool().get('party.party').create([{'name': mode}])
                order, _ = self.paid(cat, party=party)
                self.fake.mode = mode
                with self.assertRaises(UserError) as cm:
                    Refund.refund_order(order)
                self.assertIn('Alipay', cm.exception.message)
                self.assertIn('Nothing was changed', cm.exception.message)
                if mode not in {'slow', 'badsign'}:
                    # (slow, badsign: Alipay refunded, its answer is lost
                    # or untrusted; the retry with the same number is
                    # idempotent, see test_refund_replayed_number)
                    self.assertEqual(
                        self.fake.trades[order.number]['refunds'], {})

    @with_transaction()
    def test_refund_refused(self):
        "Alipay refuses a refund: the business error is shown"
        pool = Pool()
        Refund = pool.get('course.payment.refund')
        cat, _ = self.setup_account()
        order, _ = self.paid(cat)
        self.fake.trades[order.number]['trade_status'] = 'TRADE_CLOSED'
        with self.assertRaises(UserError) as cm:
            Refund.refund_order(order)
        self.assertIn('ACQ.TRADE_STATUS_ERROR', cm.exception.message)


del ModuleTestCase

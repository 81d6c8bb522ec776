"""The notify and return routes through trytond's WSGI application, with
committed data (each request runs in a transaction of its own), and the
gateway failures rolled back by the caller's transaction"""
import datetime as dt
import unittest
import urllib.parse
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.modules.course.tests.tools import (
    CommittedTestMixin, TransactionStarts, create_catalog)
from trytond.pool import Pool

from .tools import FakeAlipay, key_pair


class AlipayRouteTestCase(CommittedTestMixin, unittest.TestCase):
    "Alipay's notify and the browser's return through the WSGI app"
    module = 'course_payment_alipay'

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeAlipay().start()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.fake.stop()

    @classmethod
    def setup_data(cls):
        super().setup_data()
        pool = Pool()
        Account = pool.get('course.payment.alipay.account')
        Company = pool.get('company.company')
        Account.create([cls.fake.account_values(cls.company_id)])
        cat = create_catalog(Company(cls.company_id))
        cls.course_ids = {
            'b': cat.course_b.id, 'c': cat.course_c.id}

    def setUp(self):
        super().setUp()
        from werkzeug.test import Client

        from trytond.protocols import dispatcher  # noqa: F401
        from trytond.tests.test_tryton import DB_NAME
        from trytond.wsgi import app
        self.client = Client(app)
        self.db = DB_NAME
        self.fake.mode = 'ok'

    # ---- helpers ------------------------------------------------------------

    def new_order(self, *courses):
        "Commit a new student's order paid with Alipay, its payment started"
        def create():
            pool = Pool()
            Order = pool.get('course.order')
            Party = pool.get('party.party')
            Payment = pool.get('course.payment')
            student, = Party.create([{'name': "Student"}])
            order = Order.checkout(student.id, [
                    {'course': self.course_ids[c]} for c in courses or 'b'],
                'alipay', {})
            Payment.start(order)
            return order.id, order.number
        return self.run_transaction(create)

    def post_notify(self, params):
        response = self.client.post(
            f'/{self.db}/alipay/notify', data=params)
        return response.status_code, response.get_data(as_text=True)

    def get_return(self, params):
        query = urllib.parse.urlencode(params)
        response = self.client.get(f'/{self.db}/alipay/return?{query}')
        return response

    def state(self, order_id):
        "(order state, enrollments, [(payment state, late)], refunds)"
        def read():
            pool = Pool()
            Order = pool.get('course.order')
            order = Order(order_id)
            return (order.state, len(order.enrollments),
                [(p.state, p.late) for p in order.payments],
                [(r.state, r.amount) for r in order.refunds])
        return self.run_transaction(read)

    def overdue(self, order_id):
        "Move the order's deadline a minute back"
        def write():
            Order = Pool().get('course.order')
            Order.write([Order(order_id)], {
                    'pay_deadline': dt.datetime.now()
                    - dt.timedelta(minutes=1)})
        self.run_transaction(write)

    def messages(self, order_id, api):
        def read():
            Message = Pool().get('course.payment.message')
            return [(m.direction, m.verified) for m in Message.search([
                        ('payment.order', '=', order_id),
                        ('api', '=', api)])]
        return self.run_transaction(read)

    # ---- notify -------------------------------------------------------------

    def test_notify_paid(self):
        "A valid notify: success, the order paid, the student enrolled"
        order_id, number = self.new_order()
        trade = self.fake.pay(number, '500')
        self.assertEqual(
            self.post_notify(self.fake.notify(number)), (200, 'success'))
        self.assertEqual(self.state(order_id),
            ('paid', 1, [('succeeded', False)], []))

        def payment():
            order = Pool().get('course.order')(order_id)
            p, = order.payments
            return p.reference, p.buyer, p.amount, bool(p.paid_at)
        self.assertEqual(self.run_transaction(payment), (
                trade['trade_no'], trade['buyer_user_id'], Decimal('500'),
                True))
        self.assertEqual(self.messages(order_id, 'notify'), [('in', True)])

    def test_notify_one_attempt(self):
        """A valid notify runs once: a read-only lookup verifies it and
        finds its order, whose row and student's are locked when the
        handler's transaction starts (no restart to take them)"""
        order_id, number = self.new_order()
        self.fake.pay(number, '500')
        with TransactionStarts() as starts:
            self.assertEqual(
                self.post_notify(self.fake.notify(number)), (200, 'success'))
        self.assertEqual((starts.count, starts.writes), (2, 1))
        self.assertEqual(self.state(order_id)[0], 'paid')

    def test_notify_replayed(self):
        "The same notify 5 times: one payment, one fulfilment"
        order_id, number = self.new_order()
        self.fake.pay(number, '500')
        params = self.fake.notify(number)
        refunds = self.fake.count('alipay.trade.refund')
        for _ in range(5):
            self.assertEqual(self.post_notify(params), (200, 'success'))
        self.assertEqual(self.state(order_id),
            ('paid', 1, [('succeeded', False)], []))
        self.assertEqual(self.fake.count('alipay.trade.refund'), refunds)

    def test_notify_refused(self):
        "What does not verify: failure, nothing changed"
        order_id, number = self.new_order()
        self.fake.pay(number, '500')
        other_key, _, _ = key_pair('app')
        good = self.fake.notify(number)
        tampered = dict(good, total_amount='0.01')
        cases = {
            'bad signature': self.fake.notify(number, key=other_key),
            'tampered': tampered,
            'no signature': {k: v for k, v in good.items() if k != 'sign'},
            'other sign_type': dict(good, sign_type='RSA'),
            'garbage sign': dict(good, sign='%%%not base64'),
            'other app_id': self.fake.notify(number, app_id='2021999'),
            'other seller': self.fake.notify(number, seller_id='2088999'),
            'wrong amount': self.fake.notify(number, total_amount='499.99'),
            'bad amount': self.fake.notify(number, total_amount='abc'),
            'unknown order': self.fake.notify('NOSUCHORDER'),
            'unknown status': self.fake.notify(
                number, trade_status='TRADE_WHATEVER'),
            'no trade_no': self.fake.notify(number, trade_no=''),
            'empty': {},
            }
        for name, params in cases.items():
            with self.subTest(case=name):
                self.assertEqual(self.post_notify(params), (200, 'failure'))
        self.assertEqual(self.state(order_id),
            ('unpaid', 0, [('pending', False)], []))
        # Raw garbage bodies
        for body in [b'\xff\xfe', b'a=%zz&&&=', b'{"json": 1}', b'x' * 10000]:
            response = self.client.post(
                f'/{self.db}/alipay/notify', data=body,
                content_type='application/x-www-form-urlencoded')
            self.assertEqual(
                (response.status_code, response.get_data(as_text=True)),
                (200, 'failure'))
        self.assertEqual(self.state(order_id)[0], 'unpaid')
        # Verified but refused (other seller, amount): recorded for staff
        self.assertTrue(self.messages(order_id, 'notify'))
        self.assertTrue(all(v for _, v in self.messages(order_id, 'notify')))

    def test_notify_wait_buyer_pay(self):
        "WAIT_BUYER_PAY verified: success, nothing changed"
        order_id, number = self.new_order()
        self.fake.pay(number, '500', status='WAIT_BUYER_PAY')
        self.assertEqual(
            self.post_notify(self.fake.notify(number)), (200, 'success'))
        self.assertEqual(self.state(order_id),
            ('unpaid', 0, [('pending', False)], []))

    def test_notify_late(self):
        """Paid after the order expired: recorded late, refunded through
        the gateway, listed for staff; the order stays expired"""
        order_id, number = self.new_order()
        self.fake.pay(number, '500', status='WAIT_BUYER_PAY')
        self.overdue(order_id)
        run = self.run_transaction(
            lambda: Pool().get('course.order')._run_expiry())
        self.assertIn(order_id, run.expired, str(run))
        self.assertEqual(self.fake.trades[number]['trade_status'],
            'TRADE_CLOSED')
        # The buyer's payment went through anyway (a race at Alipay)
        self.fake.pay(number, '500')
        self.assertEqual(
            self.post_notify(self.fake.notify(number)), (200, 'success'))
        self.assertEqual(self.state(order_id), (
                'expired', 0, [('refunded', True)],
                [('succeeded', Decimal('500'))]))
        refund, = self.fake.trades[number]['refunds'].values()
        self.assertEqual(refund, Decimal('500'))
        # Replayed: nothing more
        self.assertEqual(
            self.post_notify(self.fake.notify(number)), (200, 'success'))
        self.assertEqual(len(self.fake.trades[number]['refunds']), 1)

        def late():
            Payment = Pool().get('course.payment')
            return [p.order.id for p in Payment.search([('late', '=', True)])]
        self.assertIn(order_id, self.run_transaction(late))

    # ---- return ---------------------------------------------------------------

    def test_return(self):
        "A verified return: queried, paid, redirected to the storefront"
        order_id, number = self.new_order()
        self.fake.pay(number, '500')
        calls = self.fake.count('alipay.trade.query')
        response = self.get_return(self.fake.return_params(number))
        self.assertEqual(response.status_code, 302)
        # (asked again when the call restarts to lock the order)
        location = urllib.parse.urlsplit(response.headers['Location'])
        self.assertEqual(
            f'{location.scheme}://{location.netloc}{location.path}',
            'https://shop.test/paid')
        self.assertEqual(dict(urllib.parse.parse_qsl(location.query)), {
                'from': 'alipay', 'order': number, 'state': 'paid'})
        self.assertGreater(self.fake.count('alipay.trade.query'), calls)
        self.assertEqual(self.state(order_id),
            ('paid', 1, [('succeeded', False)], []))

    def test_return_not_paid_or_gateway_down(self):
        "A return of a trade not paid, or the gateway down: still unpaid"
        order_id, number = self.new_order()
        self.fake.pay(number, '500', status='WAIT_BUYER_PAY')
        response = self.get_return(self.fake.return_params(number))
        self.assertEqual(response.status_code, 302)
        self.assertIn('state=unpaid', response.headers['Location'])
        self.fake.pay(number, '500')
        self.fake.mode = '500'
        response = self.get_return(self.fake.return_params(number))
        self.assertEqual(response.status_code, 302)
        self.assertIn('state=unpaid', response.headers['Location'])
        self.assertEqual(self.state(order_id)[0], 'unpaid')

    def test_return_refused(self):
        "A return that does not verify: 400, nothing asked, nothing changed"
        order_id, number = self.new_order()
        self.fake.pay(number, '500')
        other_key, _, _ = key_pair('app')
        calls = self.fake.count('alipay.trade.query')
        for params in [
                self.fake.return_params(number, key=other_key),
                self.fake.return_params(number, app_id='2021999'),
                self.fake.return_params('NOSUCHORDER'),
                {}, {'sign': 'x'}]:
            response = self.get_return(params)
            self.assertEqual(response.status_code, 400)
        self.assertEqual(self.fake.count('alipay.trade.query'), calls)
        self.assertEqual(self.state(order_id)[0], 'unpaid')

    # ---- the gateway failing: the caller's transaction is rolled back -------

    def test_gateway_failures_change_nothing(self):
        "Cancel and refund with the gateway failing: clear error, no change"
        order_id, number = self.new_order()
        paid_id, paid_number = self.new_order('c')
        self.fake.pay(paid_number, '300')
        self.assertEqual(
            self.post_notify(self.fake.notify(paid_number)),
            (200, 'success'))

        def cancel():
            Order = Pool().get('course.order')
            Order.cancel([Order(order_id)])

        def refund():
            Refund = Pool().get('course.payment.refund')
            Refund.refund_order(Pool().get('course.order')(paid_id))
        for mode in ['down', 'slow', '500', 'garbage', 'badsign', 'error']:
            for func in [cancel, refund]:
                with self.subTest(mode=mode, action=func.__name__):
                    self.fake.mode = mode
                    with self.assertRaises(UserError) as cm:
                        self.run_transaction(func)
                    self.assertIn('Nothing was changed', cm.exception.message)
        self.assertEqual(self.state(order_id),
            ('unpaid', 0, [('pending', False)], []))
        self.assertEqual(self.state(paid_id),
            ('paid', 1, [('succeeded', False)], []))
        # Slow: Alipay made the refund after we gave up waiting; the
        # number is the order's, so the retry refunds once
        self.assertEqual(self.fake.trades[paid_number]['refunds'],
            {f'{paid_number}R01': Decimal('300')})
        # Back up: both work
        self.fake.mode = 'ok'
        self.run_transaction(cancel)
        self.run_transaction(refund)
        self.assertEqual(self.state(order_id)[0], 'cancelled')
        self.assertEqual(self.state(paid_id)[0], 'refunding')

        def check():
            Refund = Pool().get('course.payment.refund')
            Refund.query(Refund.search([('state', '=', 'pending')]))
        self.run_transaction(check)
        self.assertEqual(self.state(paid_id), (
                'refunded', 1, [('refunded', False)],
                [('succeeded', Decimal('300'))]))
        self.assertEqual(len(self.fake.trades[paid_number]['refunds']), 1)

    def test_expiry_gateway_down(self):
        "The expiry job with the gateway down: the order is not expired"
        order_id, number = self.new_order()
        self.fake.pay(number, '500')
        self.overdue(order_id)
        self.fake.mode = 'down'
        self.run_transaction(
            lambda: Pool().get('course.order').expire_overdue())
        self.assertEqual(self.state(order_id)[0], 'unpaid')
        self.fake.mode = 'ok'
        self.run_transaction(
            lambda: Pool().get('course.order').expire_overdue())
        # The trade was paid: the job pays the order instead
        self.assertEqual(self.state(order_id),
            ('paid', 1, [('succeeded', False)], []))

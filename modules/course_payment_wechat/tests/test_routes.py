"""The notify route through trytond's WSGI application, with committed data
(each request runs in a transaction of its own), refund events, late
payments, and the expiry job asking WeChat Pay"""
import datetime as dt
import json
import time
import unittest
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.modules.course.tests.tools import (
    CommittedTestMixin, TransactionStarts, create_catalog)
from trytond.pool import Pool

from .tools import FakeWechat, key_pair


def flip(text):
    "text with its first character changed"
    return ('B' if text[0] == 'A' else 'A') + text[1:]


class WechatRouteTestCase(CommittedTestMixin, unittest.TestCase):
    "WeChat Pay's notifications through the WSGI app"
    module = 'course_payment_wechat'

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeWechat().start()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.fake.stop()

    @classmethod
    def setup_data(cls):
        super().setup_data()
        pool = Pool()
        Account = pool.get('course.payment.wechat.account')
        Company = pool.get('company.company')
        Account.create([cls.fake.account_values(cls.company_id)])
        cat = create_catalog(Company(cls.company_id))
        cls.course_ids = {'b': cat.course_b.id, 'c': cat.course_c.id}

    def setUp(self):
        super().setUp()
        from werkzeug.test import Client

        from trytond.protocols import dispatcher  # noqa: F401
        from trytond.tests.test_tryton import DB_NAME
        from trytond.wsgi import app
        self.client = Client(app)
        self.db = DB_NAME
        self.fake.mode = 'ok'
        self.fake.refund_status = 'SUCCESS'

    # ---- helpers ------------------------------------------------------------

    def new_order(self, *courses):
        "Commit a new student's order paid with WeChat Pay, its code asked"
        def create():
            pool = Pool()
            Order = pool.get('course.order')
            Party = pool.get('party.party')
            Payment = pool.get('course.payment')
            student, = Party.create([{'name': "Student"}])
            order = Order.checkout(student.id, [
                    {'course': self.course_ids[c]} for c in courses or 'b'],
                'wechat', {})
            Payment.start(order)
            return order.id, order.number
        return self.run_transaction(create)

    def post(self, notification):
        "POST (headers, body) to the notify route: (status, JSON answer)"
        headers, body = notification
        response = self.client.post(
            f'/{self.db}/wechat/notify', data=body, headers=headers)
        return response.status_code, json.loads(response.get_data())

    def state(self, order_id):
        "(order state, enrollments, [(payment state, late)], refunds)"
        def read():
            order = Pool().get('course.order')(order_id)
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

    def refund_order(self, order_id, lines=None):
        "The staff's refund of the order (all, or the courses' lines)"
        def refund():
            pool = Pool()
            Refund = pool.get('course.payment.refund')
            order = pool.get('course.order')(order_id)
            selected = [l for l in order.lines
                if l.course.id in lines] if lines else None
            refund = Refund.refund_order(order, selected, reason="Staff")
            return refund.number, refund.state
        return self.run_transaction(refund)

    def refunds_of(self, number):
        "The out_refund_no of the transaction's refunds at the fake"
        return [n for n, r in self.fake.refunds.items()
            if r['out_trade_no'] == number]

    SUCCESS = (200, {'code': 'SUCCESS'})

    # ---- payment notifications -----------------------------------------------

    def test_notify_paid(self):
        "A valid notification: SUCCESS, the order paid, the student enrolled"
        order_id, number = self.new_order()
        trade = self.fake.pay(number)
        self.assertEqual(
            self.post(self.fake.payment_notification(number)), self.SUCCESS)
        self.assertEqual(self.state(order_id),
            ('paid', 1, [('succeeded', False)], []))

        def payment():
            order = Pool().get('course.order')(order_id)
            p, = order.payments
            return p.reference, p.buyer, p.amount, bool(p.paid_at)
        self.assertEqual(self.run_transaction(payment), (
                trade['transaction_id'], trade['payer']['openid'],
                Decimal('500'), True))
        self.assertEqual(self.messages(order_id, 'notify'), [('in', True)])

    def test_notify_one_attempt(self):
        """A valid notification runs once: a read-only lookup verifies it
        and finds its order, whose row and student's are locked when the
        handler's transaction starts (no restart to take them)"""
        order_id, number = self.new_order()
        self.fake.pay(number)
        with TransactionStarts() as starts:
            self.assertEqual(self.post(
                    self.fake.payment_notification(number)), self.SUCCESS)
        self.assertEqual((starts.count, starts.writes), (2, 1))
        self.assertEqual(self.state(order_id)[0], 'paid')

    def test_notify_replayed(self):
        "The same notification 5 times: one payment, one enrollment"
        order_id, number = self.new_order()
        self.fake.pay(number)
        notification = self.fake.payment_notification(number)
        refunds = self.fake.count('refund')
        for _ in range(5):
            self.assertEqual(self.post(notification), self.SUCCESS)
        self.assertEqual(self.state(order_id),
            ('paid', 1, [('succeeded', False)], []))
        self.assertEqual(self.fake.count('refund'), refunds)
        self.assertEqual(len(self.messages(order_id, 'notify')), 5)

    def test_notify_refused(self):
        "What does not verify: 4xx FAIL, nothing changed"
        order_id, number = self.new_order()
        self.fake.pay(number)
        other_key, _, _ = key_pair('merchant')
        headers, body = self.fake.payment_notification(number)
        tampered = body.replace(b'"ciphertext": "', b'"ciphertext": "AAAA')
        resigned_tampered = (
            self.fake.signed_headers(tampered.decode()), tampered)
        now = int(time.time())
        cases = {
            'bad signature': (self.fake.payment_notification(
                    number, key=other_key), 401),
            'tampered body': ((headers, body.replace(b'NATIVE', b'NATIVX')
                    if b'NATIVE' in body else body + b' '), 401),
            'tampered ciphertext': (resigned_tampered, 401),
            'tampered signature': ((dict(headers,
                        **{'Wechatpay-Signature': flip(headers[
                                'Wechatpay-Signature'])}), body), 401),
            'garbage signature': ((dict(headers,
                        **{'Wechatpay-Signature': '%%%'}), body), 401),
            'no signature type': (({k: v for k, v in headers.items()
                        if k != 'Wechatpay-Signature-Type'}, body), 400),
            'other signature type': ((dict(headers,
                        **{'Wechatpay-Signature-Type': 'SM2'}), body), 400),
            'unknown serial': (self.fake.payment_notification(
                    number, serial='PUB_KEY_ID_OTHER'), 400),
            'non-hex serial': ((dict(headers,
                        **{'Wechatpay-Serial': 'zz'}), body), 400),
            'other APIv3 key': (self.fake.payment_notification(
                    number, apiv3_key='k' * 32), 401),
            'old timestamp': (self.fake.payment_notification(
                    number, timestamp=now - 301), 400),
            'year 2000': (self.fake.payment_notification(
                    number, timestamp=946684800), 400),
            'far future': (self.fake.payment_notification(
                    number, timestamp=now + 3600), 400),
            'bad timestamp': ((dict(headers,
                        **{'Wechatpay-Timestamp': 'soon'}), body), 400),
            'other mchid': (self.fake.payment_notification(
                    number, mchid='1900000999'), 400),
            'other appid': (self.fake.payment_notification(
                    number, appid='wx0000000000000000'), 400),
            'wrong amount': (self.fake.payment_notification(
                    number, amount={'total': 49999, 'currency': 'CNY'}), 400),
            'amount as text': (self.fake.payment_notification(
                    number, amount={'total': '50000'}), 400),
            'amount as float': (self.fake.payment_notification(
                    number, amount={'total': 50000.0}), 400),
            'unknown order': (self.fake.payment_notification(
                    'NOSUCHORDER'), 404),
            'not paid': (self.fake.payment_notification(
                    number, trade_state='NOTPAY'), 400),
            'no transaction_id': (self.fake.payment_notification(
                    number, transaction_id=''), 400),
            'other event': (self.fake.notification('TRANSACTION.WHATEVER',
                    self.fake.payment_resource(number)), 400),
            'no headers': (({}, body), 400),
            }
        for name, (notification, status) in cases.items():
            with self.subTest(case=name):
                code, answer = self.post(notification)
                self.assertEqual(code, status)
                self.assertEqual(answer['code'], 'FAIL')
                self.assertTrue(answer['message'])
        self.assertEqual(self.state(order_id),
            ('unpaid', 0, [('pending', False)], []))
        # Raw garbage bodies, signed or not
        for raw in [b'\xff\xfe', b'{"json": 1}', b'[]', b'x' * 100000]:
            for headers_ in [{}, self.fake.signed_headers(
                        raw.decode('latin-1'))]:
                response = self.client.post(
                    f'/{self.db}/wechat/notify', data=raw, headers=headers_)
                self.assertIn(response.status_code, {400, 401, 413})
                self.assertEqual(
                    json.loads(response.get_data())['code'], 'FAIL')
        self.assertEqual(self.state(order_id)[0], 'unpaid')
        # Decrypted but refused (mchid, amount, state): recorded for staff
        messages = self.messages(order_id, 'notify')
        self.assertEqual(len(messages), 7)
        self.assertTrue(all(v for _, v in messages))
        # The genuine one still pays
        self.assertEqual(
            self.post(self.fake.payment_notification(number)), self.SUCCESS)
        self.assertEqual(self.state(order_id)[0], 'paid')

    def test_notify_without_module(self):
        "GET is not the route; an unknown database is not found"
        response = self.client.get(f'/{self.db}/wechat/notify')
        self.assertEqual(response.status_code, 405)

    def test_notify_late(self):
        """Paid after the order expired: recorded late, refunded through
        the gateway, listed for staff; the order stays expired"""
        order_id, number = self.new_order()
        self.overdue(order_id)
        run = self.run_transaction(
            lambda: Pool().get('course.order')._run_expiry())
        self.assertIn(order_id, run.expired, str(run))
        self.assertEqual(self.fake.trades[number]['trade_state'], 'CLOSED')
        # The buyer's payment went through anyway (a race at WeChat Pay)
        self.fake.pay(number)
        self.fake.refund_status = 'PROCESSING'
        self.assertEqual(
            self.post(self.fake.payment_notification(number)), self.SUCCESS)
        self.assertEqual(self.state(order_id), (
                'expired', 0, [('late', True)],
                [('pending', Decimal('500'))]))
        out_refund_no, = self.refunds_of(number)
        self.assertEqual(
            self.fake.refunds[out_refund_no]['amount']['refund'], 50000)
        # Replayed: nothing more
        self.assertEqual(
            self.post(self.fake.payment_notification(number)), self.SUCCESS)
        self.assertEqual(len(self.refunds_of(number)), 1)
        # WeChat Pay tells the refund went through
        self.assertEqual(
            self.post(self.fake.refund_notification(out_refund_no)),
            self.SUCCESS)
        self.assertEqual(self.state(order_id), (
                'expired', 0, [('refunded', True)],
                [('succeeded', Decimal('500'))]))

        def late():
            Payment = Pool().get('course.payment')
            return [p.order.id for p in Payment.search([('late', '=', True)])]
        self.assertIn(order_id, self.run_transaction(late))

    def test_notify_after_cancel(self):
        "Paid after the student cancelled: late, refunded at once"
        order_id, number = self.new_order()

        def cancel():
            Order = Pool().get('course.order')
            Order.cancel([Order(order_id)])
        self.run_transaction(cancel)
        self.fake.pay(number)
        self.assertEqual(
            self.post(self.fake.payment_notification(number)), self.SUCCESS)
        self.assertEqual(self.state(order_id), (
                'cancelled', 0, [('refunded', True)],
                [('succeeded', Decimal('500'))]))

    # ---- refund notifications ------------------------------------------------

    def test_refund_events(self):
        """A full refund PROCESSING leaves the order refunding; REFUND.SUCCESS
        completes it (replays change nothing); a partial one likewise"""
        order_id, number = self.new_order('b', 'c')
        self.fake.pay(number)
        self.assertEqual(
            self.post(self.fake.payment_notification(number)), self.SUCCESS)
        self.fake.refund_status = 'PROCESSING'
        partial, state = self.refund_order(order_id, [self.course_ids['c']])
        self.assertEqual(state, 'pending')
        self.assertEqual(
            self.post(self.fake.refund_notification(partial)), self.SUCCESS)
        self.assertEqual(self.state(order_id), (
                'paid', 2, [('partially_refunded', False)],
                [('succeeded', Decimal('300'))]))
        full, state = self.refund_order(order_id)
        self.assertEqual(self.state(order_id)[0], 'refunding')
        notification = self.fake.refund_notification(full)
        for _ in range(3):
            self.assertEqual(self.post(notification), self.SUCCESS)
        self.assertEqual(self.state(order_id), (
                'refunded', 2, [('refunded', False)],
                [('succeeded', Decimal('500')),
                    ('succeeded', Decimal('300'))]))

    def test_refund_events_refused_and_abnormal(self):
        """Refund notifications of an unknown refund, another amount or
        merchant are refused; ABNORMAL makes the refund failed"""
        order_id, number = self.new_order()
        self.fake.pay(number)
        self.assertEqual(
            self.post(self.fake.payment_notification(number)), self.SUCCESS)
        self.fake.refund_status = 'PROCESSING'
        refund_no, _ = self.refund_order(order_id)
        self.fake.refunds['NOSUCHREFUND'] = dict(
            self.fake.refunds[refund_no], out_refund_no='NOSUCHREFUND')
        for notification, status in [
                (self.fake.refund_notification('NOSUCHREFUND'), 404),
                (self.fake.refund_notification(
                        refund_no, amount={'refund': 1, 'total': 50000}),
                    400),
                (self.fake.refund_notification(
                        refund_no, mchid='1900000999'), 400),
                (self.fake.refund_notification(
                        refund_no, timestamp=int(time.time()) - 600), 400),
                ]:
            code, answer = self.post(notification)
            self.assertEqual((code, answer['code']), (status, 'FAIL'))
        self.assertEqual(self.state(order_id)[3],
            [('pending', Decimal('500'))])
        self.assertEqual(self.post(self.fake.refund_notification(
                    refund_no, status='ABNORMAL')), self.SUCCESS)
        self.assertEqual(self.state(order_id)[3],
            [('failed', Decimal('500'))])
        self.assertEqual(self.state(order_id)[0], 'refunding')

    def test_refund_success_after_replacement(self):
        """A failed refund that succeeds after all, when staff refunded the
        money otherwise meanwhile, stays failed (never counted twice)"""
        order_id, number = self.new_order()
        self.fake.pay(number)
        self.assertEqual(
            self.post(self.fake.payment_notification(number)), self.SUCCESS)
        self.fake.refund_status = 'PROCESSING'
        refund_no, _ = self.refund_order(order_id)
        self.assertEqual(self.post(self.fake.refund_notification(
                    refund_no, status='ABNORMAL')), self.SUCCESS)

        def replace():
            Refund = Pool().get('course.payment.refund')
            failed, = Refund.search([('number', '=', refund_no)])
            Refund.copy([failed], {
                    'number': refund_no + 'B', 'state': 'succeeded'})
        self.run_transaction(replace)
        self.assertEqual(self.post(self.fake.refund_notification(
                    refund_no, status='SUCCESS')), self.SUCCESS)
        self.assertEqual(sorted(self.state(order_id)[3]),
            [('failed', Decimal('500')), ('succeeded', Decimal('500'))])

    # ---- the expiry job and the gateway ---------------------------------------

    def test_query_from_expiry_job(self):
        """The expiry job asks WeChat Pay first: a paid transaction pays the
        order, an unpaid one is closed and the order expired"""
        paid_id, paid_number = self.new_order()
        unpaid_id, unpaid_number = self.new_order('c')
        self.fake.pay(paid_number)
        self.overdue(paid_id)
        self.overdue(unpaid_id)
        queries = self.fake.count('query')
        self.run_transaction(
            lambda: Pool().get('course.order').expire_overdue())
        self.assertGreaterEqual(self.fake.count('query'), queries + 2)
        self.assertEqual(self.state(paid_id),
            ('paid', 1, [('succeeded', False)], []))
        self.assertEqual(self.state(unpaid_id),
            ('expired', 0, [('cancelled', False)], []))
        self.assertEqual(
            self.fake.trades[unpaid_number]['trade_state'], 'CLOSED')

    def test_expiry_gateway_down(self):
        "The expiry job with the gateway down: the order is not expired"
        order_id, number = self.new_order()
        self.fake.pay(number)
        self.overdue(order_id)
        self.fake.mode = 'down'
        self.run_transaction(
            lambda: Pool().get('course.order').expire_overdue())
        self.assertEqual(self.state(order_id)[0], 'unpaid')
        self.fake.mode = 'ok'
        self.run_transaction(
            lambda: Pool().get('course.order').expire_overdue())
        self.assertEqual(self.state(order_id),
            ('paid', 1, [('succeeded', False)], []))

    def test_gateway_failures_change_nothing(self):
        "Cancel and refund with the gateway failing: clear error, no change"
        order_id, number = self.new_order()
        paid_id, paid_number = self.new_order('c')
        self.fake.pay(paid_number)
        self.assertEqual(
            self.post(self.fake.payment_notification(paid_number)),
            self.SUCCESS)

        def cancel():
            Order = Pool().get('course.order')
            Order.cancel([Order(order_id)])

        def refund():
            Refund = Pool().get('course.payment.refund')
            Refund.refund_order(Pool().get('course.order')(paid_id))
        for mode in ['down', '500', 'garbage', 'badsign', 'error']:
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
        # badsign: WeChat Pay refunded, its answer is not trusted; the
        # refund's number is the order's, so the retry refunds once
        self.assertEqual(self.refunds_of(paid_number), [f'{paid_number}R01'])
        self.fake.mode = 'ok'
        self.run_transaction(cancel)
        self.run_transaction(refund)
        self.assertEqual(self.state(order_id)[0], 'cancelled')
        self.assertEqual(self.refunds_of(paid_number), [f'{paid_number}R01'])
        self.assertEqual(self.state(paid_id), (
                'refunded', 1, [('refunded', False)],
                [('succeeded', Decimal('300'))]))

"""End to end: a student's flows over real HTTP against a running trytond
(tests/server.py), with Alipay played by the fake gateway.

The class runs on the backend of the test run: SQLite with the cart in the
database, PostgreSQL with the cart in Redis (COURSE_TEST_REDIS; with
CI=true a Redis that is not running is a failure, not a skip)."""
import json
import os
import time
import unittest
import urllib.parse
import uuid
from decimal import Decimal

from trytond import backend
from trytond.pool import Pool

from .server import ServerTestMixin, free_port
from .tools import StorefrontError, clear_redis

REDIS_URL = os.environ.get('COURSE_TEST_REDIS', 'redis://127.0.0.1:6379/15')
CI = os.environ.get('CI', '').lower() == 'true'


def redis_running():
    import redis
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        return False
    return True


class StorefrontFlowTestCase(ServerTestMixin, unittest.TestCase):
    "register → catalog → cart → preview → order → pay → enrolled, by HTTP"
    module = ['course_storefront', 'course_payment_alipay']

    @classmethod
    def setUpClass(cls):
        from trytond.modules.course_payment_alipay.tests.tools import (
            FakeAlipay)
        cls.redis = None
        if backend.name == 'postgresql':
            if not redis_running():
                if CI:
                    raise RuntimeError(f"Redis is not running at {REDIS_URL}")
                raise unittest.SkipTest(f"Redis is not running at {REDIS_URL}")
            cls.redis = REDIS_URL
            cls.server_sections = {'course': {'redis': REDIS_URL}}
        cls.fake = FakeAlipay().start()
        cls.addClassCleanup(cls.fake.stop)
        super().setUpClass()
        if cls.redis:
            clear_redis(REDIS_URL)
            cls.addClassCleanup(clear_redis, REDIS_URL)

    @classmethod
    def setup_data(cls):
        from trytond.modules.course_coupon.tests.tools import create_coupon
        super().setup_data()
        pool = Pool()
        Account = pool.get('course.payment.alipay.account')
        Company = pool.get('company.company')
        Course = pool.get('course.course')
        Lang = pool.get('ir.lang')
        company = Company(cls.company_id)
        # The Chinese messages of Accept-Language zh_CN
        Lang.load_translations(Lang.search([('code', '=', 'zh_CN')]))
        Account.create([cls.fake.account_values(cls.company_id)])
        free, = Course.create([{
                    'name': "Free", 'price': Decimal(0), 'credit': 0,
                    'direction': cls.catalog['direction'],
                    'category': cls.catalog['category'],
                    'company': cls.company_id, 'published': True,
                    }])
        cls.catalog['free'] = free.id
        coupon = create_coupon(
            company, '-30', name="Thirty off", issue_mode='claim',
            total=1000, per_party_limit=1)
        cls.coupon_id = coupon.id

    def setUp(self):
        super().setUp()
        self.fake.mode = 'ok'

    # ---- helpers ------------------------------------------------------------

    def student(self, **kwargs):
        "A client of a new registered student: (client, party id)"
        client = self.client(**kwargs)
        user = client.register(
            f'{uuid.uuid4().hex[:12]}@example.com', name="Flow Student")
        client.user_id = user['user']['id']
        party_id = self.on_server(
            lambda: Pool().get('web.user')(client.user_id).party.id)
        return client, party_id

    def assertRefused(self, type_, client, method, params=None):
        with self.assertRaises(StorefrontError) as cm:
            client.call(method, params)
        self.assertEqual(cm.exception.type, type_, cm.exception.message)
        return cm.exception

    def give_points(self, party_id, points):
        from trytond.modules.course_credit.tests.tools import grant
        self.on_server(
            lambda: grant(Pool().get('party.party')(party_id), points))

    def topup(self, party_id, amount):
        from trytond.modules.course_credit.tests.tools import topup
        self.on_server(
            lambda: topup(Pool().get('party.party')(party_id), amount))

    def pay_by_alipay(self, client, number, amount):
        """order.pay gives the page of the gateway; the student pays there
        and the gateway's signed notify is posted to the server"""
        url = client.call('order.pay', {'number': number})['url']
        gateway, _, query = url.partition('?')
        self.assertEqual(gateway, self.fake.url)
        params = dict(urllib.parse.parse_qsl(query))
        self.assertEqual(params['method'], 'alipay.trade.page.pay')
        biz = json.loads(params['biz_content'])
        self.assertEqual(
            (biz['out_trade_no'], biz['total_amount']), (number, amount))
        self.fake.pay(number, amount)
        self.assertEqual(self.server.post_form(
                f'/{self.server_database}/alipay/notify',
                self.fake.notify(number)), (200, 'success'))

    def stored_cart(self, user_id):
        """The courses of the student's cart where the server keeps it:
        Redis on PostgreSQL, the database on SQLite"""
        if self.redis:
            import redis

            from ..redis_client import key as redis_key
            server = redis.Redis.from_url(REDIS_URL, decode_responses=True)
            key = redis_key(self.server_database, 'cart', user_id)
            return sorted(int(c) for c in server.hkeys(key))
        return self.on_server(lambda: sorted(
                c.course.id for c in Pool().get('course.storefront.cart')
                .search([('user', '=', user_id)])))

    def enrolled(self, client):
        return {e['course'] for e in client.call('enrollment.list')}

    # ---- flows --------------------------------------------------------------

    def test_coupon_alipay(self):
        "A claimed coupon, paid by Alipay: the notify makes the order paid"
        client, _ = self.student()
        courses = client.call('catalog.courses', {
                'direction': self.catalog['direction']})
        self.assertIn(self.catalog['b'], [c['id'] for c in courses['items']])
        course = client.call('catalog.course', {'id': self.catalog['b']})
        self.assertEqual(course['price'], '500.00')

        cart = client.call('cart.add', {'course': self.catalog['b']})
        self.assertEqual(cart['selected_total'], '500.00')
        cart = client.call('cart.get')
        self.assertEqual(
            [(i['course'], i['selected']) for i in cart['items']],
            [(self.catalog['b'], True)])
        self.assertEqual(
            self.stored_cart(client.user_id), [self.catalog['b']])

        claimable = client.call('coupon.claimable')
        self.assertIn(self.coupon_id, [c['coupon'] for c in claimable])
        grant = client.call('coupon.claim', {'coupon': self.coupon_id})
        self.assertEqual(grant['state'], 'available')

        preview = client.call('checkout.preview', {
                'coupons': [grant['grant']]})
        self.assertEqual(preview['total'], '500.00')
        self.assertEqual(preview['coupon_discount'], '30.00')
        self.assertEqual(preview['payable'], '470.00')
        self.assertIn(grant['grant'],
            [u['grant'] for u in preview['usable_coupons']])

        order = client.call('order.create', {
                'coupons': [grant['grant']], 'pay_method': 'alipay',
                'expect_payable': preview['payable']})
        self.assertEqual(
            (order['state'], order['payable'], order['coupon_discount']),
            ('unpaid', '470.00', '30.00'))
        self.assertGreater(order['timeout_seconds'], 0)
        self.assertEqual(client.call('cart.get')['items'], [])
        self.assertEqual(self.stored_cart(client.user_id), [])
        self.assertEqual(self.enrolled(client), set())

        self.pay_by_alipay(client, order['number'], '470.00')
        paid = client.call('order.get', {'number': order['number']})
        self.assertEqual(paid['state'], 'paid')
        self.assertTrue(paid['paid_at'])
        self.assertIn(self.catalog['b'], self.enrolled(client))
        used, = client.call('coupon.mine', {})
        self.assertEqual(
            (used['state'], used['order']), ('used', order['number']))

    def test_points_alipay(self):
        "Points off the price, the rest by Alipay"
        client, party_id = self.student()
        self.give_points(party_id, 250)
        self.assertEqual(client.call('account.me')['credit_balance'], 250)
        client.call('cart.add', {'course': self.catalog['b']})
        preview = client.call('checkout.preview', {})
        # B's credit cap is 100 points, 10 points a unit
        self.assertEqual(preview['credit']['balance'], 250)
        self.assertEqual(preview['credit']['max_usable'], 100)
        preview = client.call('checkout.preview', {'credit': 100})
        self.assertEqual(
            (preview['credit_discount'], preview['payable']),
            ('10.00', '490.00'))
        self.assertRefused('credit.over_limit', client, 'checkout.preview', {
                'credit': 200})

        order = client.call('order.create', {
                'credit': 100, 'pay_method': 'alipay',
                'expect_payable': '490.00'})
        self.assertEqual(
            (order['credit_discount'], order['payable']), ('10.00', '490.00'))
        self.assertEqual(client.call('account.me')['credit_balance'], 150)
        self.pay_by_alipay(client, order['number'], '490.00')
        self.assertEqual(client.call(
                'order.get', {'number': order['number']})['state'], 'paid')
        self.assertIn(self.catalog['b'], self.enrolled(client))

    def test_wallet(self):
        "Paid from the wallet at once"
        client, party_id = self.student()
        self.topup(party_id, '600')
        self.assertEqual(client.call('account.me')['wallet_balance'], '600.00')
        client.call('cart.add', {'course': self.catalog['b']})
        order = client.call('order.create', {
                'pay_method': 'wallet', 'expect_payable': '500.00'})
        self.assertEqual((order['state'], order['payable']), ('paid', '500.00'))
        self.assertEqual(client.call('account.me')['wallet_balance'], '100.00')
        self.assertIn(self.catalog['b'], self.enrolled(client))
        self.assertRefused('order.not_unpaid', client, 'order.pay', {
                'number': order['number']})

    def test_wallet_short(self):
        "A wallet short of the payable: refused, nothing ordered"
        client, party_id = self.student()
        self.topup(party_id, '100')
        client.call('cart.add', {'course': self.catalog['c']})
        self.assertRefused('wallet.balance_short', client, 'order.create', {
                'pay_method': 'wallet'})
        self.assertEqual(client.call('order.list', {})['total'], 0)
        self.assertEqual(client.call('account.me')['wallet_balance'], '100.00')
        self.assertEqual(len(client.call('cart.get')['items']), 1)

    def test_free_course(self):
        "A free course: paid at once, no payment page"
        client, _ = self.student()
        client.call('cart.add', {'course': self.catalog['free']})
        order = client.call('order.create', {
                'pay_method': 'alipay', 'expect_payable': '0'})
        self.assertEqual((order['state'], order['payable']), ('paid', '0.00'))
        got = client.call('order.get', {'number': order['number']})
        self.assertEqual(got['pay_method'], 'free')
        self.assertIn(self.catalog['free'], self.enrolled(client))

    def test_cancel(self):
        "Cancelled: the points come back, it cannot be paid"
        client, party_id = self.student()
        self.give_points(party_id, 100)
        client.call('cart.add', {'course': self.catalog['b']})
        order = client.call('order.create', {
                'credit': 100, 'pay_method': 'alipay'})
        self.assertEqual(client.call('account.me')['credit_balance'], 0)
        cancelled = client.call('order.cancel', {'number': order['number']})
        self.assertEqual(cancelled['state'], 'cancelled')
        self.assertTrue(cancelled['cancelled_at'])
        self.assertEqual(client.call('account.me')['credit_balance'], 100)
        self.assertRefused('order.not_unpaid', client, 'order.pay', {
                'number': order['number']})
        self.assertRefused('order.not_unpaid', client, 'order.cancel', {
                'number': order['number']})
        self.assertEqual(self.enrolled(client), set())

    def test_expiry(self):
        """An order not paid in time: the expiry job expires it and closes
        the trade, it cannot be paid any more"""
        def set_timeout(seconds):
            Configuration = Pool().get('course.configuration')
            config = Configuration(1)
            config.order_timeout = seconds
            config.save()

        client, _ = self.student()
        client.call('cart.add', {'course': self.catalog['c']})
        self.on_server(set_timeout, 3)
        try:
            order = client.call('order.create', {'pay_method': 'alipay'})
        finally:
            self.on_server(set_timeout, 900)
        self.assertLessEqual(order["timeout_seconds"], 3)
        url = client.call('order.pay', {'number': order['number']})['url']
        self.assertTrue(url.startswith(self.fake.url))
        # The student opened the page and did not pay
        self.fake.pay(order['number'], '300.00', status='WAIT_BUYER_PAY')
        time.sleep(order['timeout_seconds'] + 1)
        self.assertRefused('order.not_unpaid', client, 'order.pay', {
                'number': order['number']})

        run = self.on_server(
            lambda: Pool().get('course.order')._run_expiry())
        self.assertEqual(len(run.expired), 1, str(run))
        expired = client.call('order.get', {'number': order['number']})
        self.assertEqual(expired['state'], 'expired')
        self.assertEqual(
            self.fake.trades[order['number']]['trade_status'], 'TRADE_CLOSED')
        self.assertEqual(self.enrolled(client), set())
        # The course can be ordered again
        client.call('cart.add', {'course': self.catalog['c']})

    def test_sync(self):
        "Paid on the gateway without a notify: order.sync asks it"
        client, _ = self.student()
        client.call('cart.add', {'course': self.catalog['c']})
        order = client.call('order.create', {'pay_method': 'alipay'})
        self.assertEqual(client.call('order.sync', {
                    'number': order['number']})['state'], 'unpaid')
        client.call('order.pay', {'number': order['number']})
        self.fake.pay(order['number'], '300.00')
        self.assertEqual(client.call('order.sync', {
                    'number': order['number']})['state'], 'paid')
        self.assertIn(self.catalog['c'], self.enrolled(client))

    def test_refund_request(self):
        "A paid order: one open refund request, with a reason"
        client, party_id = self.student()
        self.topup(party_id, '300')
        client.call('cart.add', {'course': self.catalog['c']})
        order = client.call('order.create', {'pay_method': 'wallet'})
        self.assertRefused('refund.reason_required', client,
            'order.refund_request', {'number': order['number'], 'reason': ' '})
        request = client.call('order.refund_request', {
                'number': order['number'], 'reason': "Not what I expected"})
        self.assertEqual(request['state'], 'open')
        self.assertRefused('refund.request_open', client,
            'order.refund_request', {'number': order['number'],
                'reason': "Again"})

        def read():
            Request = Pool().get('course.payment.refund.request')
            request_, = Request.search([('order.number', '=', order['number'])])
            return request_.id, request_.reason
        self.assertEqual(self.on_server(read),
            (request['request'], "Not what I expected"))
        # An unpaid order is not refundable
        client.call('cart.add', {'course': self.catalog['b']})
        unpaid = client.call('order.create', {'pay_method': 'alipay'})
        self.assertRefused('order.not_refundable', client,
            'order.refund_request', {'number': unpaid['number'],
                'reason': "Changed my mind"})

    def test_payable_changed(self):
        """What the student saw differs: both amounts, nothing created, the
        coupon, points and wallet untouched"""
        client, party_id = self.student()
        self.topup(party_id, '1000')
        self.give_points(party_id, 100)
        grant = client.call('coupon.claim', {'coupon': self.coupon_id})
        client.call('cart.add', {'course': self.catalog['b']})
        cart = client.call('cart.get')
        for options, payable in [
                ({'pay_method': 'alipay'}, '500.00'),
                ({'pay_method': 'alipay', 'coupons': [grant['grant']]},
                    '470.00'),
                ({'pay_method': 'wallet', 'credit': 100}, '490.00'),
                ]:
            error = self.assertRefused('order.payable_changed', client,
                'order.create', dict(options, expect_payable='498'))
            self.assertEqual(error.code, -32010)
            self.assertEqual(
                (error.data['expected'], error.data['payable']),
                ('498.00', payable))
            self.assertIn('498.00', error.message)
            self.assertIn(payable, error.message)
        self.assertEqual(client.call('order.list', {})['total'], 0)
        self.assertEqual(client.call('cart.get'), cart)
        self.assertEqual(
            self.stored_cart(client.user_id), [self.catalog['b']])
        me = client.call('account.me')
        self.assertEqual(
            (me['wallet_balance'], me['credit_balance']), ('1000.00', 100))
        mine, = client.call('coupon.mine', {})
        self.assertEqual((mine['state'], mine['order']), ('available', None))
        self.assertEqual(self.enrolled(client), set())

    def test_wrong_codes(self):
        """Wrong coupon codes are refused at once and counted: past the
        limit the student is locked out (on SQLite the attempt, written in
        a transaction of its own, waited for the redeem's own write lock)"""
        from trytond.modules.course_credit.tests.tools import set_config
        client, _ = self.student()
        self.on_server(set_config, coupon_redeem_attempts=2)
        self.addCleanup(self.on_server, set_config, coupon_redeem_attempts=10)
        for code in ['WRONG1', 'WRONG2']:
            start = time.monotonic()
            error = self.assertRefused(
                'coupon.code_invalid', client, 'coupon.redeem',
                {'code': code})
            self.assertEqual(error.code, -32010)
            self.assertLess(time.monotonic() - start, 5)
        self.assertRefused('coupon.code_locked', client, 'coupon.redeem',
            {'code': 'WRONG3'})

    def test_language(self):
        "Accept-Language zh_CN: the messages in Chinese"
        client, _ = self.student(language='zh_CN')
        english = self.client(language='en')
        english.token = client.token
        errors = [self.assertRefused('not_found', c, 'cart.add', {
                    'course': 99999999}) for c in [client, english]]
        self.assertTrue(any('\u4e00' <= ch <= '\u9fff'
                for ch in errors[0].message), errors[0].message)
        self.assertTrue(errors[1].message.isascii(), errors[1].message)
        self.assertEqual(errors[0].code, errors[1].code)

    def test_redis_unreachable(self):
        "Redis down: the cart is unavailable, the rest works"
        if not self.redis:
            self.skipTest("the cart is in the database on SQLite")
        client, _ = self.student()
        client.call('cart.add', {'course': self.catalog['c']})
        down = self.start_server(course={
                'redis': f'redis://127.0.0.1:{free_port()}/15'})
        try:
            other = down.client()
            other.token = client.token
            self.assertEqual(other.call('catalog.courses', {})['total'], 4)
            self.assertEqual(
                other.call('account.me')['email'],
                client.call('account.me')['email'])
            for method, params in [
                    ('cart.get', None),
                    ('cart.add', {'course': self.catalog['b']}),
                    ('order.create', {'pay_method': 'alipay'}),
                    ]:
                error = self.assertRefused(
                    'cart.unavailable', other, method, params)
                self.assertEqual(error.code, -32010)
            # Students register and log in without Redis
            registered = down.client()
            registered.register(f'{uuid.uuid4().hex[:12]}@example.com')
            self.assertEqual(other.call('order.list', {})['total'], 0)
        finally:
            down.stop()
            self.servers.remove(down)
        # The cart in Redis is untouched
        cart = client.call('cart.get')
        self.assertEqual(
            [i['course'] for i in cart['items']], [self.catalog['c']])

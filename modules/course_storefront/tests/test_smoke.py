"A first walk through the storefront over the WSGI app"
import unittest

from .tools import StorefrontError, StorefrontTestMixin


class StorefrontSmokeTestCase(StorefrontTestMixin, unittest.TestCase):

    def test_walk(self):
        client = self.client()
        client.register('smoke@example.com')
        me = client.call('account.me')
        self.assertEqual(me['email'], 'smoke@example.com')
        self.assertEqual(me['wallet_balance'], '0.00')
        courses = client.call('catalog.courses', {})
        self.assertEqual(courses['total'], 3)
        course = client.call('catalog.course', {'id': self.catalog['a']})
        self.assertEqual(course['price'], '1000.00')
        self.assertEqual(len(course['options']), 2)
        client.call('cart.add', {'course': self.catalog['b']})
        cart = client.call('cart.add', {
                'course': self.catalog['a'],
                'option': self.catalog['a_month']})
        self.assertEqual(cart['selected_total'], '699.00')
        cart = client.call('cart.select', {
                'course': self.catalog['b'], 'selected': False})
        self.assertEqual(cart['selected_total'], '199.00')
        preview = client.call('checkout.preview', {})
        self.assertEqual(
            [(l['course'], l['amount']) for l in preview['lines']],
            [(self.catalog['a'], '199.00')])
        self.assertEqual(preview['payable'], '199.00')
        self.assertEqual(preview['usable_coupons'], [])
        self.assertEqual(preview['credit']['balance'], 0)
        order = client.call('order.create', {
                'pay_method': 'manual', 'expect_payable': '199.00'})
        self.assertEqual(order['payable'], '199.00')
        cart = client.call('cart.get')
        self.assertEqual([i['course'] for i in cart['items']],
            [self.catalog['b']])
        orders = client.call('order.list', {})
        self.assertEqual(orders['items'][0]['number'], order['number'])
        cancelled = client.call('order.cancel', {'number': order['number']})
        self.assertEqual(cancelled['state'], 'cancelled')
        with self.assertRaises(StorefrontError) as cm:
            client.call('order.cancel', {'number': order['number']})
        self.assertEqual(cm.exception.type, 'order.not_unpaid')
        doc = client.call('rpc.discover')
        self.assertIn('order.create', [m['name'] for m in doc['methods']])

    def test_errors(self):
        client = self.client()
        status, answer = client.post(b'{not json')
        self.assertEqual(answer['error']['code'], -32700)
        answer = client.raw('nope')
        self.assertEqual(answer['error']['code'], -32601)
        answer = client.raw('catalog.course', {'id': '1'})
        self.assertEqual(answer['error']['code'], -32602)
        answer = client.raw('cart.get')
        self.assertEqual(answer['error']['code'], -32001)
        status, answer = client.post([
                {'jsonrpc': '2.0', 'method': 'catalog.directions'},
                {'jsonrpc': '2.0', 'method': 'catalog.directions', 'id': 7}])
        self.assertEqual(len(answer), 1)
        self.assertEqual(answer[0]['id'], 7)


class StorefrontSmokeRedisTestCase(StorefrontSmokeTestCase):
    "The same walk with the cart in Redis"

    def setUp(self):
        super().setUp()
        from .test_auth import REDIS_URL, redis_available
        from .tools import clear_redis, set_config
        if not redis_available():
            self.skipTest("Redis is not running")
        clear_redis(REDIS_URL)
        set_config(self, 'course', 'redis', REDIS_URL)

    def test_cart_in_redis(self):
        "The cart is one hash per student in Redis, with a TTL"
        import redis

        from trytond.tests.test_tryton import DB_NAME

        from .test_auth import REDIS_URL
        client = self.client()
        user = client.register('redis-cart@example.com')['user']
        client.call('cart.add', {'course': self.catalog['c']})
        server = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        keys = list(server.scan_iter(match=f'course:{DB_NAME}:cart:*'))
        self.assertEqual(len(keys), 1)
        self.assertTrue(keys[0].endswith(f":cart:{user['id']}"))
        self.assertEqual(
            list(server.hgetall(keys[0])), [str(self.catalog['c'])])
        self.assertGreater(server.ttl(keys[0]), 0)

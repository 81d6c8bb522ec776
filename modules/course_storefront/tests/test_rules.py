"""Business refusals the issue names, each answered with its data.type:
an owned or unpublished course in the cart, a coupon that does not apply,
the lock-out of code guessing, a lock not had (busy); and the TTL of a
Redis cart refreshed on use"""
import os
import unittest
import uuid
from decimal import Decimal

from trytond.modules.course.tests.tools import run_transaction
from trytond.pool import Pool

from .tools import StorefrontError, StorefrontTestMixin, clear_redis, set_config

REDIS_URL = os.environ.get('COURSE_TEST_REDIS', 'redis://127.0.0.1:6379/15')


def party_of(email):
    User = Pool().get('web.user')
    user, = User.search([('email', '=', email)])
    return user.party.id


class RulesTestCase(StorefrontTestMixin, unittest.TestCase):
    "Refusals of the storefront's business rules"
    redis = None

    def setUp(self):
        super().setUp()
        if self.redis:
            set_config(self, 'course', 'redis', self.redis)

    def student(self):
        client = self.client()
        email = f'{uuid.uuid4().hex[:12]}@example.com'
        client.register(email)
        client.email = email
        return client

    def assertRefused(self, client, slug, method, params=None, code=-32010):
        with self.assertRaises(StorefrontError) as cm:
            client.call(method, params)
        self.assertEqual((cm.exception.code, cm.exception.type), (code, slug))
        self.assertTrue(cm.exception.message)
        return cm.exception

    def test_course_owned(self):
        "A course the student owns can not go in the cart nor be ordered"
        client = self.student()
        course = self.catalog['b']
        client.call('cart.add', {'course': course})
        order = client.call('order.create', {'pay_method': 'manual'})

        def confirm():
            Order = Pool().get('course.order')
            Order.confirm_payment(
                Order.search([('number', '=', order['number'])]))
        self.run_transaction(confirm)
        self.assertRefused(
            client, 'cart.course_owned', 'cart.add', {'course': course})
        self.assertEqual(client.call('cart.get')['items'], [])

    def test_course_unpublished(self):
        "An unpublished course is not found, as an unknown one"
        def unpublished():
            Course = Pool().get('course.course')
            course, = Course.copy([Course(self.catalog['c'])], {
                    'published': False, 'name': "Hidden"})
            return course.id
        course = self.run_transaction(unpublished)
        client = self.student()
        error = self.assertRefused(
            client, 'not_found', 'cart.add', {'course': course}, -32004)
        unknown = self.assertRefused(
            client, 'not_found', 'cart.add', {'course': 10 ** 9}, -32004)
        self.assertEqual(
            error.message.replace(str(course), '?'),
            unknown.message.replace(str(10 ** 9), '?'))
        self.assertEqual(client.call('cart.get')['items'], [])

    def test_coupon_not_applicable(self):
        "A coupon whose threshold the cart does not reach"
        client = self.student()

        def give():
            from trytond.modules.course_coupon.tests.tools import (
                create_coupon, give)
            Company = Pool().get('company.company')
            coupon = create_coupon(
                Company(self.company_id), '-30', condition=Decimal(100000))
            Party = Pool().get('party.party')
            return give(coupon, Party(party_of(client.email))).id
        grant = self.run_transaction(give)
        client.call('cart.add', {'course': self.catalog['b']})
        preview = client.call('checkout.preview', {})
        self.assertNotIn(
            grant, [u['grant'] for u in preview['usable_coupons']])
        for method, params in [
                ('checkout.preview', {'coupons': [grant]}),
                ('order.create', {'coupons': [grant], 'pay_method': 'manual'}),
                ]:
            self.assertRefused(
                client, 'coupon.not_applicable', method, params)
        self.assertEqual(client.call('order.list', {})['total'], 0)

    def test_code_locked(self):
        "Too many wrong codes lock the student out, even the right code"
        def attempts(value):
            Configuration = Pool().get('course.configuration')
            config = Configuration(1)
            previous = config.coupon_redeem_attempts
            config.coupon_redeem_attempts = value
            config.save()
            return previous
        previous = self.run_transaction(attempts, 3)
        self.addCleanup(self.run_transaction, attempts, previous)
        client = self.student()
        for _ in range(3):
            self.assertRefused(
                client, 'coupon.code_invalid', 'coupon.redeem',
                {'code': uuid.uuid4().hex[:10].upper()})
        error = self.assertRefused(
            client, 'coupon.code_locked', 'coupon.redeem',
            {'code': uuid.uuid4().hex[:10].upper()})
        self.assertIn('3', error.message)
        # Another student is not locked out
        self.assertRefused(
            self.student(), 'coupon.code_invalid', 'coupon.redeem',
            {'code': uuid.uuid4().hex[:10].upper()})


class RulesRedisTestCase(RulesTestCase):
    "The same with the cart in Redis, and its TTL"
    redis = REDIS_URL

    def setUp(self):
        super().setUp()
        import redis
        try:
            redis.Redis.from_url(REDIS_URL).ping()
        except redis.RedisError:
            if os.environ.get('CI', '').lower() == 'true':
                raise
            self.skipTest("Redis is not reachable")
        clear_redis(REDIS_URL)

    def test_ttl_refreshed(self):
        "Each use of the cart gives its key the whole TTL again"
        import redis

        from trytond.tests.test_tryton import DB_NAME
        set_config(self, 'course', 'cart_ttl', '3600')
        client = self.student()
        client.call('cart.add', {'course': self.catalog['a']})
        server = redis.Redis.from_url(REDIS_URL)
        keys = list(server.scan_iter(match=f'course:{DB_NAME}:cart:*'))
        self.assertEqual(len(keys), 1)
        self.assertGreater(server.ttl(keys[0]), 3500)
        server.expire(keys[0], 100)
        client.call('cart.get')
        self.assertGreater(server.ttl(keys[0]), 3500)
        server.expire(keys[0], 100)
        client.call('cart.select', {
                'course': self.catalog['a'], 'selected': False})
        self.assertGreater(server.ttl(keys[0]), 3500)


class BusyTestCase(StorefrontTestMixin, unittest.TestCase):
    "A lock held elsewhere past the retries: busy, nothing created"

    @classmethod
    def setUpClass(cls):
        from trytond import backend
        if backend.name != 'postgresql':
            raise unittest.SkipTest("row locks need PostgreSQL")
        super().setUpClass()

    def test_busy(self):
        from trytond import backend
        from trytond.tests.test_tryton import DB_NAME
        set_config(self, 'database', 'retry', '2')
        client = self.client()
        email = f'{uuid.uuid4().hex[:12]}@example.com'
        client.register(email)
        client.call('cart.add', {'course': self.catalog['a']})
        party = run_transaction(party_of, email)
        database = backend.Database(DB_NAME).connect()
        connection = database.get_connection()
        try:
            cursor = connection.cursor()
            # Another transaction holds the student's row (a checkout of
            # the same student in another process)
            cursor.execute(
                'SELECT id FROM party_party WHERE id = %s FOR UPDATE',
                (party,))
            with self.assertRaises(StorefrontError) as cm:
                client.call('order.create', {'pay_method': 'manual'})
            self.assertEqual(
                (cm.exception.code, cm.exception.type), (-32010, 'busy'))
        finally:
            connection.rollback()
            database.put_connection(connection)
        self.assertEqual(client.call('order.list', {})['total'], 0)
        self.assertEqual(len(client.call('cart.get')['items']), 1)
        # Once the lock is released the same call goes through
        order = client.call('order.create', {'pay_method': 'manual'})
        self.assertEqual(order['state'], 'unpaid')

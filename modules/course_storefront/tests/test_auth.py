"""Students: register, log in and out, tokens, and the rate limit of
attempts per e-mail and per client address, counted in the database and,
when configured, in Redis"""
import os
import random
import unittest
import uuid

from .tools import (
    StorefrontError, StorefrontTestMixin, clear_redis, set_config)

REDIS_URL = os.environ.get('COURSE_TEST_REDIS', 'redis://127.0.0.1:6379/15')


def redis_available():
    try:
        import redis
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        return True
    except Exception:
        if os.environ.get('CI') == 'true':
            raise
        return False


class AuthTestCase(StorefrontTestMixin, unittest.TestCase):
    "Register, login, logout and the rate limit (database counting)"
    redis = None

    def setUp(self):
        super().setUp()
        if self.redis:
            if not redis_available():
                self.skipTest("Redis is not running")
            set_config(self, 'course', 'redis', self.redis)
        for key, value in [('storefront_attempts_email', '3'),
                ('storefront_attempts_ip', '1000')]:
            set_config(self, 'course', key, value)

    def email(self):
        return f'{uuid.uuid4().hex[:12]}@example.com'

    def assertError(self, type_, method, params, client):
        with self.assertRaises(StorefrontError) as cm:
            client.call(method, params)
        self.assertEqual(cm.exception.type, type_, cm.exception.message)
        return cm.exception

    def test_register_login_logout(self):
        "A registered student logs in with any case of the e-mail; logout"
        email = self.email()
        client = self.client()
        registered = client.register(email.upper(), name="  Li Lei ")
        self.assertEqual(registered['user']['email'], email)
        self.assertEqual(registered['user']['name'], "Li Lei")
        other = self.client()
        result = other.call('auth.login', {
                'email': email, 'password': 'secret-pass'})
        self.assertNotEqual(result['token'], registered['token'])
        other.token = result['token']
        self.assertEqual(other.call('account.me')['email'], email)
        other.call('auth.logout')
        error = self.assertError('auth.required', 'account.me', None, other)
        self.assertEqual(error.code, -32001)
        # The first session lives on
        self.assertEqual(client.call('account.me')['name'], "Li Lei")

    def test_register_taken(self):
        email = self.email()
        self.client().register(email)
        error = self.assertError('auth.email_taken', 'auth.register', {
                'email': email, 'password': 'another-pass', 'name': "B"},
            self.client())
        self.assertEqual(error.code, -32010)

    def test_login_wrong(self):
        "A wrong password and an unknown e-mail get the same answer"
        email = self.email()
        self.client().register(email)
        wrong = self.assertError('auth.invalid', 'auth.login', {
                'email': email, 'password': 'wrong-pass'}, self.client())
        unknown = self.assertError('auth.invalid', 'auth.login', {
                'email': self.email(), 'password': 'wrong-pass'},
            self.client())
        self.assertEqual(wrong.message, unknown.message)

    def test_bad_token(self):
        client = self.client()
        client.token = 'x' * 64
        self.assertError('auth.required', 'cart.get', None, client)
        # A public method ignores a bad token
        self.assertEqual(client.call('catalog.courses', {})['total'], 3)

    def session_of(self, client, **values):
        "Write values on the session of client's token"
        from trytond.pool import Pool

        def write():
            Session = Pool().get('web.user.session')
            session, = Session.search([('key', '=', client.token)])
            Session.write([session], values)
        self.run_transaction(write)

    def test_expired_session(self):
        "A session older than [session] web_timeout is refused"
        import datetime as dt

        from trytond.pool import Pool
        client = self.client()
        client.register(self.email())
        self.assertEqual(client.call('cart.get')['items'], [])
        self.session_of(client)  # write_date now
        set_config(self, 'session', 'web_timeout', '60')

        def age():
            Session = Pool().get('web.user.session')
            table = Session.__table__()
            from trytond.transaction import Transaction
            cursor = Transaction().connection.cursor()
            cursor.execute(*table.update(
                    [table.write_date],
                    [dt.datetime.now() - dt.timedelta(seconds=120)],
                    where=table.key == client.token))
        self.run_transaction(age)
        self.assertError('auth.required', 'cart.get', None, client)
        self.assertError('auth.required', 'cart.add', {'course': 1}, client)
        set_config(self, 'session', 'web_timeout', '600')
        self.assertEqual(client.call('cart.get')['items'], [])

    def test_inactive_student(self):
        "The token of a deactivated student is refused"
        from trytond.pool import Pool
        client = self.client()
        registered = client.register(self.email())
        self.assertEqual(client.call('account.me')['email'],
            registered['user']['email'])

        def deactivate():
            User = Pool().get('web.user')
            User.write([User(registered['user']['id'])], {'active': False})
        self.run_transaction(deactivate)
        self.assertError('auth.required', 'account.me', None, client)

    def test_rate_limit_email(self):
        "After the limit of attempts for an e-mail, even the right password"
        email = self.email()
        self.client().register(email)
        client = self.client()
        for _ in range(2):
            self.assertError('auth.invalid', 'auth.login', {
                    'email': email, 'password': 'wrong-pass'}, client)
        # register counted 1, two failures: the 4th attempt is over 3
        error = self.assertError('auth.rate_limited', 'auth.login', {
                'email': email, 'password': 'secret-pass'}, client)
        self.assertTrue(error.data['retry_after'] > 0)
        # Another e-mail from the same address is not limited
        client.register(self.email())

    def test_rate_limit_address(self):
        "Attempts for many e-mails from one address are limited too"
        set_config(self, 'course', 'storefront_attempts_ip', '4')
        # An address of its own: the attempts of the other tests in this
        # database came from 127.0.0.1
        client = self.client(remote_addr='10.%d.%d.%d' % tuple(
                random.randrange(1, 255) for _ in range(3)))
        types = []
        for _ in range(6):
            answer = client.raw('auth.login', {
                    'email': self.email(), 'password': 'wrong-pass'})
            types.append(answer['error']['data']['type'])
        self.assertEqual(types, ['auth.invalid'] * 4
            + ['auth.rate_limited'] * 2)


class AuthRedisTestCase(AuthTestCase):
    "The same with the attempts counted in Redis"
    redis = REDIS_URL

    def setUp(self):
        super().setUp()
        clear_redis(REDIS_URL)

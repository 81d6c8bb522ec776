"""The production layout works as one shop: two trytond processes, one
trytond-cron and one trytond-worker (scripts/cluster.py) on one PostgreSQL
database and one Redis, driven over HTTP.

- A course price changed through process A (staff XML-RPC, proteus) is what
  checkout.preview and order.create through process B charge; a staff
  user's group taken away through A no longer opens the orders through B
  (trytond's in-memory caches of groups and access rights, cleared across
  processes by `[cache] clean_timeout = 0`: LISTEN/NOTIFY).
- A cart written through A is read through B (it lives in Redis).
- The login rate limit (`[course] storefront_attempts_email`) counts the
  attempts made through both processes.
- The expiry job run by trytond-cron, while both processes serve
  checkouts, expires the overdue orders only.

PostgreSQL pass only (trytond-worker crashes on SQLite); with CI=true a
Redis that does not answer is a failure, not a skip.
"""
import datetime as dt
import os
import shutil
import sys
import tempfile
import threading
import time
import unittest
import uuid
from xmlrpc.client import Fault
from decimal import Decimal

from trytond import backend
from trytond.config import config
from trytond.modules.course.tools import now
from trytond.modules.course_storefront.tests.server import run_in
from trytond.modules.course_storefront.tests.tools import (
    StorefrontClient, StorefrontError, StorefrontTestMixin, clear_redis)
from trytond.pool import Pool
from trytond.transaction import Transaction

SCRIPTS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'scripts')
sys.path.insert(0, SCRIPTS)
from cluster import start_cluster  # noqa: E402

REDIS_URL = os.environ.get('COURSE_TEST_REDIS', 'redis://127.0.0.1:6379/15')
CI = os.environ.get('CI', '').lower() == 'true'
ADMIN_PASSWORD = 'cluster-admin-' + uuid.uuid4().hex[:8]
CLERK_PASSWORD = 'cluster-clerk-' + uuid.uuid4().hex[:8]
# Logins and registrations allowed per e-mail in the window
EMAIL_LIMIT = 4
# From trytond-cron's start to the overdue orders expired
EXPIRY_TIMEOUT = 60
# How long a change in one process may take to reach the other's caches:
# the NOTIFY is asynchronous, and one that arrives while the listener pings
# the database waits for its next wake-up ([cache] select_timeout, 5 s in
# scripts/cluster.py); without LISTEN/NOTIFY it is 300 s
SYNC_TIMEOUT = 10


def redis_running():
    import redis
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        return False
    return True


class ClusterTestCase(StorefrontTestMixin, unittest.TestCase):
    "Two trytond processes, trytond-cron and trytond-worker as one shop"

    @classmethod
    def setUpClass(cls):
        if backend.name != 'postgresql':
            raise unittest.SkipTest("the cluster runs on PostgreSQL")
        if not redis_running():
            if CI:
                raise RuntimeError(f"Redis is not running at {REDIS_URL}")
            raise unittest.SkipTest(f"Redis is not running at {REDIS_URL}")
        super().setUpClass()
        from trytond.tests.test_tryton import DB_NAME
        cls.database = DB_NAME
        cls.folder = tempfile.mkdtemp(prefix='course-cluster-')
        cls.addClassCleanup(shutil.rmtree, cls.folder, True)
        cls.addClassCleanup(clear_redis, REDIS_URL)
        try:
            cls.cluster = start_cluster(
                DB_NAME, processes=2, redis_url=REDIS_URL,
                postgresql=config.get('database', 'uri'), folder=cls.folder,
                sections={'course': {
                        'storefront_attempts_email': str(EMAIL_LIMIT),
                        'storefront_attempts_ip': '1000000',
                        }})
        except Exception:
            super().tearDownClass()
            raise
        cls.url_a, cls.url_b = cls.cluster.urls

    @classmethod
    def tearDownClass(cls):
        # The servers hold connections to the database the mixin drops
        cls.cluster.stop()
        super().tearDownClass()

    @classmethod
    def setup_data(cls):
        super().setup_data()
        pool = Pool()
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        company = {
            'companies': [('add', [cls.company_id])],
            'company': cls.company_id,
            }
        admin, = User.search([('login', '=', 'admin')])
        User.write([admin], dict(company, password=ADMIN_PASSWORD))
        cls.sales_group_id = ModelData.get_id('course', 'group_course_sales')
        clerk, = User.create([dict(company, login='clerk', name="Clerk",
                    password=CLERK_PASSWORD,
                    groups=[('add', [cls.sales_group_id])])])
        cls.clerk_id = clerk.id

    def run(self, result=None):
        "Show the processes' log tails when a test fails"
        failures = len(result.failures) + len(result.errors) if result else 0
        outcome = super().run(result)
        if result and len(result.failures) + len(result.errors) > failures:
            for process in self.cluster.processes:
                path = os.path.join(self.folder, f'{process.name}.log')
                with open(path, errors='replace') as fp:
                    tail = fp.read().splitlines()[-30:]
                sys.stderr.write(f"\n--- {process.name} ---\n"
                    + '\n'.join(tail) + '\n')
        return outcome

    # ---- helpers ------------------------------------------------------------

    def client(self, url, token=None):
        client = StorefrontClient(self.database, base_url=url)
        client.token = token
        return client

    def student(self, url):
        "A client of a new student registered through url"
        client = self.client(url)
        client.email = f'{uuid.uuid4().hex[:12]}@example.com'
        client.user_id = client.register(
            client.email, password='cluster-pass')['user']['id']
        return client

    def staff(self, url, login='admin', password=ADMIN_PASSWORD):
        "proteus over XML-RPC to the trytond at url"
        from proteus.config import XmlrpcConfig
        host = url.removeprefix('http://')
        return XmlrpcConfig(
            f'http://{login}:{password}@{host}/{self.database}/rpc/')

    def on_database(self, func, *args):
        return run_in(self.database, func, *args, context=self.context)

    def refused(self, client, method, params=None):
        with self.assertRaises(StorefrontError) as cm:
            client.call(method, params)
        return cm.exception

    def eventually(self, func, expected, timeout=SYNC_TIMEOUT):
        "func()'s value once it equals expected, or the last one"
        deadline = time.monotonic() + timeout
        while True:
            value = func()
            if value == expected or time.monotonic() > deadline:
                return value
            time.sleep(0.1)

    # ---- tests --------------------------------------------------------------

    def test_price_changed_through_a_charged_through_b(self):
        "A price written through A is what B's preview and order charge"
        from proteus import Model
        course = self.catalog['c']
        student_b = self.student(self.url_b)
        student_b.call('cart.add', {'course': course})
        before = student_b.call('checkout.preview', {})['payable']

        Course = Model.get('course.course', config=self.staff(self.url_a))
        record = Course(course)
        new_price = Decimal(before) + Decimal('123.45')
        record.price = new_price
        record.save()

        preview = student_b.call('checkout.preview', {})
        self.assertEqual(Decimal(preview['payable']), new_price)
        order = student_b.call('order.create', {
                'pay_method': 'manual', 'expect_payable': preview['payable']})
        self.assertEqual(Decimal(order['payable']), new_price)
        self.assertEqual(
            self.on_database(lambda: Pool().get('course.order').search(
                    [('number', '=', order['number'])])[0].payable_amount),
            new_price)

    def test_rights_revoked_through_a_refused_by_b(self):
        "B forgets a staff user's group as soon as A takes it away"
        from proteus import Model
        clerk_b = self.staff(self.url_b, 'clerk', CLERK_PASSWORD)

        def reads_orders():
            try:
                Model.get('course.order', config=clerk_b).find([], limit=1)
            except Fault as fault:
                self.assertIn('access', str(fault).lower())
                return False
            return True
        self.assertTrue(reads_orders())  # B's caches hold the group now
        admin_a = self.staff(self.url_a)
        Model.get('res.user', config=admin_a)._proxy.write(
            [self.clerk_id], {'groups': [('remove', [self.sales_group_id])]},
            admin_a.context)
        self.assertFalse(self.eventually(reads_orders, False))

    def test_cart_written_through_a_read_through_b(self):
        "The cart lives in Redis: any process reads what another wrote"
        import redis
        student_a = self.student(self.url_a)
        student_a.call('cart.add', {'course': self.catalog['b']})
        student_a.call('cart.add', {
                'course': self.catalog['a'],
                'option': self.catalog['a_month']})
        student_b = self.client(self.url_b, student_a.token)
        cart = student_b.call('cart.get')
        self.assertEqual(
            sorted((i['course'], i['option']) for i in cart['items']),
            sorted([(self.catalog['b'], None),
                    (self.catalog['a'], self.catalog['a_month'])]))
        self.assertEqual(Decimal(cart['selected_total']), Decimal('699'))
        # Removed through B, gone for A
        student_b.call('cart.remove', {'course': self.catalog['b']})
        self.assertEqual(
            [i['course'] for i in student_a.call('cart.get')['items']],
            [self.catalog['a']])
        self.assertTrue(redis.Redis.from_url(REDIS_URL).exists(
                f'course:{self.database}:cart:{student_a.user_id}'))

    def test_login_rate_limit_counts_both_processes(self):
        "Attempts through A and B add up to one limit per e-mail"
        # Its registration is attempt 1
        email = self.student(self.url_a).email
        clients = [self.client(self.url_a), self.client(self.url_b)]
        # Attempts 2..EMAIL_LIMIT alternate between the processes: each
        # alone sees fewer than the limit
        for attempt in range(2, EMAIL_LIMIT + 1):
            error = self.refused(clients[attempt % 2], 'auth.login', {
                    'email': email, 'password': 'wrong-password'})
            self.assertNotEqual(error.type, 'auth.rate_limited', attempt)
        for client in clients:
            error = self.refused(client, 'auth.login', {
                    'email': email, 'password': 'cluster-pass'})
            self.assertEqual(error.type, 'auth.rate_limited')
        # Another e-mail is not limited
        self.student(self.url_b).call('account.me')

    def test_cron_expires_only_overdue_orders(self):
        "trytond-cron's expiry, while A and B take orders, spares fresh ones"
        def order(url):
            student = self.student(url)
            student.call('cart.add', {'course': self.catalog['c']})
            return student.call(
                'order.create', {'pay_method': 'manual'})['number']
        overdue = [order(self.url_a), order(self.url_b)]
        fresh = [order(self.url_b), order(self.url_a)]

        def make_overdue_and_due():
            Order = Pool().get('course.order')
            Cron = Pool().get('ir.cron')
            past = now() - dt.timedelta(hours=1)
            table = Order.__table__()
            Transaction().connection.cursor().execute(*table.update(
                    [table.pay_deadline], [past],
                    where=table.number.in_(overdue)))
            cron, = Cron.search([
                    ('method', '=', 'course.order|expire_overdue')])
            Cron.write([cron], {
                    'next_call': now() - dt.timedelta(seconds=1),
                    })
        self.on_database(make_overdue_and_due)

        # Checkouts through both processes until the job ran
        stop = threading.Event()
        during, errors = [], []

        def shop(url):
            while not stop.is_set():
                try:
                    during.append(order(url))
                except Exception as error:
                    errors.append(repr(error))
                time.sleep(0.3)
        threads = [threading.Thread(target=shop, args=(url,))
            for url in self.cluster.urls]
        for thread in threads:
            thread.start()
        # trytond-cron runs the due jobs when it starts, then at each
        # minute: restarted, it does not make the test wait for the minute
        self.cluster.restart('trytond-cron')

        def states(numbers):
            return self.on_database(lambda: {o.number: o.state
                    for o in Pool().get('course.order').search(
                        [('number', 'in', numbers)])})
        try:
            got = self.eventually(lambda: states(overdue),
                dict.fromkeys(overdue, 'expired'), EXPIRY_TIMEOUT)
        finally:
            # A last checkout or two once the job is done
            time.sleep(1)
            stop.set()
            for thread in threads:
                thread.join()
        self.assertEqual(got, dict.fromkeys(overdue, 'expired'))
        self.assertEqual(errors, [])
        self.assertGreater(len(during), 2)
        self.assertEqual(states(fresh + during),
            dict.fromkeys(fresh + during, 'unpaid'))
        self.assertTrue(all(p.alive() for p in self.cluster.processes))

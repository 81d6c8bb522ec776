"""The SQL statements of cart.get, checkout.preview, order.create and
order.list do not grow with the number of items or orders: each call is
counted for a student with 1 and with 20 of them (issue 16)"""
import datetime as dt
import re
import threading
import unittest
import uuid
from collections import Counter
from decimal import Decimal

from trytond import backend
from trytond.modules.course_coupon.tests.tools import create_coupon
from trytond.pool import Pool
from trytond.transaction import Transaction

from .tools import StorefrontTestMixin, clear_redis, set_config

SIZE = 20


class CallStatements:
    """Record the SQL statements this thread runs on any connection, the
    storefront's own transactions included (course_order's
    StatementCounter follows one transaction's connection on SQLite).

    `statements` leaves out what does not depend on the call:
    - ir_cache: the cache synchronisation trytond runs at the start of a
      transaction once every [cache] clean_timeout, whatever the call;
    - SQLite: INSERT, as trytond inserts one row per statement there (no
      multi-row ids);
    - PostgreSQL: the id sequence, as trytond asks for ids first only when
      it inserts more than one row (one INSERT in both cases).
    """

    def __init__(self):
        self.all = []
        self._thread = threading.get_ident()
        self._undo = []

    def _record(self, statement):
        if threading.get_ident() == self._thread:
            self.all.append(str(statement))

    @property
    def statements(self):
        def counted(statement):
            if 'ir_cache' in statement:
                return False
            if backend.name == 'sqlite':
                return not statement.lstrip().upper().startswith('INSERT')
            return 'nextval(pg_get_serial_sequence(' not in statement
        return [s for s in self.all if counted(s)]

    @property
    def count(self):
        return len(self.statements)

    def __enter__(self):
        if backend.name == 'sqlite':
            from trytond.backend.sqlite.database import Database
            get_connection = Database.get_connection
            connections = []

            def traced(database, *args, **kwargs):
                connection = get_connection(database, *args, **kwargs)
                connection.set_trace_callback(self._record)
                connections.append(connection)
                return connection
            Database.get_connection = traced

            def undo():
                Database.get_connection = get_connection
                for connection in connections:
                    connection.set_trace_callback(None)
        else:
            import psycopg
            execute = psycopg.Cursor.execute
            counter = self

            def counted(cursor, query, *args, **kwargs):
                counter._record(
                    query.as_string(cursor) if hasattr(query, 'as_string')
                    else query)
                return execute(cursor, query, *args, **kwargs)
            psycopg.Cursor.execute = counted

            def undo():
                psycopg.Cursor.execute = execute
        self._undo.append(undo)
        return self

    def __exit__(self, *exc):
        self._undo.pop()()


def shape(statement):
    "A statement without its values, rows and lists of ids"
    statement = re.sub(r"IN \([^()]*\)", "IN (...)", statement)
    statement = re.sub(
        r'^\s*(INSERT INTO "[^"]+").*', r"\1 ...", statement,
        flags=re.DOTALL)
    statement = re.sub(r"'[^']*'", "?", statement)
    return re.sub(r"\b\d+\b", "N", statement)


def statement_diff(one, many):
    "{shape: (count in one, count in many)} where they differ"
    a = Counter(map(shape, one.statements))
    b = Counter(map(shape, many.statements))
    return {s: (a[s], b[s]) for s in a.keys() | b.keys() if a[s] != b[s]}


class StatementsTestCase(StorefrontTestMixin, unittest.TestCase):
    "Statement counts of the storefront calls, the cart in the database"

    @classmethod
    def setup_data(cls):
        super().setup_data()
        pool = Pool()
        Activity = pool.get('course.activity')
        Course = pool.get('course.course')
        courses = Course.create([{
                    'name': f"Course {i:02}", 'price': Decimal(100 + i),
                    'credit': 10,
                    'direction': cls.catalog['direction'],
                    'category': cls.catalog['category'],
                    'company': cls.company_id, 'published': True,
                    'options': [('create', [{
                                    'name': "One year", 'days': 365,
                                    'price': Decimal(50 + i)}])],
                    } for i in range(2 * SIZE + 2)])
        cls.courses = [(c.id, c.options[0].id) for c in courses]
        # A running discount on every other course
        now = dt.datetime.now()
        Activity.create([{
                    'name': "Half price", 'company': cls.company_id,
                    'start': now - dt.timedelta(days=1),
                    'end': now + dt.timedelta(days=1),
                    'lines': [('create', [{
                                    'course': c.id, 'method': 'percentage',
                                    'value': Decimal(50)}
                                for c in courses[::2]])],
                    }])
        # Coupons and points on one order, so that both are counted
        Configuration = pool.get('course.configuration')
        with Transaction().set_context(company=cls.company_id):
            config = Configuration(1)
            config.discounts_combinable = True
            config.save()
        company = pool.get('company.company')(cls.company_id)
        cls.coupon = create_coupon(company, '-10').id
        # Coupons of other scopes the preview lists as usable or not
        cls.other_coupons = [
            create_coupon(company, '*0.9', scope='course',
                courses=courses[1:4]).id,
            create_coupon(company, '-5', scope='direction',
                directions=[pool.get('course.direction')(
                        cls.catalog['direction'])]).id,
            ]

    def setUp(self):
        super().setUp()
        # trytond forgets a model's estimated row count at random, once in
        # [cache] count_clear creates, and counts the rows again later
        set_config(self, 'cache', 'count_clear', str(10 ** 9))

    # Helpers

    def student(self):
        client = self.client()
        user = client.register(f'{uuid.uuid4().hex[:12]}@example.com')
        client.party = self.run_transaction(
            lambda: Pool().get('web.user')(user['user']['id']).party.id)
        return client

    def fill_cart(self, client, indices):
        """Put self.courses[i] in the cart for i in indices, every other
        one with its option (even indices have a limited-time price)"""
        for position, i in enumerate(indices):
            course, option = self.courses[i]
            params = {'course': course}
            if position % 2:
                params['option'] = option
            client.call('cart.add', params)

    def give(self, client, grants=1, points=1000, others=False):
        """Grants of the coupon (and of the other coupons) and points for
        client's student; the ids of the coupon's grants"""
        def give():
            pool = Pool()
            Grant = pool.get('course.coupon.grant')
            Party = pool.get('party.party')
            from trytond.modules.course_credit.tests.tools import grant
            party = Party(client.party)
            grant(party, points)
            if others:
                Grant.issue(pool.get('course.coupon').browse(
                        self.other_coupons), [party])
            return [g.id for g in Grant.issue(
                    [pool.get('course.coupon')(self.coupon)] * grants,
                    [party])]
        return self.run_transaction(give)

    def count(self, client, method, params=None):
        with CallStatements() as counter:
            result = client.call(method, params)
        return counter, result

    def assertSameCount(self, one, many):
        "The same statements, the differences shown by their shape"
        self.assertEqual(one.count, many.count, '\n'.join(
                f'{a} vs {b}: {form[:300]}'
                for form, (a, b) in statement_diff(one, many).items()))

    # Tests

    def test_cart_get(self):
        one, many = self.student(), self.student()
        self.fill_cart(one, [0])
        self.fill_cart(many, range(SIZE))
        one.call('cart.get')  # warm the caches
        counted_one, cart = self.count(one, 'cart.get')
        self.assertEqual(len(cart['items']), 1)
        counted_many, cart = self.count(many, 'cart.get')
        self.assertEqual(len(cart['items']), SIZE)
        self.assertNotEqual(cart['items'][0]['list_price'],
            cart['items'][0]['sale_price'])
        self.assertSameCount(counted_one, counted_many)

    def orders(self, client, count):
        """count orders of two courses each for client's student, with a
        coupon and points; every fourth one cancelled"""
        grants = self.give(client, grants=count)

        def create():
            Order = Pool().get('course.order')
            orders = []
            for i, grant in enumerate(grants):
                items = [{'course': c, 'option': o if j else None}
                    for j, (c, o) in enumerate(self.courses[2 * i:2 * i + 2])]
                orders.append(Order.checkout(
                        client.party, items, 'manual',
                        {'grants': [grant], 'credit': 10}))
            Order.cancel(orders[3::4])
        self.run_transaction(create)

    def test_order_list(self):
        one, many = self.student(), self.student()
        self.orders(one, 1)
        self.orders(many, SIZE)
        for size in [SIZE, 50]:
            one.call('order.list', {'size': size})  # warm the caches
            counted_one, orders = self.count(
                one, 'order.list', {'size': size})
            self.assertEqual(orders['total'], 1)
            counted_many, orders = self.count(
                many, 'order.list', {'size': size})
            self.assertEqual(len(orders['items']), SIZE)
            self.assertEqual(
                {len(o['lines']) for o in orders['items']}, {2})
            self.assertEqual(
                {o['coupon_discount'] for o in orders['items']}, {'10.00'})
            self.assertEqual(
                {o['credit_discount'] for o in orders['items']}, {'1.00'})
            self.assertIn('cancelled', {o['state'] for o in orders['items']})
            self.assertSameCount(counted_one, counted_many)

    def order_create(self, carts, coupon):
        """Count order.create of carts (lists of course indices), each for
        a student of its own, with 10 points and a coupon when asked"""
        counts = []
        for indices in carts:
            client = self.student()
            self.fill_cart(client, indices)
            params = {'pay_method': 'manual', 'credit': 10}
            grant, = self.give(client)
            if coupon:
                params['coupons'] = [grant]
            counted, order = self.count(client, 'order.create', params)
            self.assertEqual(
                order['coupon_discount'], '10.00' if coupon else '0.00')
            self.assertEqual(order['credit_discount'], '1.00')
            self.assertEqual(client.call('cart.get')['items'], [])
            counts.append(counted)
        return counts

    def preview(self, carts, coupon, usable):
        """Count checkout.preview of carts (lists of course indices), each
        for a student of its own with grants of three coupons and points,
        using 10 points and the coupon when asked; usable: how many of
        the grants the preview shows as usable"""
        counts = []
        for indices in carts:
            client = self.student()
            self.fill_cart(client, indices)
            params = {'credit': 10}
            grant, = self.give(client, others=True)
            if coupon:
                params['coupons'] = [grant]
            counted, preview = self.count(client, 'checkout.preview', params)
            self.assertEqual(len(preview['lines']), len(indices))
            self.assertEqual(
                preview['coupon_discount'], '10.00' if coupon else '0.00')
            self.assertEqual(preview['credit_discount'], '1.00')
            self.assertEqual(preview['credit']['balance'], 1000)
            self.assertEqual(len(preview['usable_coupons']), usable)
            counts.append(counted)
        return counts

    def test_checkout_preview(self):
        # Warm the caches (see test_order_create)
        self.preview([[2 * SIZE, 2 * SIZE + 1]], True, 2)
        # Courses without a limited-time price: every coupon applies
        self.assertSameCount(*self.preview(
                [[1], range(3, 2 * SIZE + 2, 2)], True, 3))
        # Courses with a limited-time price: none applies
        self.assertSameCount(*self.preview(
                [[0], range(0, 2 * SIZE, 2)], False, 0))

    def test_order_create(self):
        # Warm the caches: a course with a limited-time price and one
        # without, a coupon (on the latter) and points
        self.order_create([[2 * SIZE, 2 * SIZE + 1]], True)
        # Courses without a limited-time price: the coupon does not apply
        # to those that have one
        self.assertSameCount(*self.order_create(
                [[1], range(3, 2 * SIZE + 2, 2)], True))
        # Without a coupon: courses with and without a limited-time price
        self.assertSameCount(*self.order_create([[0], range(SIZE)], False))


class StatementsRedisTestCase(StatementsTestCase):
    "The same counts with the cart in Redis"

    def setUp(self):
        super().setUp()
        from .test_auth import REDIS_URL, redis_available
        if not redis_available():
            self.skipTest("Redis is not running")
        clear_redis(REDIS_URL)
        set_config(self, 'course', 'redis', REDIS_URL)

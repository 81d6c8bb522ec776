"""Student A can never read, change or use student B's orders, coupons,
cart or enrollments: B's records answer as records that do not exist, and
after all A's attempts B's data is as it was."""
import unittest
import uuid

from trytond.modules.course.tests.tools import run_transaction
from trytond.pool import Pool

from .test_auth import REDIS_URL, redis_available
from .test_input import snapshot, without_timeouts
from .tools import (
    StorefrontClient, StorefrontError, StorefrontTestMixin, clear_redis,
    unset_config)

ORDER_METHODS = [
    'order.get', 'order.cancel', 'order.pay', 'order.sync',
    'order.refund_request']
MISSING_ID = 2 ** 31 - 1


class IsolationTestCase(StorefrontTestMixin, unittest.TestCase):
    "Students A and B, the cart in the database"
    redis = None

    @classmethod
    def setUpClass(cls):
        if cls.redis and not redis_available():
            raise unittest.SkipTest("Redis is not running")
        super().setUpClass()
        if cls.redis:
            from trytond import config
            if not config.has_section('course'):
                config.add_section('course')
            config.set('course', 'redis', cls.redis)
            clear_redis(cls.redis)
        cls.setup_students()

    @classmethod
    def tearDownClass(cls):
        if cls.redis:
            clear_redis(cls.redis)
            unset_config('course', 'redis')
        super().tearDownClass()

    @classmethod
    def setup_data(cls):
        super().setup_data()
        from trytond.modules.course_coupon.tests.tools import create_coupon
        Company = Pool().get('company.company')
        company = Company(cls.company_id)
        cls.claim_coupon = create_coupon(
            company, '-30', name="Claim 30", issue_mode='claim').id
        cls.staff_coupon = create_coupon(company, '*0.5', name="Half").id
        # A printed code nobody redeemed yet: a grant without a student
        Grant = Pool().get('course.coupon.grant')
        printed = create_coupon(company, '-50', name="Printed")
        code, = Grant.create_codes([printed], 1)
        cls.code_grant, cls.code = code.id, code.code

    @classmethod
    def setup_students(cls):
        from trytond.tests.test_tryton import DB_NAME
        catalog = cls.catalog
        a, b = StorefrontClient(DB_NAME), StorefrontClient(DB_NAME)
        a.register(f'a-{uuid.uuid4().hex[:8]}@example.com', name="A")
        b_user = b.register(
            f'b-{uuid.uuid4().hex[:8]}@example.com', name="B")['user']
        # B: a claimed and a given coupon, an unpaid order (course A), a
        # paid one (course C: an enrollment), course B in the cart
        b_claimed = b.call('coupon.claim', {'coupon': cls.claim_coupon})
        b_given = run_transaction(
            cls.give, cls.staff_coupon, b_user['id'],
            context={'company': cls.company_id})
        b.call('cart.add', {
                'course': catalog['a'], 'option': catalog['a_month']})
        b_unpaid = b.call('order.create', {'pay_method': 'manual'})['number']
        b.call('cart.add', {'course': catalog['c']})
        b_paid = b.call('order.create', {'pay_method': 'manual'})['number']
        run_transaction(cls.confirm, b_paid,
            context={'company': cls.company_id})
        b.call('cart.add', {'course': catalog['b']})
        # A: course A in the cart (B's unpaid order holds it too)
        a.call('cart.add', {'course': catalog['a']})
        cls.a, cls.b = a, b
        cls.b_grants = [b_claimed['grant'], b_given]
        cls.b_orders = [b_unpaid, b_paid]

    @staticmethod
    def give(coupon_id, user_id):
        from trytond.modules.course_coupon.tests.tools import give
        pool = Pool()
        Coupon = pool.get('course.coupon')
        User = pool.get('web.user')
        return give(Coupon(coupon_id), User(user_id).party).id

    @staticmethod
    def confirm(number):
        Order = Pool().get('course.order')
        order, = Order.search([('number', '=', number)])
        Order.confirm_payment([order])

    def state(self, client):
        "What a student sees of their own data"
        return without_timeouts({m: client.call(m, p) for m, p in [
                    ('cart.get', None), ('order.list', {'size': 50}),
                    ('coupon.mine', {}), ('enrollment.list', None),
                    ('account.me', None), ('coupon.claimable', None)]})

    def setUp(self):
        super().setUp()
        self.b_before = self.state(self.b)
        self.snapshot = snapshot()

    def assertNothingChanged(self):
        self.assertEqual(snapshot(), self.snapshot)
        self.assertEqual(self.state(self.b), self.b_before)

    def error(self, client, method, params):
        with self.assertRaises(StorefrontError) as cm:
            client.call(method, params)
        self.assertNotIn('Traceback', cm.exception.message)
        return cm.exception

    def missing_number(self, number):
        "A number of the same shape that is no order"
        for digit in '987':
            missing = number[:-3] + digit * 3
            if missing not in self.b_orders:
                return missing

    def test_setup(self):
        "B's data is there: what A does not see exists"
        b = self.b_before
        self.assertEqual(
            sorted(o['number'] for o in b['order.list']['items']),
            sorted(self.b_orders))
        self.assertEqual(
            sorted(g['grant'] for g in b['coupon.mine']),
            sorted(self.b_grants))
        self.assertEqual([i['course'] for i in b['cart.get']['items']],
            [self.catalog['b']])
        self.assertEqual([e['course'] for e in b['enrollment.list']],
            [self.catalog['c']])
        for number in self.b_orders:
            self.assertEqual(
                self.b.call('order.get', {'number': number})['number'],
                number)

    def test_orders(self):
        """A's calls on B's orders answer -32004 exactly as for a number
        that is no order; A's list does not show them"""
        for number in self.b_orders:
            missing = self.missing_number(number)
            for method in ORDER_METHODS:
                with self.subTest(number=number, method=method):
                    params = {'number': number}
                    if method == 'order.refund_request':
                        params['reason'] = "I changed my mind"
                    error = self.error(self.a, method, params)
                    self.assertEqual(
                        (error.code, error.type), (-32004, 'not_found'))
                    other = self.error(
                        self.a, method, dict(params, number=missing))
                    self.assertEqual(
                        (error.code, error.data),
                        (other.code, other.data))
                    self.assertEqual(
                        error.message.replace(number, '#'),
                        other.message.replace(missing, '#'))
                    self.assertNotIn("B", error.message.replace(
                            number, '#'))
        # Spaces, another case or LIKE wildcards find nothing more
        number = self.b_orders[0]
        for variant in [f'  {number} ', number.lower(), number + '%', '%',
                '_' * len(number), number[:-1] + '_', number + '\n']:
            with self.subTest(variant=variant):
                error = self.error(self.a, 'order.get', {'number': variant})
                self.assertEqual(
                    (error.code, error.type), (-32004, 'not_found'))
        for state in [None, 'unpaid', 'paid']:
            orders = self.a.call('order.list', {'state': state, 'size': 50})
            self.assertEqual((orders['total'], orders['items']), (0, []))
        self.assertNothingChanged()

    def test_coupons(self):
        "A does not see B's grants, nor counts them as held"
        for state in [None, 'available', 'reserved', 'used', 'expired',
                'revoked']:
            with self.subTest(state=state):
                self.assertEqual(
                    self.a.call('coupon.mine', {'state': state}), [])
        claimable = {c['coupon']: c
            for c in self.a.call('coupon.claimable')}
        self.assertEqual(claimable[self.claim_coupon]['held'], 0)
        self.assertNothingChanged()

    def test_checkout_with_others_grant(self):
        """B's grant in A's checkout.preview and order.create is refused as
        a grant that does not exist, and never applied"""
        preview = self.a.call('checkout.preview', {})
        self.assertEqual(preview['coupon_discount'], '0.00')
        self.assertFalse(
            {u['grant'] for u in preview['usable_coupons']}
            & set(self.b_grants))
        for method, params in [('checkout.preview', {}),
                ('order.create', {'pay_method': 'manual'})]:
            for grant in self.b_grants + [self.code_grant]:
                for coupons, missing in [
                        ([grant], [MISSING_ID]),
                        ([grant, grant], [MISSING_ID, MISSING_ID]),
                        ([grant, MISSING_ID], [MISSING_ID - 1, MISSING_ID]),
                        ]:
                    with self.subTest(method=method, coupons=coupons):
                        error = self.error(
                            self.a, method, dict(params, coupons=coupons))
                        other = self.error(
                            self.a, method, dict(params, coupons=missing))
                        self.assertEqual(
                            (error.code, error.type, error.data),
                            (other.code, other.type, other.data))
                        self.assertIn(error.type,
                            {'coupon.not_found', 'coupon.not_applicable'})
                        self.assertEqual(
                            error.message.replace(str(grant), '#'),
                            other.message.replace(str(missing[0]), '#'))
                        self.assertNotIn(self.code, error.message)
        self.assertEqual(self.a.call('order.list', {})['total'], 0)
        self.assertNothingChanged()
        # The printed code is still nobody's
        grant = run_transaction(lambda: Pool().get('course.coupon.grant')(
                self.code_grant).party)
        self.assertIsNone(grant)

    def test_redeem_others_code(self):
        "The code of B's grant does not make it A's"
        codes = run_transaction(lambda: [
                Pool().get('course.coupon.grant')(g).code
                for g in self.b_grants])
        for code in codes:
            with self.subTest(code=code):
                self.assertTrue(code)
                error = self.error(self.a, 'coupon.redeem', {'code': code})
                self.assertEqual(error.code, -32010)
                self.assertIn(error.type,
                    {'coupon.code_invalid', 'coupon.code_taken'})
        self.assertEqual(self.a.call('coupon.mine', {}), [])
        self.assertEqual(self.state(self.b), self.b_before)

    def test_cart(self):
        "A's cart calls never reach B's cart"
        course_b = self.catalog['b']
        self.assertEqual(
            [i['course'] for i in self.a.call('cart.get')['items']],
            [self.catalog['a']])
        for method, params in [
                ('cart.remove', {'course': course_b}),
                ('cart.select', {'course': course_b, 'selected': False}),
                ('cart.set_option', {'course': course_b, 'option': None}),
                ]:
            with self.subTest(method=method):
                error = self.error(self.a, method, params)
                self.assertEqual(
                    (error.code, error.type), (-32004, 'not_found'))
        a_cart = self.a.call('cart.get')
        self.a.call('cart.select_all', {'selected': False})
        self.a.call('cart.select_all', {'selected': True})
        self.assertEqual(self.a.call('cart.get'), a_cart)
        self.assertEqual(self.state(self.b), self.b_before)

    def test_enrollments_and_account(self):
        "A sees none of B's courses, points or money"
        self.assertEqual(self.a.call('enrollment.list'), [])
        me = self.a.call('account.me')
        self.assertEqual(me['name'], "A")
        self.assertNotEqual(me['email'], self.b_before['account.me']['email'])
        self.assertNothingChanged()

    def test_no_token_sees_nothing(self):
        "Without a token the same calls are not authenticated"
        anonymous = StorefrontClient(self.a.database)
        for method, params in [('order.get', {'number': self.b_orders[0]}),
                ('coupon.mine', {}), ('cart.get', None),
                ('enrollment.list', None),
                ('checkout.preview', {'coupons': self.b_grants[:1]})]:
            with self.subTest(method=method):
                error = self.error(anonymous, method, params)
                self.assertEqual(
                    (error.code, error.type), (-32001, 'auth.required'))
        self.assertNothingChanged()


class IsolationRedisTestCase(IsolationTestCase):
    "The same with the carts in Redis"
    redis = REDIS_URL

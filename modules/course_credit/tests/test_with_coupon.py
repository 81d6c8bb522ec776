"Credit points with the coupon module installed too (both real modules)"
import importlib.util
import unittest
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.modules.course_credit.tests.tools import (
    balances, company_catalog, grant as give_points, set_config)
from trytond.modules.course_order.tests.tools import checkout
from trytond.pool import Pool
from trytond.tests.test_tryton import (
    activate_module, drop_db, with_transaction)


class CreditWithCouponTestCase(unittest.TestCase):
    "A coupon and credit points on the same order"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if importlib.util.find_spec('trytond.modules.course_coupon') is None:
            raise unittest.SkipTest("course_coupon is not installed")
        drop_db()
        activate_module(['course_credit', 'course_coupon'])

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        drop_db()

    def catalog(self):
        return company_catalog()

    def state(self, grant):
        Grant = Pool().get('course.coupon.grant')
        return Grant(grant.id).state

    def balance(self, party):
        return balances(party)[0]

    def counts(self):
        pool = Pool()
        return {name: pool.get(name).search([], count=True) for name in [
                'course.order', 'course.credit.movement']}

    @with_transaction()
    def test_discount_steps_once(self):
        "Each discount step runs once, whatever the modules' setup order"
        Order = Pool().get('course.order')
        steps = Order._get_discount_steps()
        self.assertEqual(len(steps), len(set(steps)), steps)
        self.assertEqual(
            [n for _, n in sorted(steps)],
            ['coupon_course', 'coupon_order', 'credit'])

    @with_transaction()
    def test_coupon_and_credit(self):
        "Refused by default with nothing spent; allowed when combinable"
        pool = Pool()
        Configuration = pool.get('course.configuration')
        Credit = pool.get('course.credit.movement')
        Order = pool.get('course.order')
        from trytond.modules.course_coupon.tests.tools import (
            create_coupon, give)
        cat = self.catalog()
        give_points(cat.student, 300)
        grant = give(create_coupon(cat.company, '-30'), cat.student)
        self.assertFalse(Configuration(1).discounts_combinable)

        before = self.counts()
        with self.assertRaises(UserError) as cm:
            checkout(cat.student, cat.course_a, grants=[grant.id],
                credit=100)
        self.assertIn(
            "cannot be used on the same order", cm.exception.message)
        self.assertEqual(self.counts(), before)
        self.assertEqual(self.balance(cat.student), 300)
        self.assertEqual(self.state(grant), 'available')
        # each alone is fine
        coupon_only = checkout(cat.student, cat.course_b, grants=[grant.id])
        self.assertEqual(coupon_only.payable_amount, Decimal('470.00'))
        Order.cancel([coupon_only])
        credit_only = checkout(cat.student, cat.course_b, credit=100)
        self.assertEqual(credit_only.payable_amount, Decimal('490.00'))
        Order.cancel([credit_only])

        set_config(discounts_combinable=True)
        # A 1000: coupon -30 first, then 100 points = 10.00 on what is left
        order = checkout(
            cat.student, cat.course_a, grants=[grant.id], credit=100)
        self.assertEqual(
            sorted((d.kind, d.amount) for d in order.discounts),
            [('coupon', Decimal('30.00')), ('credit', Decimal('10.00'))])
        self.assertEqual(order.payable_amount, Decimal('960.00'))
        self.assertEqual(
            sum(l.amount for l in order.lines), order.payable_amount)
        self.assertEqual(self.state(grant), 'reserved')
        self.assertEqual(self.balance(cat.student), 200)
        self.assertEqual(Credit.audit(), [])

        # Cancelling gives back both, and the audit still agrees
        Order.cancel([order])
        self.assertEqual(self.state(grant), 'available')
        self.assertEqual(self.balance(cat.student), 300)
        self.assertEqual(Credit.audit(), [])

    @with_transaction()
    def test_credit_capped_after_coupon(self):
        "The payable term of the credit maximum is what the coupon left"
        pool = Pool()
        Course = pool.get('course.course')
        from trytond.modules.course_coupon.tests.tools import (
            create_coupon, give)
        cat = self.catalog()
        Course.write([cat.course_b], {'price': Decimal('40')})
        give_points(cat.student, 300)
        grant = give(create_coupon(cat.company, '-30'), cat.student)
        set_config(discounts_combinable=True)
        # B costs 40.00, 10.00 left after the coupon: at most 100 points
        with self.assertRaises(UserError) as cm:
            checkout(cat.student, cat.course_b, grants=[grant.id],
                credit=101)
        self.assertIn("at most 100 credit points", cm.exception.message)
        order = checkout(
            cat.student, cat.course_b, grants=[grant.id], credit=100)
        self.assertEqual(order.payable_amount, Decimal('0.00'))
        self.assertEqual(order.state, 'paid')
        self.assertEqual(self.state(grant), 'used')

    @with_transaction()
    def test_preview(self):
        """A preview gives the amounts, the usable coupons and the most
        usable points of the order, and spends and reserves nothing"""
        pool = Pool()
        Order = pool.get('course.order')
        from trytond.modules.course_coupon.tests.tools import (
            create_coupon, give)
        from trytond.modules.course_order.tests.tools import item
        cat = self.catalog()
        give_points(cat.student, 300)
        grant = give(create_coupon(cat.company, '-30'), cat.student)
        set_config(discounts_combinable=True)
        items = [item(cat.course_b)]
        before = self.counts()

        bare = Order.checkout_preview(cat.student.id, items)
        info = Order.checkout_preview_info(bare)
        self.assertEqual(bare.payable, Decimal('500.00'))
        self.assertEqual(info['stacking'], 'single')
        self.assertEqual(info['usable_coupons'], [{
                    'grant': grant.id, 'name': grant.coupon.name,
                    'formula': '-30', 'discount': Decimal('30.00'),
                    'courses': [cat.course_b.id],
                    'scope': 'general'}])
        # B's cap is 100 points (see company_catalog)
        self.assertEqual(info['credit'], {
                'balance': 300, 'ratio': 10,
                'max_usable': cat.course_b.credit})

        both = Order.checkout_preview(
            cat.student.id, items, {'grants': [grant.id], 'credit': 100})
        info = Order.checkout_preview_info(both)
        self.assertEqual(
            [(d.kind, d.amount) for d in both.discounts],
            [('coupon', Decimal('30.00')), ('credit', Decimal('10.00'))])
        self.assertEqual(both.payable, Decimal('460.00'))
        self.assertEqual(self.counts(), before)
        self.assertEqual(self.state(grant), 'available')
        self.assertEqual(self.balance(cat.student), 300)

        # Too many points: refused as the checkout would
        with self.assertRaises(UserError) as cm:
            Order.checkout_preview(
                cat.student.id, items, {'credit': 10000})
        self.assertIn("at most", cm.exception.message)
        order = Order.checkout(
            cat.student.id, items, 'manual',
            {'grants': [grant.id], 'credit': 100})
        self.assertEqual(order.payable_amount, both.payable)

    @with_transaction()
    def test_line_of_other_product(self):
        """A line selling something else (a module's product) takes no
        coupon and no points: both go to the course lines only"""
        pool = Pool()
        Category = pool.get('party.category')
        Credit = pool.get('course.credit.movement')
        from trytond.modules.course_coupon.tests.tools import (
            create_coupon, give)
        from trytond.modules.course_order.tests.tools import (
            item, sell_kind)
        Order = pool.get('course.order')
        cat = self.catalog()
        vip, = Category.create([{'name': "VIP"}])
        sell_kind(self, 'membership', Category, '99')
        give_points(cat.student, 300)
        grant = give(create_coupon(cat.company, '-30'), cat.student)
        set_config(discounts_combinable=True)

        order = Order.checkout(
            cat.student.id, [item(cat.course_a), {'membership': vip.id}],
            'manual', {'grants': [grant.id], 'credit': 100})
        course_line, other_line = order.lines
        self.assertEqual(other_line.product, vip)
        self.assertIsNone(other_line.course)
        self.assertEqual(
            (other_line.discount_amount, other_line.amount),
            (Decimal('0.00'), Decimal('99.00')))
        self.assertEqual(course_line.amount, Decimal('960.00'))
        self.assertEqual(order.payable_amount, Decimal('1059.00'))
        self.assertEqual(
            order.title, "A and more (2 items in all)")
        self.assertEqual(self.balance(cat.student), 200)
        self.assertEqual(Credit.audit(), [])

        # Only the other product: neither the coupon nor points apply
        with self.assertRaises(UserError) as cm:
            Order.checkout(
                cat.student.id, [{'membership': vip.id}], 'manual',
                {'credit': 100})
        self.assertIn("at most 0 credit points", cm.exception.message)

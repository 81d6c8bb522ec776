"""The checkout contract of modules/course_order/doc/reference.rst, over
real XML-RPC and JSON-RPC, with the coupon and credit modules: the options
are a positional dict, `grants` (grant ids) and `credit` (points)."""
import unittest
from decimal import Decimal

from trytond.modules.course.tests.rpc import RPCTestMixin
from trytond.modules.course.tests.tools import run_transaction

D = Decimal


class CheckoutRPCTestCase(RPCTestMixin, unittest.TestCase):
    "checkout(party, items, pay_method, options) with coupons and points"
    module = ['course_coupon', 'course_credit']

    @classmethod
    def setUpClass(cls):
        super().setUpClass()

        def catalog():
            from trytond.modules.course.tests.tools import create_catalog
            from trytond.pool import Pool
            Company = Pool().get('company.company')
            cat = create_catalog(Company(cls.company_id))
            return {c: getattr(cat, c).id for c in [
                    'course_a', 'course_b', 'course_c', 'option_a_month']}
        cls.cat = run_transaction(
            catalog, context={'company': cls.company_id})

    def setUp(self):
        super().setUp()
        self.set_combinable(False)

    # ---- Data made as root (internal calls), committed --------------------

    def set_combinable(self, value):
        def write():
            from trytond.pool import Pool
            Configuration = Pool().get('course.configuration')
            config = Configuration(1)
            config.discounts_combinable = value
            config.save()
        self.run_transaction(write)

    def student(self, points=0, formula=None):
        """A new student with points (a grant movement) and, with formula,
        a coupon of that formula granted to them; return (party id, grant
        id or None)"""
        def create():
            from trytond.modules.course_coupon.tests.tools import (
                create_coupon, give)
            from trytond.modules.course_credit.tests.tools import (
                grant as credit_grant)
            from trytond.pool import Pool
            pool = Pool()
            Company = pool.get('company.company')
            Party = pool.get('party.party')
            party, = Party.create([{'name': "Student"}])
            grant = None
            if formula:
                coupon = create_coupon(Company(self.company_id), formula)
                grant = give(coupon, party).id
            if points:
                # As the adjust wizard records welcome points
                credit_grant(party, points)
            return party.id, grant
        return self.run_transaction(create)

    def order(self, order_id):
        "What the order holds, read as root"
        def read():
            from trytond.pool import Pool
            Order = Pool().get('course.order')
            order = Order(order_id)
            return {
                'party': order.party.id, 'state': order.state,
                'pay_method': order.pay_method,
                'total': order.total_amount,
                'discount': order.discount_amount,
                'payable': order.payable_amount,
                'discounts': sorted(
                    (d.kind, d.amount) for d in order.discounts),
                'credit_points': order.credit_points,
                'enrollments': len(order.enrollments),
                }
        return self.run_transaction(read)

    def grant_state(self, grant_id):
        def read():
            from trytond.pool import Pool
            return Pool().get('course.coupon.grant')(grant_id).state
        return self.run_transaction(read)

    def balance(self, party_id):
        def read():
            from trytond.pool import Pool
            return Pool().get('party.party')(party_id).credit_balance
        return self.run_transaction(read)

    def counts(self):
        def count():
            from trytond.pool import Pool
            pool = Pool()
            return {name: pool.get(name).search([], count=True) for name in [
                    'course.order', 'course.order.line',
                    'course.order.discount', 'course.credit.movement',
                    'course.enrollment']}
        return self.run_transaction(count)

    def checkout(self, protocol, *args):
        "Call checkout as manager (who may spend a student's points)"
        return self.login('manager', protocol).model(
            'course.order', 'checkout', *args)

    # ---- The options ------------------------------------------------------

    def test_grants_option(self):
        "A coupon grant over JSON-RPC and XML-RPC: discounted and reserved"
        for protocol in ['json', 'xml']:
            with self.subTest(protocol=protocol):
                party, grant = self.student(formula='-30')
                order = self.checkout(
                    protocol, party, [{'course': self.cat['course_a']}],
                    'manual', {'grants': [grant]})
                self.assertIsInstance(order, int)
                values = self.order(order)
                self.assertEqual(
                    (values['party'], values['state'], values['total'],
                        values['payable'], values['discounts']),
                    (party, 'unpaid', D('1000.00'), D('970.00'),
                        [('coupon', D('30.00'))]))
                self.assertEqual(self.grant_state(grant), 'reserved')

    def test_credit_option(self):
        "Points over XML-RPC and JSON-RPC: spent, discounted at the ratio"
        for protocol in ['xml', 'json']:
            with self.subTest(protocol=protocol):
                party, _ = self.student(points=300)
                order = self.checkout(
                    protocol, party, [
                        {'course': self.cat['course_a'],
                            'option': self.cat['option_a_month']}],
                    'manual', {'credit': 100})
                values = self.order(order)
                self.assertEqual(
                    (values['total'], values['payable'],
                        values['discounts'], values['credit_points']),
                    (D('199.00'), D('189.00'), [('credit', D('10.00'))],
                        100))
                self.assertEqual(self.balance(party), 200)

    def test_grants_and_credit(self):
        """Both options on one order: refused by default with nothing
        spent or written; accepted when the configuration combines them"""
        party, grant = self.student(points=300, formula='-30')
        args = (party, [{'course': self.cat['course_a']},
                {'course': self.cat['course_b']}], 'manual',
            {'grants': [grant], 'credit': 50})
        before = self.counts()
        for protocol in ['json', 'xml']:
            self.assertRPCError(
                self.checkout, protocol, *args,
                text="cannot be used on the same order")
        self.assertEqual(self.counts(), before)
        self.assertEqual(self.grant_state(grant), 'available')
        self.assertEqual(self.balance(party), 300)

        self.set_combinable(True)
        order = self.checkout('xml', *args)
        values = self.order(order)
        self.assertEqual(values['total'], D('1500.00'))
        self.assertEqual(
            values['discounts'],
            [('coupon', D('30.00')), ('credit', D('5.00'))])
        self.assertEqual(values['payable'], D('1465.00'))
        self.assertEqual(self.grant_state(grant), 'reserved')
        self.assertEqual(self.balance(party), 250)

    def test_free_order_paid_at_once(self):
        """A coupon covering everything: the order comes back paid, its
        method free, the course enrolled"""
        party, grant = self.student(formula='-5000')
        order = self.checkout(
            'json', party, [{'course': self.cat['course_c'],
                    'option': None}], 'manual', {'grants': [grant]})
        values = self.order(order)
        self.assertEqual(
            (values['state'], values['pay_method'], values['payable'],
                values['enrollments']),
            ('paid', 'free', D('0.00'), 1))
        self.assertEqual(self.grant_state(grant), 'used')

    def test_defaults(self):
        "pay_method and options may be left out (positional defaults)"
        party, _ = self.student()
        order = self.checkout(
            'json', party, [{'course': self.cat['course_b']}])
        self.assertEqual(self.order(order)['payable'], D('500.00'))

    def test_option_errors(self):
        """Every documented error of the options is a UserError over both
        protocols, and nothing is written, spent or reserved"""
        party, grant = self.student(points=300, formula='-30')
        other, other_grant = self.student(formula='-30')
        item = [{'course': self.cat['course_a']}]
        cases = [
            ({'grants': 'x'}, 'of "grants" is not valid'),
            ({'grants': [grant, grant]}, "given twice"),
            ({'grants': [999999]}, "no coupon grant with id 999999"),
            ({'grants': [other_grant]}, None),
            ({'credit': -1}, 'of "credit" is not valid'),
            ({'credit': 1.5}, 'of "credit" is not valid'),
            ({'credit': '10'}, 'of "credit" is not valid'),
            ({'credit': 101}, "at most 100 credit points"),
            ({'credit': 2 ** 31 - 1}, 'of "credit" is not valid'),
            ({'wallet': 1}, "Unknown checkout options: wallet"),
            ([('credit', 1)], "a dictionary"),
            ]
        before = self.counts()
        for options, text in cases:
            for protocol in ['json', 'xml']:
                with self.subTest(options=options, protocol=protocol):
                    self.assertRPCError(
                        self.checkout, protocol, party, item, 'manual',
                        options, text=text)
        self.assertEqual(self.counts(), before)
        self.assertEqual(self.grant_state(grant), 'available')
        self.assertEqual(self.grant_state(other_grant), 'available')
        self.assertEqual(self.balance(party), 300)

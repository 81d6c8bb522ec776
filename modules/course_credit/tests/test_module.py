import datetime as dt
from decimal import Decimal
from unittest.mock import patch

from trytond.exceptions import UserError
from trytond.model.exceptions import ValidationError
from trytond.modules.company.tests import CompanyTestMixin, create_company
from trytond.modules.course.tests.tools import set_company_language
from trytond.modules.course_order.tests.tools import checkout
from trytond.modules.course_credit.tests.tools import (
    adjust, balances, company_catalog, set_config, topup)
from trytond.pool import Pool
from trytond.pyson import PYSONDecoder
from trytond.tests.test_tryton import ModuleTestCase, with_transaction
from trytond.transaction import Transaction


class CourseCreditTestCase(CompanyTestMixin, ModuleTestCase):
    "Test Course Credit module"
    module = 'course_credit'

    # ---- helpers ----------------------------------------------------------

    def catalog(self):
        return company_catalog()

    def grant(self, party, points, kind='grant'):
        return adjust(party, kind, points)

    def topup(self, party, amount):
        return topup(party, amount)

    def balances(self, party):
        return balances(party)

    def credit_movements(self, order):
        Credit = Pool().get('course.credit.movement')
        return [(m.kind, m.points) for m in Credit.search(
                [('order', '=', order.id)], order=[('id', 'ASC')])]

    def wallet_movements(self, order):
        Wallet = Pool().get('course.wallet.movement')
        return [(m.kind, m.amount) for m in Wallet.search(
                [('order', '=', order.id)], order=[('id', 'ASC')])]

    def assertRefused(self, text, party, *items, rolled_back=(), **kwargs):
        "The checkout is refused with text and leaves nothing behind"
        return self.assertRefusedCall(
            text, checkout, party, *items, rolled_back=rolled_back,
            **kwargs)

    def assertRefusedCall(self, text, call, *args, rolled_back=(),
            **kwargs):
        """call(*args, **kwargs) is refused with text and leaves nothing
        behind.

        The counts are compared before the rollback of the refused call;
        models in rolled_back are written before the refusal and compared
        after it (the caller's rollback is played with a savepoint).
        """
        pool = Pool()
        models = ['course.order', 'course.credit.movement',
            'course.wallet.movement', 'course.credit.adjustment']

        def counts(names):
            return {n: pool.get(n).search([], count=True) for n in names}
        before = counts(models)
        cursor = Transaction().connection.cursor()
        cursor.execute('SAVEPOINT refused')
        try:
            with self.assertRaises(UserError) as cm:
                call(*args, **kwargs)
            self.assertIn(text, cm.exception.message)
            kept = [n for n in models if n not in rolled_back]
            self.assertEqual(counts(kept), {n: before[n] for n in kept})
        finally:
            cursor.execute('ROLLBACK TO SAVEPOINT refused')
            Transaction().counter += 1
            Transaction().cache.clear()
        self.assertEqual(counts(models), before)
        return cm.exception

    def set_config(self, **values):
        set_config(**values)

    # ---- configuration ----------------------------------------------------

    @with_transaction()
    def test_configuration_defaults(self):
        "Ratio 10 points per yuan, earning off"
        Configuration = Pool().get('course.configuration')
        config = Configuration(1)
        self.assertEqual(config.credit_ratio, 10)
        self.assertEqual(config.credit_earn_rate, Decimal(0))

    # ---- credit at checkout -----------------------------------------------

    @with_transaction()
    def test_seed_example(self):
        "A and B capped at 100 each, balance 300: 150 → 15.00, 250 refused"
        cat = self.catalog()
        self.grant(cat.student, 300)
        error = self.assertRefused(
            "at most 200 credit points", cat.student, cat.course_a,
            cat.course_b, credit=250)
        self.assertIn("not 250", error.message)
        self.assertEqual(self.balances(cat.student)[0], 300)

        order = checkout(cat.student, cat.course_a, cat.course_b, credit=150)
        self.assertEqual(order.total_amount, Decimal('1500.00'))
        self.assertEqual(order.discount_amount, Decimal('15.00'))
        self.assertEqual(order.payable_amount, Decimal('1485.00'))
        self.assertEqual(
            sum(l.amount for l in order.lines), order.payable_amount)
        self.assertEqual(order.credit_points, 150)
        discount, = order.discounts
        self.assertEqual(discount.kind, 'credit')
        self.assertEqual(discount.amount, Decimal('15.00'))
        self.assertEqual(discount.origin.__name__, 'course.credit.movement')
        self.assertEqual(discount.origin.points, -150)
        self.assertEqual(self.credit_movements(order), [('spend', -150)])
        self.assertEqual(self.balances(cat.student)[0], 150)
        self.assertEqual(discount.origin.balance, 150)

    @with_transaction()
    def test_more_than_balance_refused(self):
        "More points than the balance are refused, saying the maximum"
        cat = self.catalog()
        self.grant(cat.other_student, 50)
        self.assertRefused(
            "at most 50 credit points", cat.other_student, cat.course_a,
            credit=60)
        self.assertRefused(
            "at most 0 credit points", cat.student, cat.course_a, credit=1)

    @with_transaction()
    def test_credit_invalid_values(self):
        "Credit points must be a non-negative integer"
        cat = self.catalog()
        self.grant(cat.student, 300)
        for value in [-1, '10', 1.5, True, None, 2 ** 40, [1]]:
            self.assertRefused(
                '"credit" is not valid', cat.student, cat.course_a,
                credit=value)
        order = checkout(cat.student, cat.course_a, credit=0)
        self.assertEqual(order.discounts, ())
        self.assertEqual(self.credit_movements(order), [])

    @with_transaction()
    def test_credit_only_capped_courses(self):
        "Without a capped course nothing is usable; discount on capped lines"
        cat = self.catalog()
        self.grant(cat.student, 300)
        self.assertRefused(
            "at most 0 credit points", cat.student, cat.course_c, credit=10)
        order = checkout(cat.student, cat.course_a, cat.course_c, credit=100)
        a, c = order.lines
        self.assertEqual(a.amount, Decimal('990.00'))
        self.assertEqual(c.amount, Decimal('300.00'))
        self.assertEqual(list(order.discounts[0].lines), [a])

    @with_transaction()
    def test_credit_capped_by_payable(self):
        "The points cannot be worth more than what is left to pay"
        pool = Pool()
        Course = pool.get('course.course')
        cat = self.catalog()
        Course.write([cat.course_b], {'price': Decimal('5.55')})
        self.grant(cat.student, 300)
        self.assertRefused(
            "at most 55 credit points", cat.student, cat.course_b,
            credit=56)
        order = checkout(cat.student, cat.course_b, credit=55)
        self.assertEqual(order.payable_amount, Decimal('0.05'))
        self.assertEqual(order.state, 'unpaid')

    @with_transaction()
    def test_credit_inexact(self):
        "Points not worth a whole amount of the currency are refused"
        cat = self.catalog()
        self.set_config(credit_ratio=1000)
        self.grant(cat.student, 300)
        # 4 points at 1000 per yuan: 0.004, no cent; 10 points are 0.01
        error = self.assertRefused(
            "use 0 or 10 points", cat.student, cat.course_b, credit=4)
        self.assertIn("4 credit points are worth 0.004", error.message)
        self.assertRefused(
            "use 10 or 20 points", cat.student, cat.course_b, credit=14)
        order = checkout(cat.student, cat.course_b, credit=10)
        self.assertEqual(order.discount_amount, Decimal('0.01'))
        self.assertEqual(order.credit_points, 10)
        # 3 points per yuan: only multiples of 3 are cents
        self.set_config(credit_ratio=3)
        self.assertRefused(
            "use 0 or 3 points", cat.student, cat.course_a, credit=1)
        order = checkout(cat.student, cat.course_a, credit=3)
        self.assertEqual(order.discount_amount, Decimal('1.00'))

    @with_transaction()
    def test_credit_inexact_whole_currency(self):
        "Without decimals at 10 points per unit: only tens convert"
        pool = Pool()
        Currency = pool.get('currency.currency')
        currency = Currency(
            name="Yen", symbol="¥", code='JPY', digits=0,
            rounding=Decimal(1))
        currency.save()
        cat = company_catalog(name="Yen School", currency=currency)
        self.grant(cat.student, 15)
        # 14 points would give 1 unit (the student loses 4), 5 points 1
        # unit too (the student gains 5): both refused
        self.assertRefused(
            "use 10 or 20 points", cat.student, cat.course_b, credit=14)
        self.assertRefused(
            "use 0 or 10 points", cat.student, cat.course_b, credit=5)
        # The most usable is a number of points that converts
        self.assertRefused(
            "at most 10 credit points", cat.student, cat.course_b,
            credit=20)
        order = checkout(cat.student, cat.course_b, credit=10)
        self.assertEqual(order.discount_amount, Decimal(1))
        self.assertEqual(order.payable_amount, Decimal(499))
        self.assertEqual(self.balances(cat.student)[0], 5)
        self.assertEqual(pool.get('course.credit.movement').audit(), [])

    @with_transaction()
    def test_credit_full_discount_paid(self):
        "Points covering everything make the order free and paid"
        pool = Pool()
        Course = pool.get('course.course')
        cat = self.catalog()
        Course.write([cat.course_b], {'price': Decimal('10')})
        self.grant(cat.student, 300)
        order = checkout(cat.student, cat.course_b, credit=100)
        self.assertEqual(order.payable_amount, Decimal('0.00'))
        self.assertEqual(order.pay_method, 'free')
        self.assertEqual(order.state, 'paid')
        self.assertEqual(len(order.enrollments), 1)
        self.assertEqual(self.balances(cat.student)[0], 200)

    @with_transaction()
    def test_discount_families(self):
        "Coupon + credit: refused unless the configuration combines them"
        pool = Pool()
        Order = pool.get('course.order')
        cat = self.catalog()
        self.grant(cat.student, 300)
        original = Order.checkout_validate

        def validate(cls, checkout):
            checkout.families.add('coupon')  # what a coupon module does
            original(checkout)
        with patch.object(Order, 'checkout_validate', classmethod(validate)):
            self.assertRefused(
                "cannot be used on the same order", cat.student,
                cat.course_a, credit=100)
            # without points, the coupon alone is fine
            order = checkout(cat.student, cat.course_b)
            self.assertEqual(order.discounts, ())
            self.set_config(discounts_combinable=True)
            order = checkout(cat.student, cat.course_a, credit=100)
            self.assertEqual(order.discount_amount, Decimal('10.00'))

    @with_transaction()
    def test_credit_after_other_discounts(self):
        "Credit sees what is left to pay after earlier discount steps"
        pool = Pool()
        Order = pool.get('course.order')
        cat = self.catalog()
        self.grant(cat.student, 10000)
        self.set_config(discounts_combinable=True)

        Discount = pool.get('course.order.discount')

        def step(cls, checkout):
            checkout.add_discount(
                'coupon', Decimal('495'), [checkout.lines[0]], "coupon")
        with patch.object(Discount.kind, 'selection',
                Discount.kind.selection + [('coupon', "Coupon")]), \
                patch.object(Order, 'checkout_discount_test',
                classmethod(step), create=True), \
                patch.object(Order, '_get_discount_steps', classmethod(
                        lambda cls, steps=Order._get_discount_steps:
                        steps() + [(10, 'test')])):
            # B costs 500, 5.00 left after the coupon: at most 50 points
            self.assertRefused(
                "at most 50 credit points", cat.student, cat.course_b,
                credit=60)
            order = checkout(cat.student, cat.course_b, credit=50)
        self.assertEqual(order.payable_amount, Decimal('0.00'))
        self.assertEqual(order.state, 'paid')

    # ---- refunds of points --------------------------------------------------

    @with_transaction()
    def test_refund_on_cancel(self):
        "Cancelling gives the points back, once"
        Order = Pool().get('course.order')
        cat = self.catalog()
        self.grant(cat.student, 300)
        order = checkout(cat.student, cat.course_a, credit=100)
        self.assertEqual(self.balances(cat.student)[0], 200)
        Order.cancel([order])
        self.assertEqual(
            self.credit_movements(order), [('spend', -100), ('refund', 100)])
        self.assertEqual(self.balances(cat.student)[0], 300)
        Order.release([order])  # a second release changes nothing
        with self.assertRaises(UserError):
            Order.cancel([order])
        self.assertEqual(len(self.credit_movements(order)), 2)
        self.assertEqual(self.balances(cat.student)[0], 300)

    @with_transaction()
    def test_refund_on_expiry(self):
        "An expired order gives the points back"
        Order = Pool().get('course.order')
        cat = self.catalog()
        self.grant(cat.student, 300)
        order = checkout(cat.student, cat.course_a, cat.course_b, credit=200)
        Order.write([order], {
                'pay_deadline': dt.datetime.now() - dt.timedelta(minutes=1)})
        self.assertEqual(Order._expire([order]), [order])
        self.assertEqual(order.state, 'expired')
        self.assertEqual(
            self.credit_movements(order), [('spend', -200), ('refund', 200)])
        self.assertEqual(self.balances(cat.student)[0], 300)

    @with_transaction()
    def test_refund_on_refund(self):
        "A refunded order gives the points back"
        Order = Pool().get('course.order')
        cat = self.catalog()
        self.grant(cat.student, 300)
        order = checkout(cat.student, cat.course_a, credit=100)
        Order.confirm_payment([order])
        self.assertEqual(self.balances(cat.student)[0], 200)
        Order.refund([order])
        self.assertEqual(order.state, 'refunded')
        self.assertEqual(
            self.credit_movements(order), [('spend', -100), ('refund', 100)])
        self.assertEqual(self.balances(cat.student)[0], 300)
        Order.revoke([order])
        self.assertEqual(len(self.credit_movements(order)), 2)

    # ---- wallet -------------------------------------------------------------

    @with_transaction()
    def test_wallet_pay(self):
        "Paying by wallet debits it and pays the order in the checkout"
        cat = self.catalog()
        self.topup(cat.student, '1200')
        order = checkout(cat.student, cat.course_a, pay_method='wallet')
        self.assertEqual(order.pay_method, 'wallet')
        self.assertEqual(order.state, 'paid')
        self.assertEqual(len(order.enrollments), 1)
        self.assertEqual(
            self.wallet_movements(order), [('pay', Decimal('-1000.00'))])
        self.assertEqual(self.balances(cat.student)[1], Decimal('200.00'))

    @with_transaction()
    def test_wallet_short(self):
        "A short wallet refuses the checkout, leaving nothing behind"
        cat = self.catalog()
        self.topup(cat.student, '999.99')
        self.assertRefused(
            "cannot be taken from it", cat.student, cat.course_a,
            pay_method='wallet', rolled_back={'course.order'})
        self.assertEqual(self.balances(cat.student)[1], Decimal('999.99'))
        self.grant(cat.other_student, 100)
        self.assertRefused(
            "cannot be taken from it", cat.other_student, cat.course_a,
            pay_method='wallet', credit=100,
            rolled_back={'course.order', 'course.credit.movement'})
        self.assertEqual(self.balances(cat.other_student)[0], 100)

    @with_transaction()
    def test_wallet_with_credit(self):
        "Points first, the wallet pays what is left"
        cat = self.catalog()
        self.grant(cat.student, 100)
        self.topup(cat.student, '990')
        order = checkout(
            cat.student, cat.course_a, pay_method='wallet', credit=100)
        self.assertEqual(order.state, 'paid')
        self.assertEqual(self.balances(cat.student), (0, Decimal('0.00')))

    @with_transaction()
    def test_wallet_refund(self):
        "Refunding a wallet order credits the wallet back at once"
        Order = Pool().get('course.order')
        cat = self.catalog()
        self.topup(cat.student, '1000')
        order = checkout(cat.student, cat.course_a, pay_method='wallet')
        Order.refund([order])
        self.assertEqual(order.state, 'refunded')
        self.assertEqual(self.wallet_movements(order), [
                ('pay', Decimal('-1000.00')), ('refund', Decimal('1000.00'))])
        self.assertEqual(self.balances(cat.student)[1], Decimal('1000.00'))
        self.assertEqual({e.state for e in order.enrollments}, {'ended'})
        self.assertEqual(Order._payment_refund_wallet([order]), [order])
        self.assertEqual(len(self.wallet_movements(order)), 2)

    # ---- earning ------------------------------------------------------------

    @with_transaction()
    def test_earn_and_unearn(self):
        "Paid orders earn points; a refund takes them back"
        Order = Pool().get('course.order')
        cat = self.catalog()
        order = checkout(cat.student, cat.course_b)
        Order.confirm_payment([order])
        self.assertEqual(self.credit_movements(order), [])  # earning off

        self.set_config(credit_earn_rate=Decimal('0.05'))
        order = checkout(cat.student, (cat.course_a, cat.option_a_month))
        Order.confirm_payment([order])
        # 5% of 199.00 = 9.95 yuan = 99.5 points, rounded down
        self.assertEqual(self.credit_movements(order), [('earn', 99)])
        Order.fulfil([order])  # idempotent
        self.assertEqual(self.balances(cat.student)[0], 99)
        Order.refund([order])
        self.assertEqual(
            self.credit_movements(order), [('earn', 99), ('earn', -99)])
        self.assertEqual(self.balances(cat.student)[0], 0)

    @with_transaction()
    def test_unearn_never_below_zero(self):
        "Earned points already spent are taken back as far as possible"
        Order = Pool().get('course.order')
        cat = self.catalog()
        self.set_config(credit_earn_rate=Decimal('0.1'))
        self.topup(cat.student, '500')
        order = checkout(cat.student, cat.course_b, pay_method='wallet')
        self.assertEqual(self.balances(cat.student), (500, Decimal('0.00')))
        other = checkout(cat.student, cat.course_a, credit=100)
        self.assertEqual(self.balances(cat.student)[0], 400)
        Order.refund([order])
        self.assertEqual(self.balances(cat.student), (0, Decimal('500.00')))
        kinds = self.credit_movements(order)
        self.assertEqual(kinds, [('earn', 500), ('earn', -400)])
        self.assertEqual(other.state, 'unpaid')

    # ---- ledger rules -------------------------------------------------------

    @with_transaction()
    def test_movements_immutable(self):
        "Movements and adjustments are never written, deleted or copied"
        pool = Pool()
        Credit = pool.get('course.credit.movement')
        Wallet = pool.get('course.wallet.movement')
        Adjustment = pool.get('course.credit.adjustment')
        cat = self.catalog()
        credit = self.grant(cat.student, 10)
        wallet = self.topup(cat.student, '10')
        for Model, record, values in [
                (Credit, credit, {'points': 20}),
                (Wallet, wallet, {'note': "x"}),
                (Adjustment, credit.adjustment, {'reason': "x"})]:
            with self.subTest(model=Model.__name__):
                with self.assertRaises(UserError) as cm:
                    Model.write([record], values)
                self.assertIn("cannot be changed or deleted",
                    cm.exception.message)
                with self.assertRaises(UserError):
                    Model.delete([record])
                with self.assertRaises(UserError) as cm:
                    Model.copy([record])
                self.assertIn("cannot be copied", cm.exception.message)
        self.assertEqual(Credit.search([], count=True), 1)
        self.assertEqual(self.balances(cat.student), (10, Decimal(10)))

    @with_transaction()
    def test_movement_origins(self):
        "Workflow kinds need an order, staff kinds their adjustment"
        pool = Pool()
        Credit = pool.get('course.credit.movement')
        Order = pool.get('course.order')
        cat = self.catalog()
        grant = self.grant(cat.student, 10)
        order = checkout(cat.student, cat.course_b)
        Order.confirm_payment([order])
        for values, text in [
                # an earn without its order
                ({'kind': 'earn', 'points': 5}, "comes from an order"),
                # an earn that claims to be an adjustment
                ({'kind': 'earn', 'points': 5, 'order': order.id,
                        'adjustment': grant.adjustment.id},
                    "comes from an order"),
                # a grant without its adjustment, or with an order
                ({'kind': 'grant', 'points': 5}, "comes from an adjustment"),
                ({'kind': 'grant', 'points': 10, 'order': order.id,
                        'adjustment': grant.adjustment.id},
                    "comes from an adjustment"),
                # an adjustment that recorded something else
                ({'kind': 'grant', 'points': 99,
                        'adjustment': grant.adjustment.id},
                    "is not what the adjustment"),
                ({'kind': 'adjust', 'points': 10,
                        'adjustment': grant.adjustment.id},
                    "is not what the adjustment"),
                # the order of another student
                ({'kind': 'earn', 'points': 5, 'order': order.id,
                        'party': cat.other_student.id}, "is not an order of"),
                ]:
            with self.subTest(values=values):
                values = {'party': cat.student.id, **values}
                with self.assertRaises(ValidationError) as cm:
                    Credit.create([values])
                self.assertIn(text, cm.exception.message)
        self.assertEqual(Credit.search([], count=True), 1)

    @with_transaction()
    def test_movement_kinds(self):
        "The sign and the order follow the kind; never below zero"
        cat = self.catalog()
        with self.assertRaises(ValidationError):
            self.grant(cat.student, -10)
        with self.assertRaises(ValidationError):
            self.grant(cat.student, 0, kind='adjust')
        with self.assertRaises(ValidationError):
            self.grant(cat.student, -10, kind='spend')  # needs an order
        with self.assertRaises(ValidationError):
            self.topup(cat.student, '1.234')
        # Nothing of the refused movements was written
        self.assertEqual(self.balances(cat.student), (0, Decimal(0)))
        self.grant(cat.student, 30)
        with self.assertRaises(UserError) as cm:
            self.grant(cat.student, -31, kind='adjust')
        self.assertIn("has 30 credit points", cm.exception.message)
        self.grant(cat.student, -30, kind='expire')
        self.assertEqual(self.balances(cat.student)[0], 0)

    @with_transaction()
    def test_balance_chain_and_company(self):
        "Each movement records its running balance, per company"
        pool = Pool()
        Credit = pool.get('course.credit.movement')
        cat = self.catalog()
        Adjustment = pool.get('course.credit.adjustment')
        adjustments = Adjustment.create([
                {'party': p.id, 'ledger': 'credit', 'kind': k, 'points': v,
                    'reason': "test"} for p, k, v in [
                    (cat.student, 'grant', 5),
                    (cat.other_student, 'grant', 7),
                    (cat.student, 'adjust', -2)]])
        # One create for the three: each movement's balance runs on
        movements = Adjustment.create_movements(adjustments)
        self.assertEqual([m.balance for m in movements], [5, 7, 3])
        self.assertEqual(
            [m.balance for m in Credit.search([], order=[('id', 'ASC')])],
            [5, 7, 3])
        other_company = create_company(name="Other School")
        with Transaction().set_context(company=other_company.id):
            movement = self.grant(cat.student, 11)
            self.assertEqual(movement.balance, 11)
            self.assertEqual(self.balances(cat.student)[0], 11)
        self.assertEqual(self.balances(cat.student)[0], 3)
        with Transaction().set_context(company=None):
            self.assertEqual(self.balances(cat.student)[0], 14)

    @with_transaction()
    def test_balances_statements_constant(self):
        "Reading the balances of 1 or 10 parties costs the same"
        from trytond.modules.course_order.tests.tools import StatementCounter
        pool = Pool()
        Party = pool.get('party.party')
        self.catalog()
        parties = Party.create([{'name': f"P{i}"} for i in range(10)])
        for party in parties:
            self.grant(party, 10)
            self.topup(party, '10')
        counts = []
        for limit in [1, 10]:
            ids = [p.id for p in parties[:limit]]
            Transaction().counter += 1
            with StatementCounter() as counter:
                values = Party.read(ids, ['credit_balance', 'wallet_balance'])
            counts.append(counter.count)
            self.assertEqual({v['credit_balance'] for v in values}, {10})
        self.assertEqual(counts[0], counts[1], counts)

    @with_transaction()
    def test_create_statements_constant(self):
        "Recording movements of 2 or 7 students costs the same statements"
        from trytond import backend
        from trytond.modules.course_order.tests.tools import StatementCounter
        pool = Pool()
        Adjustment = pool.get('course.credit.adjustment')
        Party = pool.get('party.party')
        self.catalog()
        parties = Party.create([{'name': f"P{i}"} for i in range(10)])

        def count(parties):
            adjustments = Adjustment.create([{
                        'party': p.id, 'ledger': 'credit', 'kind': 'grant',
                        'points': 10, 'reason': "test"} for p in parties])
            Transaction().counter += 1
            if backend.name == 'sqlite':
                # SQLite inserts row by row: count the other statements
                statements = []
                connection = Transaction().connection
                connection.set_trace_callback(statements.append)
                try:
                    Adjustment.create_movements(adjustments)
                finally:
                    connection.set_trace_callback(None)
                return len(
                    [s for s in statements if not s.startswith('INSERT')])
            with StatementCounter() as counter:
                Adjustment.create_movements(adjustments)
            return counter.count
        count(parties[:1])  # warm the caches
        # (from 2 rows trytond inserts them in one statement on PostgreSQL)
        self.assertEqual(count(parties[1:3]), count(parties[3:]))
        self.assertEqual(
            {v['credit_balance'] for v in Party.read(
                    [p.id for p in parties], ['credit_balance'])}, {10})

    @with_transaction()
    def test_checkout_statements_constant(self):
        "The statements of a checkout with points and wallet do not grow"
        from trytond import backend
        if backend.name != 'sqlite':
            self.skipTest("statement counting uses SQLite's trace hook")
        pool = Pool()
        Course = pool.get('course.course')
        cat = self.catalog()
        self.set_config(credit_earn_rate=Decimal('0.01'))
        courses = Course.copy([cat.course_b] * 14)
        Course.write(courses, {'published': True, 'price': Decimal(100)})
        for student in [cat.student, cat.other_student]:
            self.grant(student, 10000)
            self.topup(student, '10000')
        counts = []
        for student, selection in [
                (cat.student, courses[:1]),  # warm the caches
                (cat.other_student, courses[1:2]),  # warm the caches
                (cat.student, courses[2:3]),
                (cat.other_student, courses[3:5]),
                (cat.student, courses[5:14]),
                ]:
            statements = []
            connection = Transaction().connection
            connection.set_trace_callback(statements.append)
            try:
                checkout(student, *selection, credit=10, pay_method='wallet')
            finally:
                connection.set_trace_callback(None)
            # SQLite inserts rows one by one (no multi-row ids): only the
            # other statements must not grow with the lines; nor counts
            # trytond's cache synchronisation (ir_cache), which comes once
            # every [cache] clean_timeout whatever the call (a long run
            # meets it)
            counts.append(len([s for s in statements
                        if not s.startswith('INSERT')
                        and 'ir_cache' not in s]))
        self.assertEqual(len(set(counts[2:])), 1, counts)

    # ---- staff UI ---------------------------------------------------------

    @with_transaction()
    def test_staff_ui(self):
        "Party tab, movement lists with a tab per kind and a date, wizard"
        pool = Pool()
        Party = pool.get('party.party')
        Credit = pool.get('course.credit.movement')
        Wallet = pool.get('course.wallet.movement')
        Order = pool.get('course.order')
        ModelData = pool.get('ir.model.data')
        ActWindow = pool.get('ir.action.act_window')
        ActWizard = pool.get('ir.action.wizard')
        Menu = pool.get('ir.ui.menu')
        cat = self.catalog()

        # The party form: a tab with both balances and both lists
        form = Party.fields_view_get(view_type='form')
        page = form['arch'][form['arch'].index('id="credit_wallet"'):]
        page = page[:page.index('</page>')]
        for name in ['credit_balance', 'wallet_balance', 'credit_movements',
                'wallet_movements']:
            with self.subTest(field=name):
                self.assertIn(f'name="{name}"', page)
        fields = Party.fields_get(
            ['credit_balance', 'wallet_balance', 'credit_movements',
                'wallet_movements'])
        self.assertTrue(all(f['readonly'] for f in fields.values()), fields)

        # The movement lists: a tab per kind (and All), date and kind shown
        # and searchable, so they filter by kind and by date
        self.grant(cat.student, 50)
        self.grant(cat.student, -5, kind='adjust')
        self.topup(cat.student, '30')
        order = checkout(cat.student, cat.course_a, credit=20)
        Order.cancel([order])
        for Model, xml_id in [
                (Credit, 'act_credit_movement_form'),
                (Wallet, 'act_wallet_movement_form')]:
            with self.subTest(model=Model.__name__):
                action = ActWindow(ModelData.get_id('course_credit', xml_id))
                self.assertEqual(action.res_model, Model.__name__)
                domains = [
                    PYSONDecoder().decode(d.domain) if d.domain else []
                    for d in action.act_window_domains]
                kinds = [k for k, _ in Model.kind.selection]
                self.assertEqual(
                    domains, [[['kind', '=', k]] for k in kinds] + [[]])
                for kind in kinds:
                    self.assertEqual(
                        {m.kind for m in Model.search(
                                [['kind', '=', kind]])} - {kind}, set())
                tree = Model.fields_view_get(view_type='tree')
                for name in ['date', 'party', 'kind', 'order', 'note',
                        Model._amount_field, 'balance']:
                    self.assertIn(f'name="{name}"', tree['arch'])
                info = Model.fields_get(['date', 'kind'])
                self.assertTrue(info['date']['searchable'])
                self.assertTrue(info['kind']['searchable'])
                everything = Model.search([])
                self.assertTrue(everything)
                now = max(m.date for m in everything)
                self.assertEqual(
                    Model.search([('date', '<=', now)]), everything)
                self.assertEqual(
                    Model.search([('date', '>', now)]), [])
        self.assertEqual(
            [(m.kind, m.points) for m in Credit.search(
                    [('kind', 'in', ['spend', 'refund'])],
                    order=[('id', 'ASC')])],
            [('spend', -20), ('refund', 20)])

        # The adjustment wizard belongs to Course Administration
        admin = ModelData.get_id('course', 'group_course_admin')
        wizard = ActWizard(ModelData.get_id('course_credit', 'wizard_adjust'))
        self.assertEqual([g.id for g in wizard.groups], [admin])
        menu = Menu(ModelData.get_id('course_credit', 'menu_adjust'))
        self.assertEqual([g.id for g in menu.groups], [admin])
        menus = Menu.search([('parent', '=',
                    ModelData.get_id('course_credit', 'menu_credit'))])
        self.assertEqual(
            {(m.action.__name__, m.action.id) for m in menus}, {
                ('ir.action.act_window', ModelData.get_id(
                        'course_credit', 'act_credit_movement_form')),
                ('ir.action.act_window', ModelData.get_id(
                        'course_credit', 'act_wallet_movement_form')),
                ('ir.action.act_window', ModelData.get_id(
                        'course_credit', 'act_adjustment_form')),
                ('ir.action.wizard', wizard.id),
                })

    # ---- adjustment wizard --------------------------------------------------

    @with_transaction()
    def test_adjust_wizard(self):
        "Staff adjust points or money with a reason; who and when recorded"
        pool = Pool()
        Adjust = pool.get('course.credit.adjust', type='wizard')
        Adjustment = pool.get('course.credit.adjustment')
        Credit = pool.get('course.credit.movement')
        User = pool.get('res.user')
        cat = self.catalog()
        # The wizard adjusts the ledgers of the user's companies only
        user = User(Transaction().user)
        User.write([user], {'companies': [('add', [cat.company.id])]})

        def run(**values):
            session_id, _, _ = Adjust.create()
            start = {'party': cat.student.id, 'company': cat.company.id,
                'reason': "Goodwill", **values}
            Adjust.execute(session_id, {'start': start}, 'adjust_')
        for ledger, kind, field, value in [
                ('credit', 'grant', 'points', 120),
                ('credit', 'expire', 'points', 20),
                ('wallet', 'topup', 'amount', Decimal('50')),
                ('wallet', 'adjust', 'amount', Decimal('-20.00')),
                ]:
            run(ledger=ledger, kind=kind, **{field: value})
        self.assertEqual(self.balances(cat.student), (100, Decimal('30.00')))
        expired, = Credit.search([('kind', '=', 'expire')])
        self.assertEqual(
            (expired.points, expired.note, expired.user.id),
            (-20, "Goodwill", Transaction().user))
        adjustment = expired.adjustment
        self.assertEqual(
            (adjustment.kind, adjustment.points, adjustment.amount,
                adjustment.reason, adjustment.user.id, adjustment.party),
            ('expire', -20, None, "Goodwill", Transaction().user,
                cat.student))
        self.assertTrue(adjustment.date)
        self.assertEqual(Adjustment.search([], count=True), 4)
        self.assertEqual(Credit.audit(), [])

        for values, text in [
                ({'ledger': 'credit', 'kind': 'grant', 'points': 5,
                        'reason': " "}, "reason"),
                ({'ledger': 'credit', 'kind': 'topup', 'points': 5},
                    "does not fit"),
                ({'ledger': 'cash', 'kind': 'adjust', 'points': 5},
                    "does not exist"),
                ({'ledger': 'wallet', 'kind': 'topup',
                        'amount': Decimal('-5')}, "must be positive"),
                ({'ledger': 'credit', 'kind': 'grant', 'points': 2 ** 40},
                    '"points" is not valid'),
                ({'ledger': 'wallet', 'kind': 'topup', 'amount': 'NaN'},
                    '"amount" is not valid'),
                ({'ledger': 'credit', 'kind': 'grant', 'points': 5,
                        'company': create_company(name="Other").id},
                    'cannot adjust the ledgers of the company "Other"'),
                ]:
            with self.subTest(values=values):
                # the adjustment is written before its movement is refused
                self.assertRefusedCall(text, run, **values,
                    rolled_back={'course.credit.adjustment'})
        self.assertEqual(Adjustment.search([], count=True), 4)
        self.assertEqual(self.balances(cat.student), (100, Decimal('30.00')))

    # ---- audit --------------------------------------------------------------

    @with_transaction()
    def test_audit(self):
        "The audit agrees on a healthy ledger and finds a broken one"
        pool = Pool()
        Credit = pool.get('course.credit.movement')
        Wallet = pool.get('course.wallet.movement')
        Order = pool.get('course.order')
        cat = self.catalog()
        self.grant(cat.student, 300)
        self.topup(cat.student, '2000')
        paid = checkout(cat.student, cat.course_a, credit=100,
            pay_method='wallet')
        cancelled = checkout(cat.student, cat.course_b, credit=100)
        Order.cancel([cancelled])
        checkout(cat.student, cat.course_c)
        Order.refund([paid])
        self.assertEqual(Credit.audit(), [])

        # Break the balance by hand: a movement's points changed in SQL
        movement, = Credit.search([('kind', '=', 'grant')])
        table = Credit.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.update(
                [table.points], [500], where=table.id == movement.id))
        problems = Credit.audit()
        self.assertEqual(len(problems), 2, problems)
        self.assertIn("movements add up to 500", problems[0])
        self.assertIn("Student", problems[0])
        # and the grant is no longer what its adjustment recorded
        self.assertIn("is not what its adjustment", problems[1])

        # The wallet ledger is checked the same way
        wallet = Wallet.__table__()
        topup, = Wallet.search([('kind', '=', 'topup')])
        cursor.execute(*wallet.update(
                [wallet.amount], [Decimal('1999.99')],
                where=wallet.id == topup.id))
        problems = Credit.audit()
        self.assertEqual(len(problems), 4, problems)
        self.assertTrue(any(
                p.startswith("Wallet of") and "add up to 1999.99" in p
                for p in problems), problems)
        cursor.execute(*wallet.update(
                [wallet.amount], [Decimal('2000')],
                where=wallet.id == topup.id))

        # Break an order: a refund movement vanishes, a wallet pay too
        cursor.execute(*table.update(
                [table.points], [300], where=table.id == movement.id))
        cursor.execute(*table.delete(
                where=(table.order == cancelled.id)
                & (table.kind == 'refund')))
        cursor.execute(*wallet.delete(
                where=(wallet.order == paid.id) & (wallet.kind == 'refund')))
        problems = Credit.audit()
        self.assertTrue(any(
                cancelled.number in p
                and "100 points spent and 0 given back" in p
                for p in problems), problems)
        self.assertTrue(any(
                paid.number in p and "wallet movements" in p
                for p in problems), problems)

    @with_transaction()
    def test_audit_unexplained(self):
        "Movements no order or adjustment explains are reported"
        pool = Pool()
        Credit = pool.get('course.credit.movement')
        Wallet = pool.get('course.wallet.movement')
        Order = pool.get('course.order')
        cat = self.catalog()
        self.set_config(credit_earn_rate=Decimal('0.05'))
        self.grant(cat.student, 300)
        topup = self.topup(cat.student, '100')
        paid = checkout(cat.student, cat.course_b)
        Order.confirm_payment([paid])
        self.assertEqual(self.credit_movements(paid), [('earn', 250)])
        self.assertEqual(Credit.audit(), [])

        # An earn of +100000 on the paid order with no note, created by
        # server code: the ORM takes it (an earn with its order)...
        Credit.create([{'party': cat.student.id, 'kind': 'earn',
                    'points': 100000, 'order': paid.id}])
        problems = Credit.audit()
        self.assertEqual(len(problems), 2, problems)
        self.assertIn(
            f"Order {paid.number} (Paid): 2 movements of kind \"Earn\"",
            problems[0])
        self.assertIn(
            "100250 points earned where 250 are expected (500.00 paid "
            "× 0.05 × 10", problems[1])

        # A copy of the top-up, a grant of no adjustment and an earn of no
        # order, written in SQL
        def insert(Model, **values):
            table = Model.__table__()
            row = {'party': cat.student.id, 'company': cat.company.id,
                'date': paid.paid_at, 'user': 0, **values}
            cursor = Transaction().connection.cursor()
            cursor.execute(*table.insert(
                    [getattr(table, c) for c in row], [list(row.values())]))
        insert(Wallet, kind='topup', amount=Decimal(100), balance=Decimal(200),
            adjustment=topup.adjustment.id)
        insert(Credit, kind='grant', points=50, balance=100600)
        insert(Credit, kind='earn', points=7, balance=100607)
        insert(Credit, kind='grant', points=8, balance=100615,
            order=paid.id)
        problems = Credit.audit()
        self.assertEqual(len(problems), 6, problems)
        self.assertRegex(problems[0], r'^Credit points of "Student": '
            r'movement \d+ \(Grant, 50\) has no order nor adjustment')
        self.assertRegex(problems[1], r'movement \d+ \(Earn, 7\) has no '
            'order nor adjustment')
        self.assertRegex(problems[2], r'movement \d+ \(Grant, 8\) cannot '
            f'come from "{paid.number}"')
        self.assertRegex(problems[3], r'^Adjustment "Student: Top-up '
            r'100(\.00)?" explains 2 movements instead of one\.$')
        self.assertIn(f"Order {paid.number} (Paid): 2 movements", problems[4])

    @with_transaction()
    def test_audit_translated(self):
        "The audit speaks the user's language"
        pool = Pool()
        Credit = pool.get('course.credit.movement')
        Lang = pool.get('ir.lang')
        Order = pool.get('course.order')
        cat = self.catalog()
        self.grant(cat.student, 300)
        order = checkout(cat.student, cat.course_b, credit=100)
        Order.cancel([order])
        table = Credit.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.delete(
                where=(table.order == order.id) & (table.kind == 'refund')))
        chinese, = Lang.search([('code', '=', 'zh_CN')])
        Lang.load_translations([chinese])
        with Transaction().set_context(language='zh_CN'):
            problem, = Credit.audit()
        self.assertIn("花费 100 积分，退回 0，应退回 100", problem)


    @with_transaction()
    def test_texts_in_company_language(self):
        """The credit discount's description and the movements' notes are
        written in the company's language, not the caller's; a party with
        only ledger movements is a student"""
        Party = Pool().get('party.party')
        cat = self.catalog()
        set_company_language(cat.company, 'zh_CN')
        self.grant(cat.other_student, 10)
        self.assertEqual(
            Party.search([('is_student', '=', True)]), [cat.other_student])
        self.grant(cat.student, 300)
        with Transaction().set_context(language='en'):
            order = checkout(cat.student, cat.course_a, credit=100)
        discount, = order.discounts
        self.assertEqual(discount.description, "100 积分抵扣")
        self.assertEqual(
            discount.origin.note, f"订单 {order.number}")


del ModuleTestCase

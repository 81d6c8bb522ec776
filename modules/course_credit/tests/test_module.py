import datetime as dt
from decimal import Decimal
from unittest.mock import patch

from trytond.exceptions import UserError
from trytond.model.exceptions import ValidationError
from trytond.modules.company.tests import CompanyTestMixin, create_company
from trytond.modules.course.tests.tools import create_catalog
from trytond.modules.course_order.tests.tools import checkout
from trytond.pool import Pool
from trytond.pyson import PYSONDecoder
from trytond.tests.test_tryton import ModuleTestCase, with_transaction
from trytond.transaction import Transaction


class CourseCreditTestCase(CompanyTestMixin, ModuleTestCase):
    "Test Course Credit module"
    module = 'course_credit'

    # ---- helpers ----------------------------------------------------------

    def catalog(self):
        company = create_company()
        transaction = Transaction()
        transaction.context = dict(transaction.context, company=company.id)
        return create_catalog(company)

    def grant(self, party, points, kind='grant'):
        Credit = Pool().get('course.credit.movement')
        movement = Credit(party=party, kind=kind, points=points, note="test")
        movement.save()
        return movement

    def topup(self, party, amount):
        Wallet = Pool().get('course.wallet.movement')
        movement = Wallet(
            party=party, kind='topup', amount=Decimal(amount), note="test")
        movement.save()
        return movement

    def balances(self, party):
        Party = Pool().get('party.party')
        party = Party(party.id)
        return party.credit_balance, party.wallet_balance

    def credit_movements(self, order):
        Credit = Pool().get('course.credit.movement')
        return [(m.kind, m.points) for m in Credit.search(
                [('order', '=', order.id)], order=[('id', 'ASC')])]

    def wallet_movements(self, order):
        Wallet = Pool().get('course.wallet.movement')
        return [(m.kind, m.amount) for m in Wallet.search(
                [('order', '=', order.id)], order=[('id', 'ASC')])]

    def assertRefused(self, text, party, *items, rolled_back=(), **kwargs):
        """The checkout is refused with text and leaves nothing behind.

        The counts are compared before the rollback of the refused call;
        models in rolled_back are written before the refusal and compared
        after it (the caller's rollback is played with a savepoint).
        """
        pool = Pool()
        models = ['course.order', 'course.credit.movement',
            'course.wallet.movement']

        def counts(names):
            return {n: pool.get(n).search([], count=True) for n in names}
        before = counts(models)
        cursor = Transaction().connection.cursor()
        cursor.execute('SAVEPOINT refused')
        try:
            with self.assertRaises(UserError) as cm:
                checkout(party, *items, **kwargs)
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
        Configuration = Pool().get('course.configuration')
        config = Configuration(1)
        for name, value in values.items():
            setattr(config, name, value)
        config.save()

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
        for value in [-1, '10', 1.5, True]:
            self.assertRefused(
                "whole number", cat.student, cat.course_a, credit=value)
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
    def test_credit_ratio_rounding(self):
        "points / ratio is quantized half up"
        cat = self.catalog()
        self.set_config(credit_ratio=3)
        self.grant(cat.student, 300)
        order = checkout(cat.student, cat.course_b, credit=1)
        self.assertEqual(order.discount_amount, Decimal('0.33'))
        order2 = checkout(cat.student, cat.course_a, credit=2)
        self.assertEqual(order2.discount_amount, Decimal('0.67'))

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
        "Movements cannot be written or deleted"
        Credit = Pool().get('course.credit.movement')
        Wallet = Pool().get('course.wallet.movement')
        cat = self.catalog()
        credit = self.grant(cat.student, 10)
        wallet = self.topup(cat.student, '10')
        for Model, record, values in [
                (Credit, credit, {'points': 20}),
                (Wallet, wallet, {'note': "x"})]:
            with self.assertRaises(UserError):
                Model.write([record], values)
            with self.assertRaises(UserError):
                Model.delete([record])
        # a copy is a new movement, with its own running balance
        copy, = Credit.copy([credit])
        self.assertEqual((copy.points, copy.balance), (10, 20))

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
        movements = Credit.create([
                {'party': cat.student.id, 'kind': 'grant', 'points': 5},
                {'party': cat.other_student.id, 'kind': 'grant',
                    'points': 7},
                {'party': cat.student.id, 'kind': 'adjust', 'points': -2},
                ])
        self.assertEqual([m.balance for m in movements], [5, 7, 3])
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
            # other statements must not grow with the lines
            counts.append(len(
                    [s for s in statements if not s.startswith('INSERT')]))
        self.assertEqual(len(set(counts[2:])), 1, counts)

    # ---- staff UI -------------------------------------------------------------

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
                ('ir.action.wizard', wizard.id),
                })

    # ---- adjustment wizard --------------------------------------------------

    @with_transaction()
    def test_adjust_wizard(self):
        "Staff adjust points or money with a reason"
        pool = Pool()
        Adjust = pool.get('course.credit.adjust', type='wizard')
        cat = self.catalog()
        for ledger, kind, field, value in [
                ('credit', 'grant', 'points', 120),
                ('credit', 'expire', 'points', 20),
                ('wallet', 'topup', 'amount', Decimal('50.00')),
                ('wallet', 'adjust', 'amount', Decimal('-20.00')),
                ]:
            session_id, _, _ = Adjust.create()
            adjust = Adjust(session_id)
            adjust.start.party = cat.student
            adjust.start.company = cat.company
            adjust.start.ledger = ledger
            adjust.start.kind = kind
            adjust.start.points = adjust.start.amount = None
            setattr(adjust.start, field, value)
            adjust.start.reason = "Goodwill"
            self.assertEqual(adjust.transition_adjust_(), 'end')
        self.assertEqual(self.balances(cat.student), (100, Decimal('30.00')))
        Credit = pool.get('course.credit.movement')
        expired, = Credit.search([('kind', '=', 'expire')])
        self.assertEqual(
            (expired.points, expired.note, expired.user.id),
            (-20, "Goodwill", Transaction().user))
        adjust.start.reason = " "
        with self.assertRaises(UserError):
            adjust.transition_adjust_()
        adjust.start.reason = "Wrong kind"
        adjust.start.kind = 'grant'
        with self.assertRaises(UserError):
            adjust.transition_adjust_()

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
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("movements add up to 500", problems[0])
        self.assertIn("Student", problems[0])

        # The wallet ledger is checked the same way
        wallet = Wallet.__table__()
        topup, = Wallet.search([('kind', '=', 'topup')])
        cursor.execute(*wallet.update(
                [wallet.amount], [Decimal('1999.99')],
                where=wallet.id == topup.id))
        problems = Credit.audit()
        self.assertEqual(len(problems), 2, problems)
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
                cancelled.number in p and "100 points spent, 0 refunded" in p
                for p in problems), problems)
        self.assertTrue(any(
                paid.number in p and "wallet movements" in p
                for p in problems), problems)


del ModuleTestCase

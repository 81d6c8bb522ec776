"""The doors of course_credit over real JSON-RPC and XML-RPC: who may
change the ledgers, adjust them, spend a student's money at checkout and
audit, and what input each door refuses (a UserError, nothing written)."""
import unittest
from decimal import Decimal

from trytond.modules.course.tests.rpc import (
    BAD_AMOUNTS, BAD_IDS, BAD_INTS, RPCTestMixin)
from trytond.modules.course.tests.tools import create_catalog, run_transaction
from trytond.modules.course_credit.tests.tools import grant, topup
from trytond.modules.course_order.tests.tools import checkout
from trytond.pool import Pool
from trytond.transaction import Transaction

MODELS = [
    'course.order', 'course.credit.movement', 'course.wallet.movement',
    'course.credit.adjustment']


def create_data(company_id):
    "A student with points and money, a paid order that earned points"
    pool = Pool()
    Company = pool.get('company.company')
    Configuration = pool.get('course.configuration')
    Course = pool.get('course.course')
    Order = pool.get('course.order')
    Party = pool.get('party.party')
    company = Company(company_id)
    config = Configuration(1)
    config.credit_earn_rate = Decimal('0.05')
    config.save()
    cat = create_catalog(company)
    courses = Course.copy([cat.course_b] * 40, default={
            'published': True, 'credit': 100, 'price': Decimal(100)})
    granted = grant(cat.student, 10000)
    topped_up = topup(cat.student, '10000')
    paid = checkout(cat.student, cat.course_b)
    Order.confirm_payment([paid])
    earn, = paid.credit_movements
    # A second company the test users do not belong to
    other_company = Company(party=Party(name="Other School"),
        currency=company.currency)
    other_company.party.save()
    other_company.save()
    return {
        'student': cat.student.id, 'courses': [c.id for c in courses],
        'paid': paid.id, 'earn': earn.id, 'grant': granted.id,
        'topup': topped_up.id, 'adjustment': granted.adjustment.id,
        'topup_adjustment': topped_up.adjustment.id,
        'other_company': other_company.id,
        }


class CreditRPCTestCase(RPCTestMixin, unittest.TestCase):
    "course_credit over RPC"
    module = 'course_credit'

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.data = run_transaction(
            create_data, cls.company_id, context={'company': cls.company_id})
        cls.next_course = iter(cls.data['courses'])

    def snapshot(self):
        "The rows of the models and the student's balances, as root"
        def read():
            pool = Pool()
            Party = pool.get('party.party')
            student = Party(self.data['student'])
            counts = {n: pool.get(n).search([], count=True) for n in MODELS}
            return counts, student.credit_balance, student.wallet_balance
        return self.run_transaction(read)

    def assertRefusedRPC(self, call, *args, text=None):
        "call(*args) is a UserError and writes nothing"
        before = self.snapshot()
        error = self.assertRPCError(call, *args, text=text)
        self.assertEqual(self.snapshot(), before)
        return error

    def items(self):
        return [{'course': next(self.next_course)}]

    # ---- Part 1: the ledgers change only through the workflow ------------

    def test_external_changes_refused(self):
        "Create, write, delete, copy: refused for every group, admin too"
        data = self.data
        cases = [
            ('course.credit.movement', data['earn'], {
                    'party': data['student'], 'kind': 'earn',
                    'points': 100000, 'order': data['paid']},
                {'points': 100000}),
            ('course.wallet.movement', data['topup'], {
                    'party': data['student'], 'kind': 'topup',
                    'amount': Decimal(100),
                    'adjustment': data['topup_adjustment']},
                {'note': "changed"}),
            ('course.credit.adjustment', data['adjustment'], {
                    'party': data['student'], 'ledger': 'credit',
                    'kind': 'grant', 'points': 5, 'reason': "gift"},
                {'reason': "changed"}),
            ]
        for login in ['admin', 'manager', 'sales', 'nobody']:
            client = self.login(login)
            for model, record, values, changes in cases:
                with self.subTest(login=login, model=model):
                    # the groups that read the ledgers are told what to use
                    readers = login != 'nobody'
                    self.assertRefusedRPC(
                        client.model, model, 'create', [values],
                        text="Adjust Credit or Wallet" if readers else None)
                    self.assertRefusedRPC(
                        client.model, model, 'copy', [record], {},
                        text="cannot be copied" if readers else None)
                    self.assertRefusedRPC(
                        client.model, model, 'write', [record], changes)
                    self.assertRefusedRPC(
                        client.model, model, 'delete', [record])

    def test_external_changes_through_relations_refused(self):
        "Neither through the student's or the order's movement lists"
        data = self.data
        admin = self.login('admin')
        earn = {'kind': 'earn', 'points': 100000, 'order': data['paid']}
        self.assertRefusedRPC(
            admin.model, 'party.party', 'write', [data['student']],
            {'credit_movements': [('create', [earn])]},
            text="Adjust Credit or Wallet")
        self.assertRefusedRPC(
            admin.model, 'party.party', 'write', [data['student']],
            {'credit_movements': [('delete', [data['earn']])]})
        self.assertRefusedRPC(
            admin.model, 'course.order', 'write', [data['paid']],
            {'credit_earn_rate': Decimal(1)},
            text="cannot be changed")

    # ---- the adjust wizard ---------------------------------------------

    def start(self, **values):
        return {'start': {
                'party': self.data['student'], 'company': self.company_id,
                'ledger': 'credit', 'kind': 'grant', 'points': 7,
                'reason': "Goodwill", **values}}

    def test_adjust_wizard_rights(self):
        "Course Administration adjusts, with who and why; others cannot"
        manager = self.login('manager')
        manager.execute_wizard(
            'course.credit.adjust', self.start(), 'adjust_')
        manager.execute_wizard(
            'course.credit.adjust',
            self.start(ledger='wallet', kind='topup', points=None,
                amount=Decimal('12.50')), 'adjust_')

        def recorded():
            Adjustment = Pool().get('course.credit.adjustment')
            return [(a.kind, a.value, a.user.login, a.reason,
                    [(m.kind, m.value) for m in
                        a.party.credit_movements + a.party.wallet_movements
                        if m.adjustment == a])
                for a in Adjustment.search(
                    [('user.login', '=', 'manager')],
                    order=[('id', 'ASC')])]
        self.assertEqual(self.run_transaction(recorded), [
                ('grant', 7, 'manager', "Goodwill", [('grant', 7)]),
                ('topup', Decimal('12.50'), 'manager', "Goodwill",
                    [('topup', Decimal('12.50'))]),
                ])
        for login in ['sales', 'nobody']:
            with self.subTest(login=login):
                client = self.login(login)
                self.assertRefusedRPC(
                    client.execute_wizard, 'course.credit.adjust',
                    self.start(), 'adjust_')

    def test_adjust_wizard_bad_values(self):
        "Each input of the wizard × bad values: a UserError, nothing written"
        manager = self.login('manager')
        wallet = {'ledger': 'wallet', 'kind': 'topup', 'points': None}
        table = [
            ('party', {}, BAD_IDS),
            ('company', {}, BAD_IDS + [self.data['other_company']]),
            ('ledger', {}, [None, 'cash', ['credit'], 1]),
            ('kind', {}, [None, 'x', ['grant'], 'topup']),
            ('points', {}, BAD_INTS + [0]),
            ('amount', wallet, BAD_AMOUNTS + ['0']),
            ('reason', {}, [None, '', '   ', 5, ['x'], 'x' * 2000]),
            ]
        for field, base, values in table:
            for value in values:
                with self.subTest(field=field, value=value):
                    self.assertRefusedRPC(
                        manager.execute_wizard, 'course.credit.adjust',
                        self.start(**{**base, field: value}), 'adjust_')
        for start in [None, 'x', [1]]:
            with self.subTest(start=start):
                self.assertRefusedRPC(
                    manager.execute_wizard, 'course.credit.adjust',
                    {'start': start}, 'adjust_')

    # ---- Part 2: spending a student's money at checkout ----------------

    def test_checkout_credit_rights(self):
        "Sales may check out but not spend points or the wallet"
        student = self.data['student']
        for protocol in ['json', 'xml']:
            with self.subTest(protocol=protocol):
                sales = self.login('sales', protocol)
                for method, options in [
                        ('manual', {'credit': 10}), ('wallet', {})]:
                    self.assertRefusedRPC(
                        sales.model, 'course.order', 'checkout', student,
                        self.items(), method, options,
                        text='"Course Administration" may spend')
                self.assertTrue(sales.model(
                        'course.order', 'checkout', student, self.items(),
                        'manual', {}))

                manager = self.login('manager', protocol)
                before = self.snapshot()
                manager.model(
                    'course.order', 'checkout', student, self.items(),
                    'manual', {'credit': 10})
                order = manager.model(
                    'course.order', 'checkout', student, self.items(),
                    'wallet', {})
                self.assertEqual(manager.model(
                        'course.order', 'read', [order], ['state'])[0][
                        'state'], 'paid')
                _, credit, wallet = self.snapshot()
                # 10 points spent and 5 earned by the wallet order (5 %)
                self.assertEqual(credit, before[1] - 10 + 50)
                self.assertEqual(wallet, before[2] - Decimal(100))

    def test_checkout_credit_bad_values(self):
        "The credit option × bad values: a UserError, nothing written"
        manager = self.login('manager')
        for value in BAD_INTS:
            with self.subTest(value=value):
                self.assertRefusedRPC(
                    manager.model, 'course.order', 'checkout',
                    self.data['student'], self.items(), 'manual',
                    {'credit': value}, text='"credit" is not valid')

    # ---- Part 2: the audit ----------------------------------------------

    def test_audit_rights_and_companies(self):
        """Course Administration only, and only the user's companies"""
        data = self.data
        for login in ['sales', 'nobody']:
            with self.subTest(login=login):
                self.assertRPCError(
                    self.login(login).model, 'course.credit.movement',
                    'audit', text="may audit")

        def insert(company, name):
            "An earn no order explains, for a new student of company"
            pool = Pool()
            Credit = pool.get('course.credit.movement')
            Party = pool.get('party.party')
            party = Party(name=name)
            party.save()
            table = Credit.__table__()
            cursor = Transaction().connection.cursor()
            cursor.execute(*table.insert(
                    [table.party, table.company, table.kind, table.points,
                        table.balance, table.date, table.user],
                    [[party.id, company, 'earn', 500, 500,
                            Credit.default_date(), 0]]))
            return party.id

        def remove(parties):
            pool = Pool()
            Credit = pool.get('course.credit.movement')
            Party = pool.get('party.party')
            table = Credit.__table__()
            cursor = Transaction().connection.cursor()
            cursor.execute(*table.delete(where=table.party.in_(parties)))
            Party.delete(Party.browse(parties))
        parties = [
            self.run_transaction(insert, self.company_id, "Own Student"),
            self.run_transaction(
                insert, data['other_company'], "Secret Student")]
        try:
            problems = self.login('manager').model(
                'course.credit.movement', 'audit')
            self.assertTrue(any('"Own Student"' in p and "no order nor "
                    "adjustment" in p for p in problems), problems)
            self.assertFalse(
                any("Secret Student" in p for p in problems), problems)
            # Server code audits every company
            everything = self.run_transaction(
                lambda: Pool().get('course.credit.movement').audit())
            self.assertTrue(
                any("Secret Student" in p for p in everything), everything)
        finally:
            self.run_transaction(remove, parties)


del RPCTestMixin

"Races on the credit and wallet ledgers (PostgreSQL only)"
import unittest
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.modules.course.tests.tools import (
    ConcurrencyTestMixin, create_catalog)
from trytond.modules.course_credit.tests.tools import adjust, grant, topup
from trytond.pool import Pool


class CreditConcurrencyTestCase(ConcurrencyTestMixin, unittest.TestCase):
    "Parallel transactions on the ledgers"
    module = 'course_credit'

    def new_catalog(self, count=20, price='100', credit=100, points=0,
            wallet='0'):
        """Commit a student with points and wallet money, and count courses
        of price each with a credit cap"""
        def create():
            pool = Pool()
            Company = pool.get('company.company')
            Course = pool.get('course.course')
            cat = create_catalog(Company(self.company_id))
            courses = Course.copy([cat.course_b] * count, default={
                    'price': Decimal(price), 'credit': credit,
                    'published': True})
            if points:
                grant(cat.student, points)
            if Decimal(wallet):
                topup(cat.student, wallet)
            return {
                'student': cat.student.id,
                'courses': [c.id for c in courses],
                }
        return self.run_transaction(create)

    def balances(self, student):
        def read():
            Party = Pool().get('party.party')
            party = Party(student)
            return party.credit_balance, party.wallet_balance
        return self.run_transaction(read)

    def audit(self):
        return self.run_transaction(
            lambda: Pool().get('course.credit.movement').audit())

    def assertWins(self, results, count):
        wins = [r for kind, r in results if kind == 'ok']
        self.assertEqual(len(wins), count, results)
        for kind, result in results:
            if kind == 'error':
                # refused for the balance, or gave up waiting for the lock
                self.assertIsInstance(result, Exception)
        return wins

    def test_twenty_checkouts_spend_credit(self):
        "20 checkouts of 100 points from 300: exactly 3, balance 0"
        data = self.new_catalog(points=300)

        def buy(i):
            Order = Pool().get('course.order')
            order = Order.checkout(
                data['student'], [{'course': data['courses'][i]}],
                'manual', {'credit': 100})
            return order.id
        results = self.in_parallel(20, buy)
        self.assertWins(results, 3)
        self.assertTrue(any(
                isinstance(e, UserError) and 'at most 0 credit points'
                in e.message for k, e in results if k == 'error'), results)
        self.assertEqual(self.balances(data['student'])[0], 0)

        def spent():
            Credit = Pool().get('course.credit.movement')
            return Credit.search(
                [('party', '=', data['student']), ('kind', '=', 'spend')],
                count=True)
        self.assertEqual(self.run_transaction(spent), 3)
        self.assertEqual(self.audit(), [])

    def test_twenty_wallet_payments(self):
        "20 wallet checkouts of 100.00 from 300.00: exactly 3, balance 0"
        data = self.new_catalog(wallet='300')

        def buy(i):
            Order = Pool().get('course.order')
            order = Order.checkout(
                data['student'], [{'course': data['courses'][i]}],
                'wallet')
            return order.state
        results = self.in_parallel(20, buy)
        wins = self.assertWins(results, 3)
        self.assertEqual(set(wins), {'paid'})
        self.assertEqual(
            self.balances(data['student'])[1], Decimal('0.00'))

        def orders():
            Order = Pool().get('course.order')
            return Order.search(
                [('party', '=', data['student'])], count=True)
        # the refused checkouts left no order behind
        self.assertEqual(self.run_transaction(orders), 3)
        self.assertEqual(self.audit(), [])

    def test_twenty_adjustments(self):
        "20 staff adjustments of -100 from 300 outside checkout: exactly 3"
        data = self.new_catalog(count=0, points=300, wallet='300')

        def take(i):
            Party = Pool().get('party.party')
            student = Party(data['student'])
            adjust(student, 'adjust', -100 if i % 2 else Decimal(-100),
                reason="race")
            return i % 2
        results = self.in_parallel(20, take)
        wins = [r for kind, r in results if kind == 'ok']
        self.assertEqual(sorted(wins), [0, 0, 0, 1, 1, 1], results)
        self.assertEqual(
            self.balances(data['student']), (0, Decimal('0.00')))
        self.assertEqual(self.audit(), [])

    def test_cancel_race_refunds_once(self):
        "Cancel and expiry racing on an order with points: one refund"
        data = self.new_catalog(count=1, points=100)

        def create():
            import datetime as dt
            Order = Pool().get('course.order')
            order = Order.checkout(
                data['student'], [{'course': data['courses'][0]}],
                'manual', {'credit': 100})
            Order.write([order], {'pay_deadline':
                    dt.datetime.now() - dt.timedelta(seconds=1)})
            return order.id
        order_id = self.run_transaction(create)

        def act(i):
            Order = Pool().get('course.order')
            if i % 2:
                Order.cancel([Order(order_id)])
            else:
                Order.expire_overdue()
        self.in_parallel(6, act)

        def refunds():
            Credit = Pool().get('course.credit.movement')
            return Credit.search(
                [('order', '=', order_id), ('kind', '=', 'refund')],
                count=True)
        self.assertEqual(self.run_transaction(refunds), 1)
        self.assertEqual(self.balances(data['student'])[0], 100)
        self.assertEqual(self.audit(), [])

    def test_stale_snapshot_cannot_spend(self):
        """A transaction whose snapshot predates another one's movement
        cannot record a movement on the old balance, even holding the lock"""
        import threading

        from trytond import backend
        from trytond.modules.course.tests.tools import run_transaction
        from trytond.tests.test_tryton import DB_NAME
        from trytond.transaction import Transaction
        data = self.new_catalog(count=0, points=100)
        student = data['student']

        def spend_all():
            Party = Pool().get('party.party')
            adjust(Party(student), 'adjust', -100, reason="first")
        with Transaction().start(
                DB_NAME, 0, context=self.context) as transaction:
            Credit = Pool().get('course.credit.movement')
            # The snapshot of this transaction is taken here
            self.assertEqual(Credit.get_balances([student])[student], 100)
            # Another transaction spends everything and commits
            thread = threading.Thread(
                target=run_transaction, args=(spend_all,),
                kwargs={'context': self.context})
            thread.start()
            thread.join()
            # The lock is free now: take it as a restarted call would, and
            # try to spend the points this snapshot still sees
            with self.assertRaises(backend.DatabaseOperationalError):
                cursor = transaction.connection.cursor()
                cursor.execute(
                    'SELECT id FROM party_party WHERE id = %s '
                    'FOR UPDATE NOWAIT', (student,))
                transaction._locked_records['party_party'].add(student)
                Party = Pool().get('party.party')
                adjust(Party(student), 'adjust', -100, reason="stale")
            transaction.rollback()
        self.assertEqual(self.balances(student)[0], 0)
        self.assertEqual(self.audit(), [])


del ConcurrencyTestMixin

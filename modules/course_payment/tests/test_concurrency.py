"""Races on payments with real parallel transactions (PostgreSQL only): a
notify racing the expiry job, concurrent refunds of one order"""
import datetime as dt
import unittest
from decimal import Decimal
from unittest.mock import patch

from trytond import backend
from trytond.exceptions import UserError
from trytond.modules.course.tests.tools import (
    ConcurrencyTestMixin, create_catalog)
from trytond.pool import Pool

from .tools import FakeProvider


class PaymentConcurrencyTestCase(ConcurrencyTestMixin, unittest.TestCase):
    "Parallel transactions on payments"
    module = 'course_payment'

    def setUp(self):
        super().setUp()
        self.fake = FakeProvider()
        Order, Payment = self.run_transaction(lambda: (
                Pool().get('course.order'), Pool().get('course.payment')))
        selection = [s for s in Order.pay_method.selection if s[0] != 'fake']
        for patcher in [
                patch.object(Order.pay_method, 'selection',
                    selection + [('fake', "Fake")])] + [
                patch.object(Payment, name, hook, create=True)
                for name, hook in self.fake.hooks().items()]:
            patcher.start()
            self.addCleanup(patcher.stop)

    def new_order(self, *courses, paid=False, overdue=False):
        "Commit an order of a new catalog's student, with a payment started"
        def create():
            pool = Pool()
            Company = pool.get('company.company')
            Order = pool.get('course.order')
            Payment = pool.get('course.payment')
            cat = create_catalog(Company(self.company_id))
            order = Order.checkout(cat.student.id, [
                    {'course': getattr(cat, f'course_{c}').id}
                    for c in courses], 'fake', {})
            Payment.start(order)
            if paid:
                Payment.succeed(
                    order, 'fake', order.payable_amount, f'P{order.number}')
            if overdue:
                Order.write([order], {
                        'pay_deadline': dt.datetime.now()
                        - dt.timedelta(seconds=1)})
            return order.id
        return self.run_transaction(create)

    def test_succeed_restarts_once(self):
        """A confirmation locks the order and its student in one restart of
        the call, not one restart each"""
        order_id = self.new_order('b')
        runs = []

        def pay():
            pool = Pool()
            runs.append(1)
            payment = pool.get('course.payment').succeed(
                pool.get('course.order')(order_id), 'fake', Decimal('500'),
                f'R{order_id}')
            return payment.state, payment.order.state
        self.assertEqual(self.run_transaction(pay), ('succeeded', 'paid'))
        self.assertEqual(len(runs), 2)

    def test_notify_races_expiry(self):
        """A notify and the expiry job on one order: paid, or expired with
        the payment late and refunded; never both"""
        outcomes = set()
        for attempt in range(4):
            order_id = self.new_order('b', overdue=True)

            def act(i):
                pool = Pool()
                Order = pool.get('course.order')
                Payment = pool.get('course.payment')
                if i == 0:
                    Payment.succeed(
                        Order(order_id), 'fake', Decimal('500'), f'N{order_id}')
                    return 'notify'
                return [o.id for o in Order.expire_overdue()]
            results = self.in_parallel(2, act)
            for kind, result in results:
                if kind == 'error':
                    self.assertIsInstance(result, (
                            UserError, backend.DatabaseOperationalError),
                        results)

            def final():
                pool = Pool()
                Order = pool.get('course.order')
                Payment = pool.get('course.payment')
                order = Order(order_id)
                payments = Payment.search([('order', '=', order_id)])
                return (order.state, len(order.enrollments),
                    [(p.state, p.late) for p in payments],
                    [(r.state, r.amount) for r in order.refunds])
            state, enrollments, payments, refunds = self.run_transaction(
                final)
            outcomes.add(state)
            self.assertEqual(len(payments), 1, payments)
            if state == 'paid':
                self.assertEqual(enrollments, 1)
                self.assertEqual(payments, [('succeeded', False)])
                self.assertEqual(refunds, [])
            elif state == 'expired' and payments[0][1]:
                # the notify came after: late, refunded in full
                self.assertEqual(enrollments, 0)
                self.assertEqual(payments, [('refunded', True)])
                self.assertEqual(refunds, [('succeeded', Decimal('500'))])
            else:
                # the notify lost on the lock after its retries: the order
                # is expired, the payment only closed (the provider's next
                # notify makes it late and refunds it)
                self.assertEqual(state, 'expired')
                self.assertEqual(enrollments, 0)
                self.assertEqual(payments, [('cancelled', False)])
                self.assertTrue(any(kind == 'error' for kind, _ in results))
        self.assertTrue(outcomes <= {'paid', 'expired'}, outcomes)

    def test_two_refunds_at_once(self):
        "Concurrent refunds of one order never give back more than paid"
        order_id = self.new_order('a', 'b', paid=True)

        def refund(i):
            pool = Pool()
            Order = pool.get('course.order')
            Refund = pool.get('course.payment.refund')
            order = Order(order_id)
            lines = None if i % 2 else [order.lines[0]]
            return Refund.refund_order(order, lines, reason=f"r{i}").id
        results = self.in_parallel(4, refund)
        wins = [r for kind, r in results if kind == 'ok']
        self.assertTrue(wins, results)
        for kind, result in results:
            if kind == 'error':
                self.assertIsInstance(result, (
                        UserError, backend.DatabaseOperationalError), results)

        def final():
            pool = Pool()
            Order = pool.get('course.order')
            order = Order(order_id)
            refunds = [r for r in order.refunds if r.state == 'succeeded']
            lines = [l.id for r in refunds for l in r.lines]
            return (order.payable_amount, sum(r.amount for r in refunds),
                lines, order.state)
        paid, refunded, lines, state = self.run_transaction(final)
        self.assertLessEqual(refunded, paid)
        self.assertEqual(len(lines), len(set(lines)))
        self.assertEqual(self.fake.count('refund'), len(wins))


del ConcurrencyTestMixin

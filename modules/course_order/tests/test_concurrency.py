"Races on orders, with real parallel transactions (PostgreSQL only)"
import datetime as dt
import unittest
from collections import Counter

from trytond import backend
from trytond.exceptions import UserError
from trytond.modules.course.tests.tools import (
    ConcurrencyTestMixin, create_catalog)
from trytond.pool import Pool


class OrderConcurrencyTestCase(ConcurrencyTestMixin, unittest.TestCase):
    "Parallel transactions on orders"
    module = 'course_order'

    def new_catalog(self):
        "Commit a catalog of its own for one test"
        def create():
            Company = Pool().get('company.company')
            cat = create_catalog(Company(self.company_id))
            return {
                'student': cat.student.id,
                'courses': [cat.course_a.id, cat.course_b.id],
                }
        return self.run_transaction(create)

    def test_ten_checkouts_one_order(self):
        "10 parallel checkouts of one course by one student: one order"
        data = self.new_catalog()

        def buy(i):
            Order = Pool().get('course.order')
            order = Order.checkout(
                data['student'], [{'course': data['courses'][0]}])
            return order.id
        results = self.in_parallel(10, buy)
        wins = [r for kind, r in results if kind == 'ok']
        errors = [r for kind, r in results if kind == 'error']
        self.assertEqual(len(wins), 1, results)
        for error in errors:
            # A loser either saw the winner's order or, after the retries,
            # met the lock still held (the storefront's "busy, try again")
            if isinstance(error, UserError):
                self.assertIn('unpaid order', error.message)
            else:
                self.assertIsInstance(
                    error, backend.DatabaseOperationalError, results)
        self.assertTrue(any(
                isinstance(e, UserError) and 'unpaid order' in e.message
                for e in errors), errors)

        def count():
            Order = Pool().get('course.order')
            return Order.search([
                    ('party', '=', data['student']),
                    ('state', '=', 'unpaid')], count=True)
        self.assertEqual(self.run_transaction(count), 1)

    def test_confirm_cancel_expire_race(self):
        "Confirm, cancel and expire racing on one order: one transition"
        for attempt in range(3):
            data = self.new_catalog()

            def create():
                Order = Pool().get('course.order')
                order = Order.checkout(
                    data['student'], [{'course': data['courses'][1]}])
                Order.write([order], {'pay_deadline':
                        dt.datetime.now() - dt.timedelta(seconds=1)})
                return order.id
            order_id = self.run_transaction(create)

            def act(i):
                Order = Pool().get('course.order')
                order = Order(order_id)
                if i % 3 == 0:
                    Order.confirm_payment([order])
                    return 'paid'
                elif i % 3 == 1:
                    Order.cancel([order])
                    return 'cancelled'
                else:
                    return 'expired' if Order.expire_overdue() else None
            results = self.in_parallel(6, act)

            def final():
                Order = Pool().get('course.order')
                order = Order(order_id)
                return order.state, len(order.enrollments), [
                    log.event for log in Pool().get('ir.model.log').search(
                        [('resource', '=', str(order)),
                            ('event', '=', 'transition')])]
            state, enrollments, logs = self.run_transaction(final)
            winners = Counter(
                r for kind, r in results if kind == 'ok' and r)
            self.assertIn(state, {'paid', 'cancelled', 'expired'})
            # Confirming twice is idempotent; anything else happened once
            if state == 'paid':
                self.assertEqual(set(winners), {'paid'}, results)
                self.assertEqual(enrollments, 1)
            else:
                self.assertEqual(winners, Counter({state: 1}), results)
                self.assertEqual(enrollments, 0)
            self.assertEqual(len(logs), 1, logs)
            for kind, result in results:
                if kind == 'error':
                    self.assertIsInstance(result, UserError, results)


del ConcurrencyTestMixin

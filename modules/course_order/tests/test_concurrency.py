"Races on orders, with real parallel transactions (PostgreSQL only)"
import datetime as dt
import threading
import time
import unittest
from collections import Counter
from unittest.mock import patch

from trytond import backend
from trytond.exceptions import UserError
from trytond.modules.course.tests.rpc import RPCError, RPCTestMixin
from trytond.modules.course.tests.tools import (
    ConcurrencyTestMixin, create_catalog)
from trytond.modules.course.tools import lock_rows
from trytond.modules.course_order.tests.tools import (
    create_overdue_orders, patch_release_locking_students)
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

    def overdue(self, count, students):
        "Commit count overdue orders, the first students' first"
        def create():
            Company = Pool().get('company.company')
            ids, parties = create_overdue_orders(
                Company(self.company_id), count, students)
            # Course C of the catalog: the students have no order of it
            Course = Pool().get('course.course')
            other, = Course.search([('name', '=', 'C')], limit=1)
            return ids, parties, other.id
        return self.run_transaction(create)

    def test_checkout_beside_expiry_not_blocked(self):
        """A student whose orders the job expired checks out while the job
        goes on: not blocked by it (its batch is committed)"""
        ids, parties, course = self.overdue(60, students=6)
        Order = self.run_transaction(lambda: Pool().get('course.order'))
        calls = []
        later_batch = threading.Event()

        def slow_release(cls, orders):
            # Each batch takes a while; the student of batch 1 checks out
            # while batch 3 runs
            locking_release(cls, orders)
            if len(calls) >= 3:
                later_batch.set()
            time.sleep(0.3)

        def job():
            Order = Pool().get('course.order')
            return [o.id for o in Order.expire_overdue(10)]

        def buy():
            Order = Pool().get('course.order')
            return Order.checkout(
                parties[0], [{'course': course}], 'manual', {}).id
        result = {}

        def run_job():
            start = time.monotonic()
            result['expired'] = self.run_transaction(job)
            result['job'] = time.monotonic() - start
        with patch_release_locking_students(Order, calls):
            locking_release = Order.release.__func__
            with patch.object(Order, 'release', classmethod(slow_release)):
                thread = threading.Thread(target=run_job)
                thread.start()
                self.assertTrue(later_batch.wait(60))
                start = time.monotonic()
                order = self.run_transaction(buy)
                latency = time.monotonic() - start
                thread.join()
        self.assertTrue(order)
        self.assertEqual(sorted(result['expired']), ids)
        # The job still had batches to go when the checkout was done
        self.assertLess(latency, 1.5, result)
        self.assertLess(latency, result['job'] / 2, result)

    def test_expiry_skips_student_held_by_checkout(self):
        """The job does not wait for a student a live checkout holds: it
        leaves that student's orders for the next run"""
        ids, parties, _ = self.overdue(6, students=3)
        held = parties[2]
        locked, done = threading.Event(), threading.Event()

        def hold():
            Party = Pool().get('party.party')
            lock_rows(Party, [Party(held)])
            locked.set()
            done.wait(5)
        holder = threading.Thread(target=self.run_transaction, args=(hold,))
        holder.start()
        self.assertTrue(locked.wait(30))
        Order = self.run_transaction(lambda: Pool().get('course.order'))

        def job():
            Order = Pool().get('course.order')
            return sorted(o.id for o in Order.expire_overdue())

        def states():
            Order = Pool().get('course.order')
            return [o.state for o in Order.browse(ids)]
        try:
            with patch_release_locking_students(Order):
                start = time.monotonic()
                expired = self.run_transaction(job)
                duration = time.monotonic() - start
                held_states = self.run_transaction(states)
        finally:
            done.set()
            holder.join()
        self.assertEqual(expired, ids[:2] + ids[4:])
        self.assertEqual(held_states[2:4], ['unpaid', 'unpaid'])
        self.assertLess(duration, 3)
        # The next run, once the checkout ended, expires them
        with patch_release_locking_students(Order):
            self.assertEqual(self.run_transaction(job), ids[2:4])




class OrderButtonRaceRPCTestCase(RPCTestMixin, ConcurrencyTestMixin,
        unittest.TestCase):
    "Two users pressing the same button at once, over real RPC"
    module = 'course_order'

    def test_confirm_payment_race_says_paid(self):
        """Two users confirm the payment of one order at once: one confirms
        it, the other is told in Chinese that the order is paid"""
        chinese = self.login_chinese('sales_zh', ['course.group_course_sales'])
        english = self.login('sales')
        for attempt in range(3):
            data = CourseOrderRaceData(self)
            order_id, number = data.order()
            barrier = threading.Barrier(2)
            results = {}

            def press(name, client):
                barrier.wait()
                try:
                    client.model('course.order', 'confirm_payment', [order_id])
                    results[name] = 'ok'
                except RPCError as error:
                    results[name] = error
            threads = [threading.Thread(target=press, args=args)
                for args in [('zh', chinese), ('en', english)]]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            with self.subTest(attempt=attempt):
                self.assertEqual(
                    sorted(r == 'ok' for r in results.values()),
                    [False, True], results)
                name, error = [(n, r) for n, r in results.items()
                    if r != 'ok'][0]
                text = (f'订单“{number}”已支付' if name == 'zh'
                    else f'Order "{number}" is Paid')
                self.assertIn(text, error.message)
                self.assertEqual(data.state(order_id), 'paid')


class CourseOrderRaceData:
    "An unpaid order of a new student, committed; its state"

    def __init__(self, test):
        self.test = test

    def order(self):
        def create():
            pool = Pool()
            Company = pool.get('company.company')
            Order = pool.get('course.order')
            cat = create_catalog(Company(self.test.company_id))
            order = Order.checkout(
                cat.student.id, [{'course': cat.course_a.id}])
            return order.id, order.number
        return self.test.run_transaction(create)

    def state(self, order_id):
        def read():
            return Pool().get('course.order')(order_id).state
        return self.test.run_transaction(read)


del ConcurrencyTestMixin, RPCTestMixin

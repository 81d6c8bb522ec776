"""The expiry job with committed data: batches committed on their own,
payment answers, failures of one order (SQLite and PostgreSQL)"""
import datetime as dt
import unittest
from collections import Counter
from unittest.mock import patch

from trytond.modules.company.tests import create_company
from trytond.modules.course.tests.tools import (
    ConcurrencyTestMixin, run_transaction)
from trytond.modules.course.tools import now
from trytond.modules.course_order.tests.tools import (
    StatementCounter, create_overdue_orders, patch_release_locking_students)
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME

LOGGER = 'trytond.modules.course_order.order'


class Crash(BaseException):
    "The process stops in the middle of the job (not an error it handles)"


class OrderExpiryTestCase(ConcurrencyTestMixin, unittest.TestCase):
    "The expiry job"
    module = 'course_order'
    postgresql_only = False

    def setUp(self):
        super().setUp()
        # A company per test: the job of one test does not see the orders
        # other tests left
        self.test_company = run_transaction(lambda: create_company().id)
        self.Order = self.run_transaction(lambda: Pool().get('course.order'))

    @property
    def context(self):
        return {'company': self.test_company}

    def overdue(self, count, students=1):
        """Commit count overdue unpaid orders of one course each, shared
        among students; return (order ids, party id of each order)"""
        def create():
            Company = Pool().get('company.company')
            return create_overdue_orders(
                Company(self.test_company), count, students)
        return self.run_transaction(create)

    def expire(self, batch_size=500):
        "Run the job as the cron does; return the ids it expired"
        def job():
            Order = Pool().get('course.order')
            return [o.id for o in Order.expire_overdue(batch_size)]
        return self.run_transaction(job)

    def orders(self, ids, *names):
        "{id: (state, *names)} read in a new transaction"
        def read():
            Order = Pool().get('course.order')
            return {
                o.id: (o.state,) + tuple(getattr(o, n) for n in names)
                for o in Order.browse(ids)}
        return self.run_transaction(read)

    def states(self, ids):
        return [s for s, in self.orders(ids).values()]

    def transition_logs(self, ids):
        "[(order id, target, user, create_uid)] of the orders' transitions"
        def read():
            Log = Pool().get('ir.model.log')
            logs = Log.search([
                    ('resource', 'in', [f'course.order,{i}' for i in ids]),
                    ('event', '=', 'transition'),
                    ], order=[('id', 'ASC')])
            return [
                (int(l['resource'].split(',')[1]), l['target'], l['user'],
                    l['create_uid'])
                for l in Log.read(
                    [l.id for l in logs],
                    ['resource', 'target', 'user', 'create_uid'])]
        return self.run_transaction(read)

    def set_query_hook(self, hook):
        "Give the manual method a payment query hook for the test"
        patcher = patch.object(
            self.Order, '_payment_query_manual', classmethod(hook),
            create=True)
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_expire_by_cron(self):
        "The cron job expires unpaid orders past their deadline only"
        late, (student, *_) = self.overdue(2)

        def others():
            Order = Pool().get('course.order')
            Course = Pool().get('course.course')
            courses = Course.search(
                [('company', '=', self.test_company)], limit=2)
            on_time = Order.checkout(
                student, [{'course': courses[0].id}], 'manual', {})
            paid = Order.checkout(
                student, [{'course': courses[1].id}], 'manual', {})
            Order.confirm_payment([paid])
            Order.write([paid], {
                    'pay_deadline': now() - dt.timedelta(minutes=1)})
            return on_time.id, paid.id
        on_time, paid = self.run_transaction(others)

        def cron():
            Cron = Pool().get('ir.cron')
            cron, = Cron.search(
                [('method', '=', 'course.order|expire_overdue')])
            return cron.interval_type, cron.interval_number
        self.assertEqual(self.run_transaction(cron), ('minutes', 1))
        Cron = Pool(DB_NAME).get('ir.cron')
        Cron.run(DB_NAME)
        orders = self.orders(late + [on_time, paid], 'cancelled_at')
        self.assertEqual(
            [s for s, _ in orders.values()],
            ['expired', 'expired', 'unpaid', 'paid'])
        self.assertTrue(all(orders[i][1] for i in late))
        self.assertEqual(self.expire(), [])

    def test_transition_log_as_trytond_writes_it(self):
        "Each expired order has one transition log, written as trytond does"
        expired, _ = self.overdue(2)
        cancelled, _ = self.overdue(1)

        def cancel():
            Order = Pool().get('course.order')
            Order.cancel(Order.browse(cancelled))
        self.run_transaction(cancel)
        self.assertEqual(sorted(self.expire(batch_size=1)), expired)
        logs = self.transition_logs(expired + cancelled)
        self.assertEqual(sorted(logs), [
                (expired[0], 'state:expired', 0, 0),
                (expired[1], 'state:expired', 0, 0),
                (cancelled[0], 'state:cancelled', 0, 0),
                ])

        def read():
            Log = Pool().get('ir.model.log')
            return {
                l.resource.id: (
                    l.event, l.action, l.create_date is not None,
                    l.write_date, l.write_uid)
                for l in Log.search([
                        ('resource', 'in', [
                                f'course.order,{i}'
                                for i in [expired[0], cancelled[0]]]),
                        ])}
        logs = self.run_transaction(read)
        expired_log, cancelled_log = logs[expired[0]], logs[cancelled[0]]
        self.assertEqual(
            expired_log, ('transition', 'State : Expired', True, None, None))
        self.assertEqual(
            cancelled_log,
            ('transition', 'State : Cancelled', True, None, None))

    def test_statements_do_not_grow_with_orders(self):
        "The job's statements, commits included, do not grow with orders"
        self.expire()  # warm the caches
        counts = {2: [], 12: []}
        # Twice each: trytond's cache may sync (one query) in any run
        for count in [2, 12, 2, 12]:
            ids, _ = self.overdue(count, students=2)
            # On SQLite the counter traces the shared in-memory connection
            counter = self.run_transaction(StatementCounter)
            with counter:
                self.assertEqual(len(self.expire()), count)
            counts[count].append(counter.count)
        self.assertEqual(min(counts[2]), min(counts[12]), counts)

    def test_query_hook_raising_for_one_order(self):
        "A query hook raising for one order: the others expire"
        ids, _ = self.overdue(3, students=3)
        asked = []

        def query(cls, orders):
            asked.append(len(orders))
            if ids[1] in [o.id for o in orders]:
                raise ValueError("provider down for this order")
            return {o: 'unpaid' for o in orders}
        self.set_query_hook(query)
        with self.assertLogs(LOGGER, 'ERROR') as logs:
            expired = self.expire()
        self.assertEqual(sorted(expired), [ids[0], ids[2]])
        self.assertIn(f"order id {ids[1]}", '\n'.join(logs.output))
        self.assertEqual(asked, [3, 1, 1, 1])
        self.assertEqual(
            self.orders(ids, 'payment_query_failures'), {
                ids[0]: ('expired', 0),
                ids[1]: ('unpaid', 1),
                ids[2]: ('expired', 0),
                })

    def test_unknown_counted_then_shown(self):
        "Unknown is not expired, counted, and shown to staff after N tries"
        ids, _ = self.overdue(2, students=2)
        unknown, other = ids

        def configure():
            Configuration = Pool().get('course.configuration')
            config = Configuration(1)
            self.assertEqual(config.expiry_query_attempts, 5)
            config.expiry_query_attempts = 3
            config.save()
        self.run_transaction(configure)

        def reset():
            Configuration = Pool().get('course.configuration')
            Configuration.write(
                [Configuration(1)], {'expiry_query_attempts': 5})
        self.addCleanup(self.run_transaction, reset)
        answers = {unknown: 'unknown', other: 'unknown'}
        self.set_query_hook(
            lambda cls, orders: {o: answers[o.id] for o in orders})

        def shown():
            Order = Pool().get('course.order')
            return sorted(o.id for o in Order.search(
                    [('payment_unknown', '=', True), ('id', 'in', ids)]))
        for run in range(1, 4):
            if run < 3:
                self.assertEqual(self.expire(), [])
            else:
                with self.assertLogs(LOGGER, 'WARNING') as logs:
                    self.assertEqual(self.expire(), [])
                self.assertEqual(len(logs.output), 2)
                self.assertIn(
                    "payment still unknown after 3 queries", logs.output[0])
            self.assertEqual(self.orders(ids, 'payment_query_failures'), {
                    unknown: ('unpaid', run), other: ('unpaid', run)})
            self.assertEqual(self.run_transaction(shown),
                ids if run == 3 else [])
        answers[other] = 'unpaid'
        self.assertEqual(self.expire(), [other])
        self.assertEqual(self.orders(ids, 'payment_unknown'), {
                unknown: ('unpaid', True), other: ('expired', False)})

        def not_shown():
            Order = Pool().get('course.order')
            return [o.id for o in Order.search(
                    [('payment_unknown', '=', False), ('id', 'in', ids)])]
        self.assertEqual(self.run_transaction(not_shown), [other])

    def test_paid_answer_is_fulfilled(self):
        "An order the provider reports paid is fulfilled, not expired"
        ids, _ = self.overdue(2, students=2)
        paid, unpaid = ids
        self.set_query_hook(lambda cls, orders: {
                o: 'paid' if o.id == paid else 'unpaid' for o in orders})
        self.assertEqual(self.expire(), [unpaid])
        orders = self.orders(ids, 'paid_at', 'enrollments')
        self.assertEqual(orders[paid][0], 'paid')
        self.assertTrue(orders[paid][1])
        self.assertEqual(len(orders[paid][2]), 1)
        self.assertEqual(orders[unpaid][0], 'expired')

    def test_release_failure_isolated(self):
        "A release raising for one order: logged, the others expire"
        ids, _ = self.overdue(4, students=4)
        release = self.Order.release.__func__

        def failing_release(cls, orders):
            if ids[2] in [o.id for o in orders]:
                raise ValueError("release broken for this order")
            release(cls, orders)
        patcher = patch.object(
            self.Order, 'release', classmethod(failing_release))
        with patcher, self.assertLogs(LOGGER, 'ERROR') as logs:
            expired = self.expire()
        self.assertEqual(sorted(expired), [ids[0], ids[1], ids[3]])
        self.assertIn(f"order id {ids[2]}", '\n'.join(logs.output))
        # Rolled back whole: no state, date or log left by the failed try
        self.assertEqual(
            self.orders([ids[2]], 'cancelled_at'), {ids[2]: ('unpaid', None)})
        self.assertEqual(self.transition_logs([ids[2]]), [])
        # The next run expires it
        self.assertEqual(self.expire(), [ids[2]])

    def test_batches_committed(self):
        "A stop in batch 3 leaves batches 1-2 expired; none is redone"
        ids, _ = self.overdue(7, students=7)
        expire = self.Order._expire.__func__
        calls = []

        def crashing_expire(cls, orders):
            calls.append([int(o) for o in orders])
            if len(calls) == 3:
                raise Crash
            return expire(cls, orders)
        with patch.object(
                self.Order, '_expire', classmethod(crashing_expire)):
            with self.assertRaises(Crash):
                self.expire(batch_size=2)
        self.assertEqual(calls, [ids[0:2], ids[2:4], ids[4:6]])
        self.assertEqual(self.states(ids), ['expired'] * 4 + ['unpaid'] * 3)
        # The next run takes what is left, not the finished batches
        self.assertEqual(sorted(self.expire(batch_size=2)), ids[4:])
        self.assertEqual(
            Counter(i for i, *_ in self.transition_logs(ids)),
            Counter(ids))

    def test_restart_does_not_redo_batches(self):
        "Releases locking students (points) restart no batch"
        ids, _ = self.overdue(6, students=6)
        calls = []
        with patch_release_locking_students(self.Order, calls):
            self.assertEqual(sorted(self.expire(batch_size=2)), ids)
        self.assertEqual(calls, [ids[0:2], ids[2:4], ids[4:6]])


del ConcurrencyTestMixin

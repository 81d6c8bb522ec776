"""The notify route racing the expiry job on one order, with real parallel
transactions (PostgreSQL only)"""
import datetime as dt
import unittest
from decimal import Decimal

from trytond.modules.course.tests.tools import (
    ConcurrencyTestMixin, create_catalog)
from trytond.pool import Pool

from .tools import FakeAlipay


class AlipayConcurrencyTestCase(ConcurrencyTestMixin, unittest.TestCase):
    "Notify and expiry at once"
    module = 'course_payment_alipay'

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeAlipay().start()
        try:
            super().setUpClass()
        except unittest.SkipTest:
            cls.fake.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.fake.stop()

    @classmethod
    def setup_data(cls):
        super().setup_data()
        pool = Pool()
        Account = pool.get('course.payment.alipay.account')
        Company = pool.get('company.company')
        Account.create([cls.fake.account_values(cls.company_id, timeout=5)])
        cls.course_b = create_catalog(Company(cls.company_id)).course_b.id

    def new_overdue_order(self):
        def create():
            pool = Pool()
            Order = pool.get('course.order')
            Party = pool.get('party.party')
            Payment = pool.get('course.payment')
            student, = Party.create([{'name': "Student"}])
            order = Order.checkout(
                student.id, [{'course': self.course_b}], 'alipay', {})
            Payment.start(order)
            Order.write([order], {
                    'pay_deadline': dt.datetime.now()
                    - dt.timedelta(seconds=1)})
            return order.id, order.number
        return self.run_transaction(create)

    def race(self, order_id, params):
        from werkzeug.test import Client

        from trytond.protocols import dispatcher  # noqa: F401
        from trytond.tests.test_tryton import DB_NAME
        from trytond.wsgi import app

        def act(i):
            if i == 0:
                response = Client(app).post(
                    f'/{DB_NAME}/alipay/notify', data=params)
                return response.get_data(as_text=True)
            return [o.id for o in Pool().get('course.order').expire_overdue()]
        # The notify must not run inside a transaction: run it in a thread
        # of its own, the job in run_transaction
        import threading
        barrier = threading.Barrier(2)
        results = [None, None]

        def notify():
            barrier.wait()
            results[0] = act(0)

        thread = threading.Thread(target=notify)
        thread.start()

        def job():
            barrier.wait()
            return self.run_transaction(act, 1)
        results[1] = job()
        thread.join()
        return results

    def race_all(self, notify_params, return_params):
        """The notify, the return and the expiry job at once, each in a
        thread (the routes) or transaction (the job) of its own; return
        (notify body, return status)"""
        import threading

        from werkzeug.test import Client

        from trytond.protocols import dispatcher  # noqa: F401
        from trytond.tests.test_tryton import DB_NAME
        from trytond.wsgi import app
        barrier = threading.Barrier(3)
        results = {}

        def notify():
            barrier.wait()
            results['notify'] = Client(app).post(
                f'/{DB_NAME}/alipay/notify', data=notify_params
                ).get_data(as_text=True)

        def return_():
            barrier.wait()
            results['return'] = Client(app).get(
                f'/{DB_NAME}/alipay/return',
                query_string=return_params).status_code
        threads = [threading.Thread(target=f) for f in [notify, return_]]
        for thread in threads:
            thread.start()

        def job():
            return [o.id for o in Pool().get('course.order').expire_overdue()]
        barrier.wait()
        self.run_transaction(job)
        for thread in threads:
            thread.join()
        return results['notify'], results['return']

    def final(self, order_id):
        def read():
            order = Pool().get('course.order')(order_id)
            return (order.state, len(order.enrollments),
                [(p.state, p.late) for p in order.payments],
                [(r.state, r.amount) for r in order.refunds])
        return self.run_transaction(read)

    def test_notify_races_expiry_trade_paid(self):
        """The trade is paid: whoever comes first pays the order (the job
        asks Alipay), once"""
        for attempt in range(3):
            order_id, number = self.new_overdue_order()
            self.fake.pay(number, '500')
            notify, _ = self.race(order_id, self.fake.notify(number))
            self.assertIn(notify, {'success', 'failure'})
            state, enrollments, payments, refunds = self.final(order_id)
            self.assertEqual(state, 'paid')
            self.assertEqual(enrollments, 1)
            self.assertEqual(payments, [('succeeded', False)])
            self.assertEqual(refunds, [])

    def test_notify_return_and_expiry_race(self):
        """The notify, the return and the expiry job on one paid trade at
        once: one payment, one fulfilment, never expired"""
        for attempt in range(3):
            order_id, number = self.new_overdue_order()
            self.fake.pay(number, '500')
            notify, returned = self.race_all(
                self.fake.notify(number), self.fake.return_params(number))
            self.assertIn(notify, {'success', 'failure'})
            self.assertIn(returned, {302, 400, 503})
            state, enrollments, payments, refunds = self.final(order_id)
            self.assertEqual(state, 'paid')
            self.assertEqual(enrollments, 1)
            self.assertEqual(payments, [('succeeded', False)])
            self.assertEqual(refunds, [])

    def test_notify_races_expiry_query_unpaid(self):
        """Alipay's query still says waiting when the notify of the payment
        arrives: paid, or expired with the payment late and refunded (or
        closed, to be made late by the next notify); never both"""
        outcomes = set()
        for attempt in range(3):
            order_id, number = self.new_overdue_order()
            self.fake.pay(number, '500', status='WAIT_BUYER_PAY')
            params = self.fake.notify(number, trade_status='TRADE_SUCCESS',
                total_amount='500.00')
            notify, _ = self.race(order_id, params)
            state, enrollments, payments, refunds = self.final(order_id)
            outcomes.add(state)
            self.assertEqual(len(payments), 1, payments)
            if state == 'paid':
                self.assertEqual(notify, 'success')
                self.assertEqual(enrollments, 1)
                self.assertEqual(payments, [('succeeded', False)])
            else:
                self.assertEqual(state, 'expired')
                self.assertEqual(enrollments, 0)
                # late: the refund at Alipay was refused (the fake closed
                # the trade), left failed and listed; or only closed
                self.assertIn(payments[0], [
                        ('late', True), ('refunded', True),
                        ('cancelled', False)])
                self.assertTrue(all(
                        a == Decimal('500') for _, a in refunds))
        self.assertTrue(outcomes <= {'paid', 'expired'}, outcomes)


del ConcurrencyTestMixin

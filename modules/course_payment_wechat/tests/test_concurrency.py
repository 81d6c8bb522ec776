"""The notify route racing the expiry job and an on-demand query on one
order, with real parallel transactions (PostgreSQL only)"""
import datetime as dt
import threading
import unittest
from decimal import Decimal

from trytond.modules.course.tests.tools import (
    ConcurrencyTestMixin, create_catalog)
from trytond.pool import Pool

from .tools import FakeWechat


class WechatConcurrencyTestCase(ConcurrencyTestMixin, unittest.TestCase):
    "Notify, query and expiry at once"
    module = 'course_payment_wechat'

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeWechat().start()
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
        Account = pool.get('course.payment.wechat.account')
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
                student.id, [{'course': self.course_b}], 'wechat', {})
            Payment.start(order)
            Order.write([order], {
                    'pay_deadline': dt.datetime.now()
                    - dt.timedelta(seconds=1)})
            return order.id, order.number
        return self.run_transaction(create)

    def post(self, notification):
        "POST the notification to the route: its HTTP status"
        from werkzeug.test import Client

        from trytond.protocols import dispatcher  # noqa: F401
        from trytond.tests.test_tryton import DB_NAME
        from trytond.wsgi import app
        headers, body = notification
        return Client(app).post(
            f'/{DB_NAME}/wechat/notify', data=body, headers=headers
            ).status_code

    def expire(self):
        return [o.id for o in Pool().get('course.order').expire_overdue()]

    def query(self, order_id):
        """Ask WeChat Pay about the order as the storefront's order.sync or
        the staff's Check Status do: lock the order, query its payment"""
        pool = Pool()
        Order = pool.get('course.order')
        Payment = pool.get('course.payment')
        Payment.check_status(Payment.search([
                    ('order', '=', order_id), ('state', '=', 'pending')]))
        return Order(order_id).state

    def race(self, notification, order_id=None):
        """The notify (a thread: the route opens its own transactions), the
        expiry job and, with order_id, a query, at once; return the notify's
        status"""
        actors = 3 if order_id else 2
        barrier = threading.Barrier(actors)
        results = {}

        def notify():
            barrier.wait()
            results['notify'] = self.post(notification)

        def query():
            barrier.wait()
            try:
                results['query'] = self.run_transaction(self.query, order_id)
            except Exception as error:
                results['query'] = error
        threads = [threading.Thread(target=notify)]
        if order_id:
            threads.append(threading.Thread(target=query))
        for thread in threads:
            thread.start()
        barrier.wait()
        self.run_transaction(self.expire)
        for thread in threads:
            thread.join()
        return results

    def final(self, order_id):
        def read():
            order = Pool().get('course.order')(order_id)
            return (order.state, len(order.enrollments),
                [(p.state, p.late) for p in order.payments],
                [(r.state, r.amount) for r in order.refunds])
        return self.run_transaction(read)

    def test_notify_races_expiry_paid(self):
        """The transaction is paid: whoever comes first pays the order (the
        job asks WeChat Pay), once"""
        for attempt in range(3):
            order_id, number = self.new_overdue_order()
            self.fake.pay(number)
            results = self.race(self.fake.payment_notification(number))
            self.assertIn(results['notify'], {200, 503})
            self.assertEqual(self.final(order_id),
                ('paid', 1, [('succeeded', False)], []))

    def test_notify_query_and_expiry_race(self):
        """The notify, an on-demand query and the expiry job on one paid
        transaction at once: one payment, one fulfilment, never expired"""
        for attempt in range(3):
            order_id, number = self.new_overdue_order()
            self.fake.pay(number)
            results = self.race(
                self.fake.payment_notification(number), order_id)
            self.assertIn(results['notify'], {200, 503})
            self.assertIn(results['query'], {'paid'}, results)
            self.assertEqual(self.final(order_id),
                ('paid', 1, [('succeeded', False)], []))

    def test_notify_races_expiry_query_unpaid(self):
        """WeChat Pay's query still says NOTPAY when the notification of the
        payment arrives: paid, or expired with the payment late and
        refunded (or closed, to be made late by the next notification);
        never both"""
        outcomes = set()
        for attempt in range(3):
            order_id, number = self.new_overdue_order()
            notification = self.fake.notification(
                'TRANSACTION.SUCCESS', self.fake.payment_resource(
                    number, trade_state='SUCCESS',
                    transaction_id=self.fake.next_id('4200'),
                    amount={'total': 50000, 'currency': 'CNY'}))
            results = self.race(notification)
            state, enrollments, payments, refunds = self.final(order_id)
            outcomes.add(state)
            self.assertEqual(len(payments), 1, payments)
            if state == 'paid':
                self.assertEqual(results['notify'], 200)
                self.assertEqual(enrollments, 1)
                self.assertEqual(payments, [('succeeded', False)])
            else:
                self.assertEqual(state, 'expired')
                self.assertEqual(enrollments, 0)
                # late: the refund at the fake is refused (its transaction
                # is closed), left failed and listed; or only closed
                self.assertIn(payments[0], [
                        ('late', True), ('refunded', True),
                        ('cancelled', False)])
                self.assertTrue(all(
                        a == Decimal('500') for _, a in refunds))
        self.assertTrue(outcomes <= {'paid', 'expired'}, outcomes)


del ConcurrencyTestMixin

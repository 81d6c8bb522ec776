"""A storefront call that locks the student's party (order.create,
coupon.claim) runs in one transaction once the process knows the token's
party: the dispatcher takes the lock when it starts the transaction instead
of restarting the call for it (issue 17: one attempt per call)"""
import unittest
import uuid

from trytond.modules.course.tests.tools import TransactionStarts
from trytond.modules.course_coupon.tests.tools import create_coupon
from trytond.pool import Pool
from trytond.transaction import Transaction

from .. import prelocks
from .tools import StorefrontError, StorefrontTestMixin


class AttemptsTestCase(StorefrontTestMixin, unittest.TestCase):
    "Transactions started by order.create and coupon.claim"

    @classmethod
    def setup_data(cls):
        super().setup_data()
        pool = Pool()
        company = pool.get('company.company')(cls.company_id)
        # A coupon and points on one order
        with Transaction().set_context(company=cls.company_id):
            configuration = pool.get('course.configuration')(1)
            configuration.discounts_combinable = True
            configuration.save()
        cls.coupon = create_coupon(company, '-10').id
        cls.claimable = create_coupon(
            company, '-5', issue_mode='claim', total=100).id

    def student(self):
        client = self.client()
        user = client.register(f'{uuid.uuid4().hex[:12]}@example.com')
        client.party = self.run_transaction(
            lambda: Pool().get('web.user')(user['user']['id']).party.id)
        return client

    def give(self, client):
        "A grant of the coupon and 100 points for client's student"
        def give():
            from trytond.modules.course_credit.tests.tools import grant
            pool = Pool()
            party = pool.get('party.party')(client.party)
            grant(party, 100)
            grant_, = pool.get('course.coupon.grant').issue(
                [pool.get('course.coupon')(self.coupon)], [party])
            return grant_.id
        return self.run_transaction(give)

    def order_create(self, client, remembered=None):
        """(transactions started, order) of an order of course B; the
        process remembers the party `remembered` for the token when given
        (None: forgets it)"""
        grant = self.give(client)
        client.call('cart.add', {'course': self.catalog['b']})
        key = (client.database, client.token)
        self.assertEqual(prelocks.PARTIES.get(key), client.party)
        if remembered is not False:
            prelocks.PARTIES.pop(key)
            if remembered is not None:
                prelocks.PARTIES[key] = remembered
        with TransactionStarts() as starts:
            order = client.call('order.create', {
                    'pay_method': 'manual', 'coupons': [grant],
                    'credit': 10})
        return starts.count, order

    def test_order_create_one_attempt(self):
        "order.create of a known token: one transaction, the party locked"
        client = self.student()
        count, order = self.order_create(client, remembered=False)
        self.assertEqual(order['state'], 'unpaid')
        self.assertEqual(order['coupon_discount'], '10.00')
        self.assertEqual(count, 1)

    def test_order_create_unknown_token(self):
        "A token the process does not know yet restarts once for the lock"
        client = self.student()
        count, order = self.order_create(client, remembered=None)
        self.assertEqual(order['state'], 'unpaid')
        self.assertEqual(count, 2)

    def test_wrong_party_remembered(self):
        """A remembered party that is not the token's (changed since) only
        costs the restart: the order is the token's student's"""
        client, other = self.student(), self.student()
        count, order = self.order_create(client, remembered=other.party)
        self.assertEqual(count, 2)
        number = order['number']
        self.assertEqual(self.run_transaction(lambda: Pool().get(
                    'course.order').search([('number', '=', number)])[0]
                .party.id), client.party)

    def test_coupon_claim_one_attempt(self):
        client = self.student()
        client.call('cart.get')
        with TransactionStarts() as starts:
            grant = client.call('coupon.claim', {'coupon': self.claimable})
        self.assertEqual(grant['state'], 'available')
        self.assertEqual(starts.count, 1)

    def unpaid_order(self, client, pay_method):
        client.call('cart.add', {'course': self.catalog['b']})
        order = client.call('order.create', {'pay_method': pay_method})
        self.assertEqual(order['state'], 'unpaid')
        return order

    def test_order_pay_one_attempt(self):
        """order.pay of an order this process answered: one transaction,
        the order and the student locked at its start (an order to pay
        offline is refused once locked, in that one transaction)"""
        client = self.student()
        order = self.unpaid_order(client, 'manual')
        with TransactionStarts() as starts:
            with self.assertRaises(StorefrontError) as cm:
                client.call('order.pay', {'number': order['number']})
        self.assertEqual(cm.exception.type, 'order.pay_method')
        self.assertEqual(starts.count, 1)

    def test_order_cancel_one_attempt(self):
        client = self.student()
        order = self.unpaid_order(client, 'manual')
        with TransactionStarts() as starts:
            cancelled = client.call(
                'order.cancel', {'number': order['number']})
        self.assertEqual(cancelled['state'], 'cancelled')
        self.assertEqual(starts.count, 1)

    def test_order_not_answered(self):
        """An order this process did not answer (another process did)
        restarts once for its lock, and is cancelled all the same"""
        client = self.student()
        order = self.unpaid_order(client, 'manual')
        prelocks.ORDERS.clear()
        with TransactionStarts() as starts:
            cancelled = client.call(
                'order.cancel', {'number': order['number']})
        self.assertEqual(cancelled['state'], 'cancelled')
        self.assertEqual(starts.count, 2)

    def test_other_students_order(self):
        """A student naming another's order number takes no lock on it
        (the hints are the student's own) and finds nothing"""
        client, other = self.student(), self.student()
        order = self.unpaid_order(other, 'manual')
        with self.assertRaises(StorefrontError) as cm:
            client.call('order.cancel', {'number': order['number']})
        self.assertEqual(cm.exception.code, -32004)
        self.assertEqual(
            other.call('order.get', {'number': order['number']})['state'],
            'unpaid')

"""Payments, messages, refunds and refund requests over real RPC: nobody
writes them, only staff read them, only Course Administration decides"""
import unittest
from decimal import Decimal

from trytond.modules.course.tests.rpc import BAD_IDS, RPCTestMixin

from .tools import FakeProvider

MODELS = ['course.payment', 'course.payment.message',
    'course.payment.refund', 'course.payment.refund.request']
STAFF = ['sales', 'manager', 'admin']
BAD_TEXTS = [None, 1, ['x'], {'a': 1}, 'x' * 1001, True]


class CoursePaymentRPCTestCase(RPCTestMixin, unittest.TestCase):
    "course_payment over JSON-RPC and XML-RPC"
    module = 'course_payment'

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fake = FakeProvider()
        from trytond.modules.course.tests.tools import run_transaction

        def catalog():
            from trytond.modules.course.tests.tools import create_catalog
            from trytond.pool import Pool
            Company = Pool().get('company.company')
            cat = create_catalog(Company(cls.company_id))
            return [cat.course_a.id, cat.course_b.id, cat.course_c.id]
        cls.courses = run_transaction(
            catalog, context={'company': cls.company_id})

    def setUp(self):
        super().setUp()
        from unittest.mock import patch

        from trytond.pool import Pool
        from trytond.tests.test_tryton import DB_NAME
        from trytond.transaction import Transaction
        with Transaction().start(DB_NAME, 0):
            pool = Pool()
            Order = pool.get('course.order')
            Payment = pool.get('course.payment')
        selection = [s for s in Order.pay_method.selection if s[0] != 'fake']
        for patcher in [
                patch.object(Order.pay_method, 'selection',
                    selection + [('fake', "Fake")])] + [
                patch.object(Payment, name, hook, create=True)
                for name, hook in self.fake.hooks().items()]:
            patcher.start()
            self.addCleanup(patcher.stop)

    def paid_order(self):
        "A new student's order of course B paid through the fake provider"
        def create():
            from trytond.pool import Pool
            pool = Pool()
            Order = pool.get('course.order')
            Party = pool.get('party.party')
            Payment = pool.get('course.payment')
            party, = Party.create([{'name': "Student"}])
            order = Order.checkout(
                party.id, [{'course': self.courses[1]}], 'fake', {})
            Payment.start(order)
            payment = Payment.succeed(
                order, 'fake', order.payable_amount, f'T{order.number}')
            message, = payment.messages
            return {'order': order.id, 'payment': payment.id,
                'message': message.id, 'line': order.lines[0].id}
        return self.run_transaction(create)

    def read(self, model, id_, *names):
        def read():
            from trytond.pool import Pool
            record, = Pool().get(model).read([id_], list(names))
            return {n: record[n] for n in names}
        return self.run_transaction(read)

    def count(self, model):
        def count():
            from trytond.pool import Pool
            return Pool().get(model).search([], count=True)
        return self.run_transaction(count)

    def test_staff_read_nobody_else(self):
        "Sales and managers read payments and messages; nobody cannot"
        data = self.paid_order()
        for login in STAFF:
            client = self.login(login)
            payment, = client.model('course.payment', 'read',
                [data['payment']], ['state', 'amount', 'messages'])
            self.assertEqual(payment['state'], 'succeeded')
            self.assertEqual(payment['amount'], Decimal('500'))
            self.assertEqual(len(client.model('course.payment.message',
                        'read', payment['messages'], ['payload'])), 1)
        nobody = self.login('nobody')
        self.assertRPCError(nobody.model, 'course.payment', 'read',
            [data['payment']], ['state'], text='not allowed')

    def test_nobody_writes(self):
        "No group (admin neither) creates, writes, deletes or copies them"
        data = self.paid_order()
        records = {
            'course.payment': (data['payment'], {'state': 'refunded'}),
            'course.payment.message': (data['message'], {'payload': 'x'}),
            }
        before = {m: self.count(m) for m in MODELS}
        for login in STAFF:
            for protocol in ['json', 'xml']:
                client = self.login(login, protocol)
                for model, (id_, values) in records.items():
                    with self.subTest(login=login, model=model,
                            protocol=protocol):
                        for method, args in [
                                ('write', [[id_], values]),
                                ('delete', [[id_]]),
                                ('copy', [[id_], {}]),
                                ('create', [[{'payment': id_}]]),
                                ]:
                            self.assertRPCError(
                                client.model, model, method, *args,
                                kinds=('UserError', 'AccessError'))
        self.assertEqual(before, {m: self.count(m) for m in MODELS})
        self.assertEqual(
            self.read('course.payment', data['payment'], 'state')['state'],
            'succeeded')

    def test_request_refund_rights_and_input(self):
        "request_refund: staff only, checked input, one open request"
        data = self.paid_order()
        nobody = self.login('nobody')
        self.assertRPCError(
            nobody.model, 'course.payment.refund.request', 'request_refund',
            data['order'], "reason", text='request_refund')
        sales = self.login('sales')
        for bad in BAD_IDS:
            with self.subTest(order=bad):
                self.assertRPCError(
                    sales.model, 'course.payment.refund.request',
                    'request_refund', bad, "reason")
        for bad in BAD_TEXTS + ['', '  ']:
            with self.subTest(reason=bad):
                self.assertRPCError(
                    sales.model, 'course.payment.refund.request',
                    'request_refund', data['order'], bad)
        self.assertEqual(self.count('course.payment.refund.request'), 0)
        request = sales.model('course.payment.refund.request',
            'request_refund', data['order'], "Not what I expected")
        self.assertRPCError(
            sales.model, 'course.payment.refund.request', 'request_refund',
            data['order'], "again", text='open refund request')
        # Sales cannot decide; the manager approves
        self.assertRPCError(sales.model, 'course.payment.refund.request',
            'approve', [request], kinds=('AccessButtonError', 'UserError',
                'AccessError'))
        self.assertEqual(self.read('course.payment.refund.request', request,
                'state')['state'], 'open')
        manager = self.login('manager')
        manager.model('course.payment.refund.request', 'approve', [request])
        values = self.read('course.payment.refund.request', request,
            'state', 'decided_by', 'decided_at', 'refund')
        self.assertEqual(values['state'], 'approved')
        self.assertEqual(values['decided_by'], self.user_ids['manager'])
        self.assertTrue(values['decided_at'])
        self.assertEqual(
            self.read('course.order', data['order'], 'state')['state'],
            'refunded')

    def test_refund_wizard_manager_only(self):
        "The refund wizard: sales are refused, the manager refunds a line"
        data = self.paid_order()
        sales = self.login('sales')
        self.assertRPCError(sales.execute_wizard,
            'course.payment.refund.wizard',
            {'start': {'whole': True, 'lines': [], 'reason': "r"}},
            state='refund', model='course.order', record=data['order'],
            kinds=('AccessError', 'UserError'))
        manager = self.login('manager')
        manager.execute_wizard('course.payment.refund.wizard',
            {'start': {'whole': False, 'lines': [data['line']],
                    'reason': "Wrong course"}},
            state='refund', model='course.order', record=data['order'])
        self.assertEqual(
            self.read('course.order', data['order'], 'state')['state'],
            'refunded')


del RPCTestMixin

"""The keys of the Alipay accounts over real RPC: only the administrators
(res.group_admin) read or write them"""
import unittest

from trytond.modules.course.tests.rpc import RPCTestMixin

from .tools import FakeAlipay, key_pair

MODEL = 'course.payment.alipay.account'
KEYS = ['app_private_key', 'alipay_public_key']


class AlipayAccountRPCTestCase(RPCTestMixin, unittest.TestCase):
    "Alipay accounts over JSON-RPC and XML-RPC"
    module = 'course_payment_alipay'

    @classmethod
    def setup_data(cls):
        super().setup_data()
        from trytond.pool import Pool
        Account = Pool().get(MODEL)
        fake = FakeAlipay()
        fake.server = type('S', (), {'server_address': ('127.0.0.1', 1)})()
        cls.values = fake.account_values(cls.company_id)
        account, = Account.create([cls.values])
        cls.account_id = account.id

    def test_admin_reads_and_writes_keys(self):
        "The administrators read and change the keys"
        for protocol in ['json', 'xml']:
            admin = self.login('admin', protocol)
            record, = admin.model(MODEL, 'read', [self.account_id],
                KEYS + ['app_id'])
            self.assertEqual(record['app_private_key'],
                self.values['app_private_key'])
            self.assertEqual(record['alipay_public_key'],
                self.values['alipay_public_key'])
        admin = self.login('admin')
        admin.model(MODEL, 'write', [self.account_id],
            {'alipay_public_key': self.values['alipay_public_key']})

    def test_keys_hidden_from_other_groups(self):
        "Course Administration reads the account but not its keys"
        for protocol in ['json', 'xml']:
            manager = self.login('manager', protocol)
            record, = manager.model(
                MODEL, 'read', [self.account_id], ['app_id', 'gateway'])
            self.assertEqual(record['app_id'], self.values['app_id'])
            for key in KEYS:
                with self.subTest(protocol=protocol, key=key):
                    self.assertRPCError(
                        manager.model, MODEL, 'read', [self.account_id],
                        [key], kinds=('AccessError', 'UserError'))
                    self.assertRPCError(
                        manager.model, MODEL, 'search_read',
                        [('id', '=', self.account_id)], 0, None, None,
                        [key], kinds=('AccessError', 'UserError'))
            # Nor can it change anything
            self.assertRPCError(
                manager.model, MODEL, 'write', [self.account_id],
                {'app_private_key': 'x'}, kinds=('AccessError', 'UserError'))
            self.assertRPCError(
                manager.model, MODEL, 'write', [self.account_id],
                {'name': 'x'}, kinds=('AccessError', 'UserError'))

    def test_no_access_for_sales_and_nobody(self):
        "Course Sales and users of no group of ours see no account"
        for login in ['sales', 'nobody']:
            for protocol in ['json', 'xml']:
                user = self.login(login, protocol)
                for fields in [['app_id'], KEYS]:
                    with self.subTest(login=login, protocol=protocol,
                            fields=fields):
                        self.assertRPCError(
                            user.model, MODEL, 'read', [self.account_id],
                            fields, kinds=('AccessError', 'UserError'))
                        self.assertRPCError(
                            user.model, MODEL, 'search_read', [], 0, None,
                            None, fields,
                            kinds=('AccessError', 'UserError'))

    def test_wrong_pem_refused(self):
        "A wrong PEM is refused on save with a clear message"
        admin = self.login('admin')
        _, app_private, app_public = key_pair('app')
        for values, text in [
                ({'app_private_key': 'not a key'}, 'app private key'),
                ({'app_private_key': app_public}, 'app private key'),
                ({'alipay_public_key': app_private}, 'Alipay public key'),
                ]:
            with self.subTest(values=list(values)):
                self.assertRPCError(
                    admin.model, MODEL, 'write', [self.account_id], values,
                    kinds=('UserError', 'ValidationError'), text=text)
        record, = admin.model(MODEL, 'read', [self.account_id], KEYS)
        self.assertEqual(record['app_private_key'],
            self.values['app_private_key'])


class AlipayPayRPCTestCase(RPCTestMixin, unittest.TestCase):
    "course.payment.pay: the door that starts paying an order"
    module = 'course_payment_alipay'

    @classmethod
    def setup_data(cls):
        super().setup_data()
        import datetime as dt

        from trytond.modules.course.tests.tools import create_catalog
        from trytond.modules.course_order.tests.tools import checkout
        from trytond.pool import Pool
        from trytond.transaction import Transaction
        pool = Pool()
        Account = pool.get(MODEL)
        Company = pool.get('company.company')
        Order = pool.get('course.order')
        fake = FakeAlipay()
        fake.server = type('S', (), {'server_address': ('127.0.0.1', 1)})()
        Account.create([fake.account_values(cls.company_id)])
        with Transaction().set_context(company=cls.company_id):
            cat = create_catalog(Company(cls.company_id))
            cls.unpaid = checkout(
                cat.student, cat.course_a, pay_method='alipay').id
            late = checkout(cat.student, cat.course_b, pay_method='alipay')
            Order.write([late], {
                    'pay_deadline': dt.datetime.now() - dt.timedelta(
                        seconds=1)})
            cls.late = late.id
            cls.manual = checkout(cat.other_student, cat.course_a).id

    def payments(self):
        def count():
            from trytond.pool import Pool
            return Pool().get('course.payment').search([], count=True)
        return self.run_transaction(count)

    def test_pay(self):
        "Staff get the page-pay URL; paying again is the same trade"
        from trytond.modules.course.tests.rpc import BAD_IDS
        urls = []
        for login, protocol in [('sales', 'json'), ('manager', 'xml')]:
            user = self.login(login, protocol)
            answer = user.model('course.payment', 'pay', self.unpaid)
            self.assertIn('alipay.trade.page.pay', answer['url'])
            urls.append(answer['url'])
        self.assertEqual(self.payments(), 1)
        sales = self.login('sales')
        for order in [self.late, self.manual]:
            with self.subTest(order=order):
                self.assertRPCError(
                    sales.model, 'course.payment', 'pay', order)
        for value in BAD_IDS:
            with self.subTest(value=value):
                self.assertRPCError(
                    sales.model, 'course.payment', 'pay', value,
                    text="is not valid")
        self.assertEqual(self.payments(), 1)

    def test_pay_rights(self):
        "Users of no course group may not start a payment"
        before = self.payments()
        nobody = self.login('nobody')
        self.assertRPCError(
            nobody.model, 'course.payment', 'pay', self.unpaid,
            text="may call")
        self.assertEqual(self.payments(), before)

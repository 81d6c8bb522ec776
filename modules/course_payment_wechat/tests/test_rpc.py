"""The WeChat Pay accounts and the payment door over real RPC: only the
administrators (res.group_admin) read or write the secrets"""
import unittest

from trytond.modules.course.tests.rpc import BAD_IDS, RPCTestMixin

from .tools import FakeWechat, key_pair

MODEL = 'course.payment.wechat.account'
SECRETS = ['merchant_private_key', 'apiv3_key', 'wechatpay_public_key']
ACCESS = ('AccessError', 'UserError')


def offline_fake():
    "A FakeWechat that is not started, for account values (a dead port)"
    fake = FakeWechat()
    fake.server = type('S', (), {'server_address': ('127.0.0.1', 1)})()
    return fake


class WechatAccountRPCTestCase(RPCTestMixin, unittest.TestCase):
    "WeChat Pay accounts over JSON-RPC and XML-RPC"
    module = 'course_payment_wechat'

    @classmethod
    def setup_data(cls):
        super().setup_data()
        from trytond.pool import Pool
        Account = Pool().get(MODEL)
        cls.values = offline_fake().account_values(cls.company_id)
        account, = Account.create([cls.values])
        cls.account_id = account.id

    def test_admin_reads_and_writes_secrets(self):
        "The administrators read and change the secrets"
        for protocol in ['json', 'xml']:
            admin = self.login('admin', protocol)
            record, = admin.model(MODEL, 'read', [self.account_id],
                SECRETS + ['mchid'])
            for name in SECRETS:
                self.assertEqual(record[name], self.values[name])
        admin = self.login('admin')
        admin.model(MODEL, 'write', [self.account_id],
            {'apiv3_key': self.values['apiv3_key']})

    def test_secrets_hidden_from_course_administration(self):
        "Course Administration reads the account but not its secrets"
        for protocol in ['json', 'xml']:
            manager = self.login('manager', protocol)
            record, = manager.model(MODEL, 'read', [self.account_id],
                ['mchid', 'appid', 'wechatpay_public_key_id', 'gateway'])
            self.assertEqual(record['mchid'], self.values['mchid'])
            for name in SECRETS:
                with self.subTest(protocol=protocol, name=name):
                    self.assertRPCError(
                        manager.model, MODEL, 'read', [self.account_id],
                        [name], kinds=ACCESS)
                    self.assertRPCError(
                        manager.model, MODEL, 'search_read',
                        [('id', '=', self.account_id)], 0, None, None,
                        [name], kinds=ACCESS)
                    # Nor searched by their value (that would read them)
                    self.assertRPCError(
                        manager.model, MODEL, 'search',
                        [(name, '=', self.values[name])], 0, None, None,
                        kinds=ACCESS)
            # Nor can it change anything
            for values in [{'apiv3_key': 'x' * 32}, {'name': 'x'}]:
                self.assertRPCError(
                    manager.model, MODEL, 'write', [self.account_id],
                    values, kinds=ACCESS)
            self.assertRPCError(
                manager.model, MODEL, 'create',
                [dict(self.values, name="Other")], kinds=ACCESS)

    def test_no_access_for_sales_and_nobody(self):
        "Course Sales and users of no group of ours see no account"
        for login in ['sales', 'nobody']:
            for protocol in ['json', 'xml']:
                user = self.login(login, protocol)
                for fields in [['mchid'], SECRETS]:
                    with self.subTest(login=login, protocol=protocol,
                            fields=fields):
                        self.assertRPCError(
                            user.model, MODEL, 'read', [self.account_id],
                            fields, kinds=ACCESS)
                        self.assertRPCError(
                            user.model, MODEL, 'search_read', [], 0, None,
                            None, fields, kinds=ACCESS)

    def test_bad_values_refused(self):
        "Wrong keys, APIv3 key and ids are refused on save, nothing changed"
        admin = self.login('admin')
        _, merchant_private, merchant_public = key_pair('merchant')
        for values, text in [
                ({'merchant_private_key': 'not a key'},
                    'merchant private key'),
                ({'merchant_private_key': merchant_public},
                    'merchant private key'),
                ({'wechatpay_public_key': merchant_private},
                    'WeChat Pay public key'),
                ({'apiv3_key': 'short'}, 'APIv3 key'),
                ({'mchid': 'abc'}, 'merchant ID'),
                ({'merchant_serial': 'xyz'}, 'serial'),
                ({'wechatpay_public_key_id': 'a b'}, 'public key ID'),
                ({'notify_url': 'javascript:alert(1)'}, 'Notify URL'),
                ({'timeout': 0}, None),
                ({'gateway': 'elsewhere'}, None),
                ]:
            with self.subTest(values=list(values)):
                self.assertRPCError(
                    admin.model, MODEL, 'write', [self.account_id], values,
                    kinds=('UserError', 'ValidationError',
                        'DomainValidationError', 'SelectionValidationError'),
                    text=text)
        record, = admin.model(MODEL, 'read', [self.account_id], SECRETS)
        for name in SECRETS:
            self.assertEqual(record[name], self.values[name])


class WechatPayRPCTestCase(RPCTestMixin, unittest.TestCase):
    "course.payment.pay with WeChat Pay: the door that asks for the code"
    module = 'course_payment_wechat'

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeWechat().start()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.fake.stop()

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
        Account.create([cls.fake.account_values(cls.company_id)])
        with Transaction().set_context(company=cls.company_id):
            cat = create_catalog(Company(cls.company_id))
            cls.unpaid = checkout(
                cat.student, cat.course_a, pay_method='wechat').id
            late = checkout(cat.student, cat.course_b, pay_method='wechat')
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
        "Staff get the code_url; paying again is the same transaction"
        codes = []
        for login, protocol in [('sales', 'json'), ('manager', 'xml')]:
            user = self.login(login, protocol)
            answer = user.model('course.payment', 'pay', self.unpaid)
            self.assertTrue(answer['code_url'].startswith('weixin://'))
            self.assertTrue(answer['time_expire'].endswith('+08:00'))
            codes.append(answer['code_url'])
        self.assertEqual(len(set(codes)), 1)
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
        "Users of no course group may not ask for a code"
        before = self.payments()
        nobody = self.login('nobody')
        self.assertRPCError(
            nobody.model, 'course.payment', 'pay', self.unpaid,
            text="may call")
        self.assertEqual(self.payments(), before)

"""The order receipt of a paid order with a coupon, points, a provider
payment and a refund (course_payment's part of the receipt), rendered in
process and over real JSON-RPC and XML-RPC; who may print it."""
import unittest
from decimal import Decimal
from types import SimpleNamespace

from trytond.modules.course.tests.rpc import RPCTestMixin
from trytond.modules.course.tests.tools import run_transaction
from trytond.modules.course_order.tests.tools import (
    odt_paragraphs, print_receipt)
from trytond.modules.course_payment.tests.tools import (
    FakeProvider, plug_fake)

REPORT = 'course.order.receipt'


def paid_order(company_id):
    """A student's order of course A (one-month option, a coupon -30) and B
    (an activity: 80%) with 50 points, paid through the fake provider,
    then B refunded; the school prints in Chinese.  Return what the receipt
    must show."""
    from trytond.modules.course.tests.tools import (
        create_activity, create_catalog)
    from trytond.modules.course_coupon.tests.tools import (
        create_coupon, give)
    from trytond.modules.course_credit.tests.tools import grant
    from trytond.pool import Pool
    pool = Pool()
    Company = pool.get('company.company')
    Configuration = pool.get('course.configuration')
    Lang = pool.get('ir.lang')
    Order = pool.get('course.order')
    Payment = pool.get('course.payment')
    Refund = pool.get('course.payment.refund')

    company = Company(company_id)
    chinese, = Lang.search([('code', '=', 'zh_CN')])
    Lang.load_translations([chinese])
    company.party.lang = chinese
    company.party.save()
    config = Configuration(1)
    config.discounts_combinable = True
    config.save()
    cat = create_catalog(company)
    create_activity(
        cat.course_b, 'percentage', Decimal(80), name="限时八折")
    student = cat.student
    student.name = "王小明"
    student.save()
    grant(student, 300)
    coupon_grant = give(create_coupon(company, '-30'), student)

    order = Order(Order.checkout(student.id, [
                {'course': cat.course_a.id,
                    'option': cat.option_a_month.id},
                {'course': cat.course_b.id}],
            'fake', {'grants': [coupon_grant.id], 'credit': 50}))
    Payment.start(order)
    payment = Payment.succeed(
        order, 'fake', order.payable_amount, f'FAKE{order.number}')
    line_b, = [l for l in order.lines if l.course == cat.course_b]
    refund = Refund.refund_order(order, lines=[line_b], reason="学员申请退课")
    order = Order(order.id)
    return {
        'id': order.id,
        'state': order.state,
        'number': order.number,
        'payable': order.payable_amount,
        'lines': [(l.product.rec_name, l.list_price, l.unit_price,
                l.activity.name if l.activity else None)
            for l in order.lines],
        'discounts': [(d.kind, d.description, d.amount)
            for d in order.discounts],
        'reference': payment.reference,
        'refund': (refund.number, refund.state, refund.amount),
        }


class OrderReceiptRPCTestCase(RPCTestMixin, unittest.TestCase):
    "The receipt with payments and refunds, in process and over RPC"
    module = ['course_payment', 'course_coupon', 'course_credit']

    @classmethod
    def setUpClass(cls):
        from trytond.tests.test_tryton import DB_NAME
        from trytond.transaction import Transaction
        super().setUpClass()
        cls.fake = FakeProvider()
        # For the whole class (the RPC calls run in this process)
        with Transaction().start(DB_NAME, 0):
            plug_fake(SimpleNamespace(addCleanup=cls.addClassCleanup),
                cls.fake)
        cls.order = run_transaction(
            paid_order, cls.company_id, context={'company': cls.company_id})

    def money(self, amount):
        "amount as a receipt of the company (CNY, zh_CN) writes it"
        def format_():
            from trytond.pool import Pool
            pool = Pool()
            Lang = pool.get('ir.lang')
            Company = pool.get('company.company')
            Receipt = pool.get(REPORT, type='report')
            return Receipt.format_currency(
                amount, Lang.get('zh_CN'),
                Company(self.company_id).currency)
        return self.run_transaction(format_)

    def assertReceipt(self, content):
        """content is the ODT receipt of the order: its number, each line
        (name, list and sale price, activity), each discount, the payable,
        the payment's trade number and the refund, in Chinese"""
        order = self.order
        paragraphs = odt_paragraphs(content)
        text = '\n'.join(paragraphs)
        self.assertEqual(order['state'], 'paid')
        expected = ['订单收据', '支付信息', '退款信息', '优惠券', '积分',
            order['number'], order['reference'], "王小明", "学员申请退课",
            self.money(order['payable'])]
        for name, list_price, unit_price, activity in order['lines']:
            # Without activity: the regular price's name, in Chinese
            expected += [name, self.money(list_price),
                self.money(unit_price), activity or "原价购买"]
        for kind, description, amount in order['discounts']:
            expected += [description, '-' + self.money(amount)]
        number, state, amount = order['refund']
        self.assertEqual(state, 'succeeded')
        expected += [number, self.money(amount), '成功']
        for value in expected:
            with self.subTest(value=value):
                self.assertIn(value, text)
        self.assertEqual(
            sorted(str(a) for *_, a in order['lines']), ["None", "限时八折"])
        self.assertIn("限时八折", paragraphs)
        self.assertEqual(
            sorted(k for k, _, _ in order['discounts']),
            ['coupon', 'credit'])

    def test_in_process(self):
        "Printed in process by a Course Administration user"
        manager = self.user_ids['manager']

        def print_():
            from trytond.pool import Pool
            from trytond.transaction import Transaction
            Order = Pool().get('course.order')
            with Transaction().set_user(manager):
                return print_receipt([Order(self.order['id'])])
        extension, content = self.run_transaction(print_)

        self.assertEqual(extension, 'odt')
        self.assertReceipt(content)

    def test_over_rpc(self):
        """Staff print it from the order form as the clients do: the
        form_print keyword's action, then report.<name>.execute"""
        for login in ['sales', 'manager', 'admin']:
            for protocol in ['json', 'xml']:
                with self.subTest(login=login, protocol=protocol):
                    client = self.login(login, protocol)
                    action = self.print_action(client)
                    extension, content, _, name = client.call(
                        f'report.{REPORT}.execute', [self.order['id']], {
                            'model': 'course.order',
                            'id': self.order['id'],
                            'ids': [self.order['id']],
                            'action_id': action['id'],
                            })
                    self.assertEqual(extension, 'odt')
                    self.assertIn(self.order['number'], name)
                    self.assertReceipt(getattr(content, 'data', content))

    def print_action(self, client):
        "The receipt among the print actions of the order form"
        actions = client.model('ir.action.keyword', 'get_keyword',
            'form_print', ['course.order', self.order['id']])
        action, = [a for a in actions if a.get('report_name') == REPORT]
        return action

    def test_refused_without_order_read(self):
        "A user without read access to the orders cannot print"
        for protocol in ['json', 'xml']:
            with self.subTest(protocol=protocol):
                nobody = self.login('nobody', protocol)
                self.assertRPCError(
                    nobody.call, f'report.{REPORT}.execute',
                    [self.order['id']], {'model': 'course.order'},
                    kinds=('UserError', 'AccessError'),
                    text='not allowed')

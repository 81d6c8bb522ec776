"""The order receipt (report course.order.receipt) rendered in process:
what it shows, in which language, and its ODT or PDF output"""
import unittest
from decimal import Decimal
from unittest.mock import patch

from trytond.modules.company.tests import create_company
from trytond.modules.course.tests.tools import (
    create_activity, create_catalog, set_config)
from trytond.modules.course_order.receipt import converter_available
from trytond.modules.course_order.tests.tools import (
    checkout, odt_paragraphs, print_receipt)
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction


class OrderReceiptTestCase(unittest.TestCase):
    "The receipt of an order"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module('course_order')

    def catalog(self, language=None):
        """A company (its language set to language, its translations
        loaded) and its catalog; the test runs in that company, as the
        admin user"""
        pool = Pool()
        Lang = pool.get('ir.lang')
        User = pool.get('res.user')
        company = create_company()
        # The user prints (record rules apply): a user of the company
        User.write([User(Transaction().user)], {
                'companies': [('add', [company.id])],
                'company': company.id,
                })
        transaction = Transaction()
        transaction.context = dict(transaction.context, company=company.id)
        if language:
            lang, = Lang.search([('code', '=', language)])
            Lang.load_translations([lang])
            company.party.lang = lang
            company.party.save()
        cat = create_catalog(company)
        # Not "Student": the report's translator also translates printed
        # values that equal a term of the template
        cat.student.name, cat.other_student.name = "王小明", "李华"
        cat.student.save()
        cat.other_student.save()
        return cat

    def money(self, amount, order, language):
        "amount as the receipt writes it in language"
        pool = Pool()
        Lang = pool.get('ir.lang')
        Receipt = pool.get('course.order.receipt', type='report')
        return Receipt.format_currency(
            amount, Lang.get(language), order.currency)

    def assertShown(self, paragraphs, *texts):
        "Each text is a paragraph of the receipt, or inside one"
        for text in texts:
            with self.subTest(text=text):
                self.assertTrue(
                    any(text in p for p in paragraphs),
                    f'{text!r} not in {paragraphs}')

    @with_transaction()
    def test_paid_order_in_chinese(self):
        "A paid order: number, lines, payable, payment, Chinese labels"
        Order = Pool().get('course.order')
        cat = self.catalog('zh_CN')
        create_activity(cat.course_b, 'percentage', Decimal(80))
        order = checkout(
            cat.student, (cat.course_a, cat.option_a_month), cat.course_b)
        Order.confirm_payment([order])

        extension, content = print_receipt([order], output='')

        self.assertEqual(extension, 'odt')
        paragraphs = odt_paragraphs(content)
        money = lambda a: self.money(a, order, 'zh_CN')  # noqa: E731
        self.assertShown(paragraphs,
            '订单收据', '学校', '学员', '订单号', '应付金额', '支付信息',
            order.number, cat.company.rec_name, "王小明",
            "One month", "限时折扣", "原价购买",
            money(order.payable_amount), '599.00',
            '人工确认', '已支付')
        for line in order.lines:
            self.assertShown(paragraphs, line.product.rec_name,
                money(line.list_price), money(line.unit_price))
        # The lines keep their price names in the company's language,
        # whatever the language of the checkout (English here)
        self.assertEqual(
            sorted(l.discount_name for l in order.lines),
            ["原价购买", "限时折扣"])
        self.assertNotIn('Regular price', paragraphs)
        self.assertNotIn('Order Number', paragraphs)
        self.assertNotIn('退款信息', paragraphs)

    @with_transaction()
    def test_language_of_the_user_without_company_language(self):
        "Without a company language the receipt is in the user's; ODT"
        cat = self.catalog()
        order = checkout(cat.student, cat.course_c)

        with Transaction().set_context(language='en'):
            # As shipped
            extension, content = print_receipt([order])

        self.assertEqual(extension, 'odt')
        paragraphs = odt_paragraphs(content)
        self.assertShown(paragraphs, 'Order Receipt', 'Order Number',
            order.number, 'Unpaid', self.money(Decimal(300), order, 'en'))
        # Nothing paid, nothing refunded: no such sections
        self.assertNotIn('Payment', paragraphs)
        self.assertNotIn('Refunds', paragraphs)

    @with_transaction()
    def test_refunded_order(self):
        "A refunded order shows its refund and its state"
        Order = Pool().get('course.order')
        cat = self.catalog('zh_CN')
        order = checkout(cat.student, cat.course_b)
        Order.confirm_payment([order])
        Order.refund([order])

        _, content = print_receipt([order], output='')

        paragraphs = odt_paragraphs(content)
        self.assertShown(paragraphs, '退款信息', '已退款', '人工确认',
            self.money(order.payable_amount, order, 'zh_CN'))

    @with_transaction()
    def test_several_orders_one_document(self):
        "Receipts of several orders print as one document"
        Order = Pool().get('course.order')
        cat = self.catalog('zh_CN')
        first = checkout(cat.student, cat.course_b)
        second = checkout(cat.other_student, cat.course_c)
        Order.confirm_payment([first])

        extension, content = print_receipt([first, second], output='')

        self.assertEqual(extension, 'odt')
        paragraphs = odt_paragraphs(content)
        self.assertShown(paragraphs, first.number, second.number,
            cat.student.rec_name, cat.other_student.rec_name)
        self.assertEqual(paragraphs.count('订单收据'), 2)

    @with_transaction()
    def test_pdf_asked_without_converter(self):
        "PDF asked where the converter is missing: ODT at once, no try"
        cat = self.catalog()
        order = checkout(cat.student, cat.course_c)
        set_config(self, 'report', 'convert_command',
            'no-such-office-converter --convert-to pdf %(input_path)s')

        with patch('trytond.report.report.subprocess.run') as run:
            extension, content = print_receipt([order], output='pdf')

        self.assertEqual(extension, 'odt')
        run.assert_not_called()
        self.assertIn(order.number, odt_paragraphs(content))

    @unittest.skipUnless(converter_available(),
        "LibreOffice (soffice, trytond's [report] convert_command) is not "
        "installed: the receipt's PDF cannot be made")
    @with_transaction()
    def test_pdf_with_libreoffice(self):
        "PDF asked where LibreOffice is installed: a PDF"
        cat = self.catalog('zh_CN')
        order = checkout(cat.student, cat.course_c)

        extension, content = print_receipt([order], output='pdf')

        self.assertEqual(extension, 'pdf')
        self.assertTrue(bytes(content).startswith(b'%PDF'), content[:20])

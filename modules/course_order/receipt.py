"""The order receipt: an OpenDocument report (receipt.fodt) of the order,
its lines, discounts, payment and refunds, in the company's language.

Modules add to it by extending `course.order.receipt`: the template shows
the payment and refund sections from `get_receipt_payments(order)` and
`get_receipt_refunds(order)` (see doc/receipt.rst)."""
import shlex
import shutil
from types import SimpleNamespace

from trytond import config
from trytond.i18n import gettext
from trytond.modules.company import CompanyReport
from trytond.modules.course.tools import now
from trytond.pool import Pool


def converter_available():
    """Is the program of trytond's `[report] convert_command` (LibreOffice's
    soffice by default) installed?"""
    command = config.get('report', 'convert_command', default='soffice')
    program = shlex.split(command)[:1]
    return bool(program and shutil.which(program[0]))


class OrderReceipt(CompanyReport):
    "Order Receipt"
    __name__ = 'course.order.receipt'

    @classmethod
    def get_context(cls, records, header, data):
        context = super().get_context(records, header, data)
        company = header.get('company')
        context['lang'] = cls.get_receipt_language(company)
        context['timezone'] = company.timezone if company else None
        context['printed_at'] = now()
        context['price_name'] = cls.get_receipt_price_name
        context['payments'] = cls.get_receipt_payments
        context['refunds'] = cls.get_receipt_refunds
        return context

    @classmethod
    def receipt_payment(cls, method, reference, paid_at, amount):
        "A payment as the receipt shows it"
        return SimpleNamespace(
            method=method, reference=reference or '', paid_at=paid_at,
            amount=amount)

    @classmethod
    def receipt_refund(cls, number, amount, state, refunded_at, reason):
        "A refund as the receipt shows it"
        return SimpleNamespace(
            number=number or '', amount=amount, state=state,
            refunded_at=refunded_at, reason=reason or '')

    @classmethod
    def convert(cls, report, data, *args, **kwargs):
        # Where the output asked (PDF) needs a converter that is not
        # installed, give the ODT at once: trytond would try 6 times and
        # log an error on every print before giving it
        output = report.extension or report.template_extension
        if (output != report.template_extension
                and not converter_available()):
            return report.template_extension, data
        return super().convert(report, data, *args, **kwargs)

    @classmethod
    def get_receipt_language(cls, company):
        """The language of the receipts of company: the company's, else the
        language of the user who prints (the school's document reads the
        same whoever prints it)"""
        Lang = Pool().get('ir.lang')
        party_lang = company.party.lang if company else None
        return Lang.get(party_lang.code if party_lang else None)

    @classmethod
    def get_receipt_price_name(cls, line):
        """The name of the line's price: the activity's name it was sold
        at, or the regular price's name in the receipt's language (the line
        keeps it in the language of the checkout)"""
        if line.activity or line.unit_price != line.list_price:
            return line.discount_name or ''
        return gettext('course.msg_regular_price_name')

    @classmethod
    def get_receipt_payments(cls, order):
        """The payments of the order (receipt_payment): here the order's
        own payment method once it is paid; modules recording payments
        (course_payment) extend it with super()"""
        if not order.paid_at:
            return []
        return [cls.receipt_payment(
                order.pay_method_string, None, order.paid_at,
                order.payable_amount)]

    @classmethod
    def get_receipt_refunds(cls, order):
        """The refunds of the order (receipt_refund): here the whole
        order's refund of its payment method; modules recording refunds
        (course_payment) extend it with super()"""
        if order.state not in {'refunding', 'refunded'}:
            return []
        return [cls.receipt_refund(
                None, order.payable_amount, order.state_string,
                order.refunded_at, None)]

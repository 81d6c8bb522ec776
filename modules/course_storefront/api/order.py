"order.*: the student's orders (another student's are not found)"
from decimal import Decimal
from typing import Annotated, Literal, Optional, Union

from pydantic import StringConstraints

from trytond.i18n import gettext
from trytond.modules.course.tools import lock_rows, now
from trytond.modules.course_payment.refund import REASON_SIZE
from trytond.pool import Pool

from ..errors import not_found, refused
from ..prelocks import remember_order
from ..values import money, when
from .registry import Params, Result, method
from .types import OrderNumber, Page, Size

ORDER_STATES = Literal[
    'unpaid', 'paid', 'cancelled', 'expired', 'refunding', 'refunded']


class LineResult(Result):
    course: Optional[int]
    degree: Optional[int]
    name: str
    option: Optional[int]
    list_price: str
    sale_price: str
    discount_name: str
    discount: str
    amount: str


class OrderResult(Result):
    number: str
    state: str
    title: str
    pay_method: str
    total: str
    coupon_discount: str
    credit_discount: str
    discount: str
    payable: str
    created_at: str
    pay_deadline: Optional[str]
    timeout_seconds: Optional[int]
    paid_at: Optional[str]
    cancelled_at: Optional[str]
    refunded_at: Optional[str]
    lines: list[LineResult]


class OrdersResult(Result):
    total: int
    page: int
    size: int
    items: list[OrderResult]


class PayResult(Result):
    url: str


class CodePayResult(Result):
    """A provider paid by scanning a QR code (WeChat Pay Native): the
    storefront renders code_url as the code, valid until time_expire"""
    code_url: str
    time_expire: Optional[str]


class ListParams(Params):
    state: Optional[ORDER_STATES] = None
    page: Page = 1
    size: Size = 5


class NumberParams(Params):
    number: OrderNumber


class RefundRequestParams(Params):
    number: OrderNumber
    reason: Annotated[str, StringConstraints(max_length=REASON_SIZE)]


class RefundRequestResult(Result):
    request: int
    state: str


def discount_totals(order):
    totals = {}
    for discount in order.discounts:
        totals[discount.kind] = (
            totals.get(discount.kind, Decimal(0)) + discount.amount)
    return totals


def order_head_json(call, order, totals, at):
    """The amounts and dates of an order (what order.create answers);
    totals is {kind: amount} of its discounts"""
    currency = call.currency
    # The order a later order.pay/cancel/sync locks: at its start
    remember_order(call.database, call.party.id, order.number, order.id)
    timeout = None
    if order.state == 'unpaid' and order.pay_deadline:
        timeout = max(0, int((order.pay_deadline - at).total_seconds()))
    return {
        'number': order.number,
        'state': order.state,
        'total': money(order.total_amount, currency),
        'coupon_discount': money(
            totals.get('coupon', Decimal(0)), currency),
        'credit_discount': money(
            totals.get('credit', Decimal(0)), currency),
        'payable': money(order.payable_amount, currency),
        'pay_deadline': when(order.pay_deadline, call.company),
        'timeout_seconds': timeout,
        }


def orders_json(call, orders):
    from .checkout import line_json
    currency = call.currency
    at = now()
    result = []
    for order in orders:
        lines = order.lines
        full = dict(order_head_json(
                call, order, discount_totals(order), at),
            title=order.title_of(lines) or '',
            pay_method=order.pay_method,
            discount=money(order.discount_amount, currency),
            created_at=when(order.create_date, call.company),
            paid_at=when(order.paid_at, call.company),
            cancelled_at=when(order.cancelled_at, call.company),
            refunded_at=when(order.refunded_at, call.company),
            lines=[dict(line_json(l, currency, l.amount),
                    name=l.rec_name,
                    discount=money(l.discount_amount, currency))
                for l in lines])
        # In the order the API reference shows them
        result.append({k: full[k] for k in OrderResult.model_fields})
    return result


def own_order(call, number, lock=False):
    """The student's order of that number; another student's, like an
    unknown one, is not found"""
    Order = Pool().get('course.order')
    orders = Order.search([
            ('number', '=', number),
            ('party', '=', call.party.id),
            ('company', '=', call.company.id),
            ], limit=1)
    if not orders:
        raise not_found(gettext(
                'course_storefront.msg_order_not_found', number=number))
    if lock:
        lock_rows(Order, orders)
    return orders[0]


def order_json(call, number):
    Order = Pool().get('course.order')
    order, = Order.search([('number', '=', number)], limit=1)
    return orders_json(call, [order])[0]


@method('order.list', ListParams, OrdersResult, readonly=True)
def list_(call, params):
    """The student's orders, newest first, of one state when given"""
    Order = Pool().get('course.order')
    domain = [
        ('party', '=', call.party.id),
        ('company', '=', call.company.id),
        ]
    if params.state:
        domain.append(('state', '=', params.state))
    total = Order.search_count(domain)
    orders = Order.search(
        domain, offset=(params.page - 1) * params.size, limit=params.size,
        order=[('id', 'DESC')])
    return {
        'total': total, 'page': params.page, 'size': params.size,
        'items': orders_json(call, orders),
        }


@method('order.get', NumberParams, OrderResult, readonly=True,
    errors=['not_found'])
def get(call, params):
    """One of the student's orders"""
    return orders_json(call, [own_order(call, params.number)])[0]


@method('order.cancel', NumberParams, OrderResult,
    errors=['not_found', 'order.not_unpaid'], locks_party=True,
    locks_order=True)
def cancel(call, params):
    """Cancel an unpaid order: its coupons and points come back"""
    Order = Pool().get('course.order')
    order = own_order(call, params.number, lock=True)
    if order.state != 'unpaid':
        raise refused('order.not_unpaid', gettext(
                'course_storefront.msg_order_not_unpaid',
                number=order.number, state=order.state_string))
    Order.cancel([order])
    return order_json(call, order.number)


@method('order.pay', NumberParams,
    Union[PayResult, CodePayResult, OrderResult],
    errors=['not_found', 'order.not_unpaid', 'order.pay_method',
        'wallet.balance_short', 'payment.provider_missing',
        'payment.provider_error'], locks_party=True, locks_order=True)
def pay(call, params):
    """Pay an unpaid order again: the provider's page ({url}), the QR code
    to scan ({code_url, time_expire}: WeChat Pay) or, for the wallet, the
    order paid at once"""
    pool = Pool()
    Order = pool.get('course.order')
    Payment = pool.get('course.payment')
    order = own_order(call, params.number, lock=True)
    if order.state != 'unpaid' or (
            order.pay_deadline and order.pay_deadline <= now()):
        raise refused('order.not_unpaid', gettext(
                'course_storefront.msg_order_not_unpaid',
                number=order.number, state=order.state_string))
    if Payment.is_provider(order.pay_method):
        answer = Payment.start(order)
        if 'code_url' in answer:
            return {'code_url': answer['code_url'],
                'time_expire': answer.get('time_expire')}
        return {'url': answer['url']}
    start = Order._get_payment_hook('start', order.pay_method)
    if order.pay_method == 'manual' or start is None:
        raise refused('order.pay_method', gettext(
                'course_storefront.msg_pay_method_offline',
                method=order.pay_method_string))
    start([order])
    return order_json(call, order.number)


@method('order.sync', NumberParams, OrderResult,
    errors=['not_found', 'payment.provider_error'], locks_party=True,
    locks_order=True)
def sync(call, params):
    """Ask the payment provider whether the order is paid; return it"""
    Payment = Pool().get('course.payment')
    order = own_order(call, params.number, lock=True)
    if order.state == 'unpaid' and Payment.is_provider(order.pay_method):
        Payment.query(Payment.search([
                    ('order', '=', order.id), ('state', '=', 'pending')]))
    return order_json(call, order.number)


@method('order.refund_request', RefundRequestParams, RefundRequestResult,
    errors=['not_found', 'order.not_refundable', 'refund.request_open',
        'refund.reason_required'])
def refund_request(call, params):
    """Ask for the refund of a paid order, with a reason; staff decide"""
    Request = Pool().get('course.payment.refund.request')
    order = own_order(call, params.number)
    request_id = Request.request_refund(order.id, params.reason)
    return {'request': request_id, 'state': Request(request_id).state}

"""checkout.preview and order.create: the selected cart items through the
same checkout pipeline as staff and scripts (course.order.checkout)"""
from decimal import Decimal
from typing import Optional

from pydantic import Field
from typing_extensions import Annotated

from trytond.i18n import gettext
from trytond.pool import Pool

from ..cartstore import cart_store
from ..errors import refused
from ..values import money
from .cart import cart_items
from .registry import Params, Result, method
from .types import Id, Money, Points

MAX_COUPONS = 10
Coupons = Annotated[list[Id], Field(max_length=MAX_COUPONS)]
PayMethod = Annotated[str, Field(min_length=1, max_length=50)]


class PreviewParams(Params):
    coupons: Optional[Coupons] = None
    credit: Optional[Points] = None


class CreateParams(PreviewParams):
    pay_method: PayMethod
    expect_payable: Optional[Money] = None


class PreviewLineResult(Result):
    course: int
    name: str
    option: Optional[int]
    list_price: str
    sale_price: str
    discount_name: str
    discount: str
    amount: str


class UsableCouponResult(Result):
    grant: int
    name: str
    formula: str
    discount: str
    courses: list[int]
    scope: str


class CreditResult(Result):
    balance: int
    ratio: int
    max_usable: int


class PreviewResult(Result):
    lines: list[PreviewLineResult]
    total: str
    coupon_discount: str
    credit_discount: str
    payable: str
    usable_coupons: list[UsableCouponResult]
    credit: CreditResult
    stacking: str


class CreatedResult(Result):
    number: str
    state: str
    total: str
    coupon_discount: str
    credit_discount: str
    payable: str
    pay_deadline: Optional[str]
    timeout_seconds: Optional[int]


CHECKOUT_ERRORS = [
    'cart.unavailable', 'cart.nothing_selected', 'cart.course_owned',
    'cart.course_pending', 'cart.course_unavailable',
    'cart.option_unavailable', 'coupon.not_found', 'coupon.not_applicable',
    'coupon.not_available', 'coupon.expired', 'coupon.not_yet_valid',
    'coupon.twice', 'coupon.stacking', 'checkout.discounts_not_combinable',
    'credit.over_limit', 'credit.inexact']


def selected_items(call):
    "The checkout items of the cart's selected courses"
    items = [{'course': c.id, 'option': o.id if o else None}
        for i, c, o in cart_items(call) if i.selected]
    if not items:
        raise refused('cart.nothing_selected', gettext(
                'course_storefront.msg_nothing_selected'))
    return items


def own_grants(call, ids):
    """Refuse a grant that is not the student's as one that does not exist:
    the checkout's "not yours" names the grant's code, and a printed code
    nobody redeemed yet would be read by trying ids"""
    Grant = Pool().get('course.coupon.grant')
    own = {g.id for g in Grant.search([
                ('id', 'in', list(ids)),
                ('party', '=', call.party.id),
                ('company', '=', call.company.id),
                ])}
    for grant_id in ids:
        if grant_id not in own:
            raise refused('coupon.not_found', gettext(
                    'course_coupon.msg_checkout_grant_unknown', id=grant_id))


def checkout_options(call, params):
    options = {}
    if params.coupons:
        own_grants(call, params.coupons)
        options['grants'] = list(params.coupons)
    if params.credit:
        options['credit'] = params.credit
    return options


def discount_of(checkout, kind):
    return sum((d.amount for d in checkout.discounts if d.kind == kind),
        Decimal(0))


def usable_coupons_json(usable, currency):
    "The usable coupons with their discounts as text, each amount once"
    texts = {}
    for u in usable:
        if u['discount'] not in texts:
            texts[u['discount']] = money(u['discount'], currency)
    return [dict(u, discount=texts[u['discount']]) for u in usable]


@method('checkout.preview', PreviewParams, PreviewResult, readonly=True,
    errors=CHECKOUT_ERRORS)
def preview(call, params):
    """What an order of the selected cart items would cost with these
    coupons and points, which coupons are usable and how many points"""
    Order = Pool().get('course.order')
    currency = call.company.currency
    checkout = Order.checkout_preview(
        call.party.id, selected_items(call), checkout_options(call, params))
    info = Order.checkout_preview_info(checkout)
    return {
        'lines': [{
                'course': l.course.id,
                'name': l.course.name,
                'option': l.option.id if l.option else None,
                'list_price': money(l.list_price, currency),
                'sale_price': money(l.unit_price, currency),
                'discount_name': l.discount_name or '',
                'discount': money(
                    l.unit_price - checkout.remaining[l], currency),
                'amount': money(checkout.remaining[l], currency),
                } for l in checkout.lines],
        'total': money(checkout.total, currency),
        'coupon_discount': money(discount_of(checkout, 'coupon'), currency),
        'credit_discount': money(discount_of(checkout, 'credit'), currency),
        'payable': money(checkout.payable, currency),
        'usable_coupons': usable_coupons_json(info['usable_coupons'], currency),
        'credit': info['credit'],
        'stacking': info['stacking'],
        }


@method('order.create', CreateParams, CreatedResult,
    errors=CHECKOUT_ERRORS + [
        'order.payable_changed', 'checkout.pay_method_unknown',
        'checkout.not_free', 'credit.balance_short', 'wallet.balance_short',
        'payment.provider_missing', 'payment.provider_error'],
    locks_party=True)
def create(call, params):
    """Order the selected cart items with these coupons and points; they
    leave the cart once the order is committed.  With expect_payable (what
    the student saw), a different payable creates nothing."""
    from .order import orders_json
    Order = Pool().get('course.order')
    items = selected_items(call)
    order = Order.checkout(
        call.party.id, items, params.pay_method,
        checkout_options(call, params))
    currency = call.company.currency
    if params.expect_payable is not None:
        expected = currency.round(Decimal(params.expect_payable))
        if expected != order.payable_amount:
            raise refused('order.payable_changed', gettext(
                    'course_storefront.msg_payable_changed',
                    expected=money(expected, currency),
                    payable=money(order.payable_amount, currency)),
                expected=money(expected, currency),
                payable=money(order.payable_amount, currency))
    cart_store(call).remove(
        call.user, [i['course'] for i in items], after_commit_only=True)
    full, = orders_json(call, [order])
    return {k: full[k] for k in CreatedResult.model_fields}



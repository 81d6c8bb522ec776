"""checkout.preview and order.create: the selected cart items through the
same checkout pipeline as staff and scripts (course.order.checkout).

A degree program (module course_degree) is not a cart item: it is bought
on its own, the param `degree` (with `degree_option`) naming it; the
order then holds that program only and the cart is left as it is."""
from decimal import Decimal
from typing import Optional

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError
from typing_extensions import Annotated

from trytond.i18n import gettext
from trytond.modules.course.tools import now
from trytond.pool import Pool

from ..cartstore import cart_store
from ..errors import not_found, refused
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
    degree: Optional[Id] = None
    degree_option: Optional[Id] = None

    @model_validator(mode='after')
    def _option_of_degree(self):
        if self.degree_option is not None and self.degree is None:
            raise PydanticCustomError(
                'degree_missing', "degree_option needs degree")
        return self


class CreateParams(PreviewParams):
    pay_method: PayMethod
    expect_payable: Optional[Money] = None


class PreviewLineResult(Result):
    course: Optional[int]
    degree: Optional[int]
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
    'credit.over_limit', 'credit.inexact', 'not_found', 'degree.enrolled',
    'degree.pending', 'degree.unavailable', 'cart.course_not_sold_alone']


def selected_items(call, params=None):
    """The checkout items: the program of params.degree (the cart is not
    used then), else the cart's selected courses"""
    if params is not None and params.degree is not None:
        return [degree_item(call, params.degree, params.degree_option)]
    items = [{'course': c.id, 'option': o.id if o else None}
        for i, c, o in cart_items(call) if i.selected]
    if not items:
        raise refused('cart.nothing_selected', gettext(
                'course_storefront.msg_nothing_selected'))
    return items


def degree_item(call, degree_id, option_id):
    """The checkout item of a published program of the company (and its
    option); not found otherwise, or where course_degree is not activated"""
    pool = Pool()
    try:
        Degree = pool.get('course.degree')
    except KeyError:
        Degree = None
    degrees = Degree.search([
            ('id', '=', degree_id),
            ('published', '=', True),
            ('company', '=', call.company.id),
            ], limit=1) if Degree else []
    if not degrees:
        raise not_found(gettext(
                'course_storefront.msg_degree_not_found', id=degree_id))
    if option_id is not None and option_id not in {
            o.id for o in degrees[0].options}:
        raise not_found(gettext(
                'course_storefront.msg_degree_option_not_found',
                id=option_id, degree=degrees[0].name))
    return {'degree': degree_id, 'option': option_id}


def line_json(line, currency, amount):
    "The common fields of an order line or a preview line"
    option = line.option or getattr(line, 'degree_option', None)
    product = None if line.course else line.product
    degree = (product.id if product
        and product.__name__ == 'course.degree' else None)
    return {
        'course': line.course.id if line.course else None,
        'degree': degree,
        'name': line.course.name if line.course else product.rec_name,
        'option': option.id if option else None,
        'list_price': money(line.list_price, currency),
        'sale_price': money(line.unit_price, currency),
        'discount_name': line.discount_name or '',
        'discount': money(line.unit_price - amount, currency),
        'amount': money(amount, currency),
        }


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
    return checkout.discount_totals.get(kind, Decimal(0))


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
    """What an order of the selected cart items (or of the program of
    degree) would cost with these coupons and points, which coupons are
    usable and how many points"""
    Order = Pool().get('course.order')
    currency = call.currency
    checkout = Order.checkout_preview(
        call.party.id, selected_items(call, params),
        checkout_options(call, params))
    info = Order.checkout_preview_info(checkout)
    return {
        'lines': [line_json(l, currency, checkout.remaining[l])
            for l in checkout.lines],
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
    leave the cart once the order is committed.  With degree, the order is
    of that program (with degree_option) alone and the cart stays.  With expect_payable (what
    the student saw), a different payable creates nothing."""
    from .order import order_head_json
    Order = Pool().get('course.order')
    items = selected_items(call, params)
    checkout = Order.checkout_run(
        call.party.id, items, params.pay_method,
        checkout_options(call, params))
    order = checkout.order
    currency = call.currency
    if params.expect_payable is not None:
        expected = currency.round(Decimal(params.expect_payable))
        if expected != order.payable_amount:
            raise refused('order.payable_changed', gettext(
                    'course_storefront.msg_payable_changed',
                    expected=money(expected, currency),
                    payable=money(order.payable_amount, currency)),
                expected=money(expected, currency),
                payable=money(order.payable_amount, currency))
    courses = [i['course'] for i in items if 'course' in i]
    if courses:
        cart_store(call).remove(call.user, courses, after_commit_only=True)
    # From what the checkout saved: nothing read back
    return order_head_json(call, order, checkout.discount_totals, now())



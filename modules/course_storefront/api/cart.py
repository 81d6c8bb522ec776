"cart.*: the student's cart (Redis or the database, see cartstore)"
from decimal import Decimal
from typing import Optional

from trytond.i18n import gettext
from trytond.pool import Pool
from trytond.transaction import Transaction

from ..cartstore import cart_store
from ..errors import not_found, refused
from ..values import money
from .registry import Params, Result, method
from .types import Id

MAX_ITEMS = 50
CART_ERRORS = ['cart.unavailable']


class CartItemResult(Result):
    course: int
    name: str
    option: Optional[int]
    list_price: str
    sale_price: str
    discount_name: str
    selected: bool
    credit: int


class CartResult(Result):
    items: list[CartItemResult]
    selected_total: str


class AddParams(Params):
    course: Id
    option: Optional[Id] = None


class CourseParams(Params):
    course: Id


class SelectParams(Params):
    course: Id
    selected: bool


class SelectAllParams(Params):
    selected: bool


class OptionParams(Params):
    course: Id
    option: Optional[Id]


def courses_on_sale(call, ids):
    "{id: course} of the courses of ids on sale, read in one query"
    Course = Pool().get('course.course')
    return {c.id: c for c in Course.search([
                ('id', 'in', list(ids)),
                ('published', '=', True),
                ('company', '=', call.company.id),
                ])}


def cart_items(call, on_sale=None):
    """[(CartItem, course, option)] of the cart whose course is still on
    sale (the others are left out), records read in one query each;
    on_sale: {id: course} of the courses on sale when the caller read them
    already (it holds every course of the cart that is on sale)"""
    Option = Pool().get('course.course.option')
    items = cart_store(call).items(call.user)
    courses = on_sale if on_sale is not None else courses_on_sale(
        call, {i.course for i in items})
    # Searched even without options: the same statements for any cart
    options = {o.id: o for o in Option.search(
            [('id', 'in', [i.option for i in items if i.option])])}
    result = []
    for item in items:
        course = courses.get(item.course)
        option = options.get(item.option)
        if course is None or (item.option and (
                    option is None or option.course != course)):
            continue
        result.append((item, course, option))
    return result


def cart_json(call, on_sale=None):
    Course = Pool().get('course.course')
    rows = cart_items(call, on_sale)
    prices = Course.get_sale_prices([(c, o) for _, c, o in rows])
    # The names in one read: a course's name (translated) is not among the
    # columns its search fetched, and reading it record by record costs a
    # query per course
    names = {r['id']: r['name'] for r in Course.read(
            [c.id for _, c, _ in rows], ['name'])}
    currency = call.currency
    items, total = [], Decimal(0)
    for (item, course, option), price in zip(rows, prices):
        if item.selected:
            total += price.unit_price
        items.append({
                'course': course.id,
                'name': names[course.id],
                'option': option.id if option else None,
                'list_price': money(price.list_price, currency),
                'sale_price': money(price.unit_price, currency),
                'discount_name': price.discount_name or '',
                'selected': item.selected,
                'credit': course.credit or 0,
                })
    return {'items': items, 'selected_total': money(total, currency)}


def course_on_sale(call, course_id, on_sale=None):
    "The course of course_id on sale (looked up in on_sale when given)"
    if on_sale is None:
        on_sale = courses_on_sale(call, [course_id])
    if course_id not in on_sale:
        raise not_found(gettext(
                'course_storefront.msg_course_not_found', id=course_id))
    return on_sale[course_id]


def option_of(course, option_id):
    Option = Pool().get('course.course.option')
    if option_id is None:
        return None
    options = Option.search([
            ('id', '=', option_id), ('course', '=', course.id)])
    if not options:
        raise not_found(gettext(
                'course_storefront.msg_option_not_found', id=option_id,
                course=course.name))
    return options[0]


def in_cart(call, course_id):
    store = cart_store(call)
    if course_id not in {i.course for i in store.items(call.user)}:
        raise not_found(gettext(
                'course_storefront.msg_not_in_cart', id=course_id))
    return store


@method('cart.get', result=CartResult, readonly=True, errors=CART_ERRORS)
def get(call, params):
    """The cart: each course with its option, prices now and selected
    flag, and the total of the selected ones"""
    return cart_json(call)


@method('cart.add', AddParams, CartResult, errors=CART_ERRORS + [
        'not_found', 'cart.course_owned', 'cart.full'])
def add(call, params):
    """Put a course (with an option) in the cart, selected; refused when
    the student owns it or it is not on sale"""
    Order = Pool().get('course.order')
    store = cart_store(call)
    items = store.items(call.user)
    # The course and those of the cart in one query: the answer lists them
    on_sale = courses_on_sale(
        call, {i.course for i in items} | {params.course})
    course = course_on_sale(call, params.course, on_sale)
    option = option_of(course, params.option)
    with Transaction().set_context(_check_access=False):
        Order.check_not_owned(call.party, [course])
    if (len(items) >= MAX_ITEMS
            and course.id not in {i.course for i in items}):
        raise refused('cart.full', gettext(
                'course_storefront.msg_cart_full', maximum=MAX_ITEMS))
    store.put(call.user, course.id, option.id if option else None)
    return cart_json(call, on_sale)


@method('cart.remove', CourseParams, CartResult,
    errors=CART_ERRORS + ['not_found'])
def remove(call, params):
    """Take a course out of the cart"""
    in_cart(call, params.course).remove(call.user, [params.course])
    return cart_json(call)


@method('cart.select', SelectParams, CartResult,
    errors=CART_ERRORS + ['not_found'])
def select(call, params):
    """Select a course of the cart for the next order, or not"""
    in_cart(call, params.course).select(
        call.user, [params.course], params.selected)
    return cart_json(call)


@method('cart.select_all', SelectAllParams, CartResult, errors=CART_ERRORS)
def select_all(call, params):
    """Select every course of the cart, or none"""
    cart_store(call).select(call.user, None, params.selected)
    return cart_json(call)


@method('cart.set_option', OptionParams, CartResult,
    errors=CART_ERRORS + ['not_found'])
def set_option(call, params):
    """Choose the option (validity) of a course in the cart; null for the
    course's own price"""
    store = in_cart(call, params.course)
    course = course_on_sale(call, params.course)
    option = option_of(course, params.option)
    store.set_option(call.user, course.id, option.id if option else None)
    return cart_json(call)

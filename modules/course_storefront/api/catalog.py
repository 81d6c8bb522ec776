"catalog.*: what is published, with today's prices (public)"
from typing import Optional

from trytond.i18n import gettext
from trytond.pool import Pool

from ..errors import not_found
from ..values import money, when
from .registry import Params, Result, method
from .types import Id, Page, Size, Text


class NamedResult(Result):
    id: int
    name: str


class CategoryResult(NamedResult):
    direction: int


class OptionResult(Result):
    id: int
    name: str
    days: Optional[int]
    price: str
    sale_price: str


class CourseResult(Result):
    id: int
    name: str
    direction: NamedResult
    category: NamedResult
    price: str
    sale_price: str
    discount_name: str
    activity_end: Optional[str]
    credit: int
    options: list[OptionResult]


class CoursesResult(Result):
    total: int
    page: int
    size: int
    items: list[CourseResult]


class CategoriesParams(Params):
    direction: Optional[Id] = None


class CoursesParams(Params):
    direction: Optional[Id] = None
    category: Optional[Id] = None
    search: Optional[Text] = None
    page: Page = 1
    size: Size = 10


class CourseParams(Params):
    id: Id


def published_domain(call):
    return [
        ('published', '=', True),
        ('company', '=', call.company.id),
        ]


def courses_json(call, courses):
    """The courses as the catalog shows them, priced now (the prices of
    every course and option in one query of the running activities)"""
    Course = Pool().get('course.course')
    pairs = [(c, None) for c in courses] + [
        (c, o) for c in courses for o in c.options]
    prices = dict(zip(
            [(c.id, o.id if o else None) for c, o in pairs],
            Course.get_sale_prices(pairs)))
    currency = call.currency
    result = []
    for course in courses:
        price = prices[course.id, None]
        activity = price.activity
        result.append({
                'id': course.id,
                'name': course.name,
                'direction': named(course.direction),
                'category': named(course.category),
                'price': money(price.list_price, currency),
                'sale_price': money(price.unit_price, currency),
                'discount_name': price.discount_name or '',
                'activity_end': when(
                    activity.end if activity else None, call.company),
                'credit': course.credit or 0,
                'options': [{
                        'id': o.id, 'name': o.name, 'days': o.days,
                        'price': money(prices[course.id, o.id].list_price,
                            currency),
                        'sale_price': money(
                            prices[course.id, o.id].unit_price, currency),
                        } for o in course.options],
                })
    return result


def named(record):
    return {'id': record.id, 'name': record.name}


@method('catalog.directions', result=list[NamedResult], auth=False,
    readonly=True)
def directions(call, params):
    """The directions (fields of study)"""
    Direction = Pool().get('course.direction')
    return [named(d) for d in Direction.search([], order=[('id', 'ASC')])]


@method('catalog.categories', CategoriesParams, list[CategoryResult],
    auth=False, readonly=True)
def categories(call, params):
    """The categories, of one direction when given"""
    Category = Pool().get('course.category')
    domain = []
    if params.direction is not None:
        domain.append(('direction', '=', params.direction))
    return [dict(named(c), direction=c.direction.id)
        for c in Category.search(domain, order=[('id', 'ASC')])]


@method('catalog.courses', CoursesParams, CoursesResult, auth=False,
    readonly=True)
def courses(call, params):
    """The published courses, filtered and paged (newest first)"""
    Course = Pool().get('course.course')
    domain = published_domain(call)
    if params.direction is not None:
        domain.append(('direction', '=', params.direction))
    if params.category is not None:
        domain.append(('category', '=', params.category))
    if params.search:
        domain.append(('name', 'ilike', '%' + escape_like(params.search)
                + '%'))
    total = Course.search_count(domain)
    records = Course.search(
        domain, offset=(params.page - 1) * params.size, limit=params.size,
        order=[('id', 'DESC')])
    return {
        'total': total, 'page': params.page, 'size': params.size,
        'items': courses_json(call, records),
        }


def escape_like(text):
    return (text.replace('\\', '\\\\').replace('%', '\\%')
        .replace('_', '\\_'))


@method('catalog.course', CourseParams, CourseResult, auth=False,
    readonly=True, errors=['not_found'])
def course(call, params):
    """One published course with its options"""
    Course = Pool().get('course.course')
    records = Course.search(
        published_domain(call) + [('id', '=', params.id)])
    if not records:
        raise not_found(gettext(
                'course_storefront.msg_course_not_found', id=params.id))
    return courses_json(call, records)[0]

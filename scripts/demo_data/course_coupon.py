"""Demo data of the module course_coupon: the five fixture coupons of seed
001 (luffycity's ``ly_coupon`` rows), moved to today's dates and mapped onto
the demo catalog, with their grants, plus a batch of printed codes.

- 30元通用优惠券: general, -30 from 100, granted to 张伟;
- 前端学习通用优惠券: direction 前端开发, -50, granted to 张伟 and 李娜;
- Typescript课程专用券: the two Vue courses, *0.88, granted to 张伟;
- python七夕专用券: categories Web 开发 and 自动化运维, -99, claimed by the
  students themselves (seed: get_type 1), 张伟 has claimed one;
- 算法学习优惠券: category 机器学习, *0.85 from 200, granted to 张伟;
- 20 codes of the 30元 coupon for printed cards;
- 李娜 buys 微信小程序开发 with her 前端 coupon, paid by hand (grant used);
  张伟 checks out Vue 3 + TypeScript 商城前台 with his Typescript coupon
  and has not paid yet (grant reserved).

Idempotent: a coupon is identified by its name, a grant by its coupon and
student, codes by their coupon; only what is missing is created.
"""
import datetime as dt
from decimal import Decimal

from proteus import Model
from proteus.config import get_config

from trytond.modules.course.tools import now as utcnow

from .course import COMPANY_NAME, get_students

ZHANG = 'zhang.wei@example.com'
LI = 'li.na@example.com'
CODES = 20

# (student e-mail, coupon, course, confirm the payment)
ORDERS = [
    (LI, "前端学习通用优惠券", "微信小程序开发", True),
    (ZHANG, "Typescript课程专用券", "Vue 3 + TypeScript 商城前台", False),
    ]

# (name, formula, condition, scope, scope names, issue mode, total,
#  days valid from today, [students])
COUPONS = [
    ("30元通用优惠券", '-30', '100', 'general', [], 'grant', 10000, 40,
        [ZHANG]),
    ("前端学习通用优惠券", '-50', '0', 'direction', ["前端开发"], 'grant',
        100, 90, [ZHANG, LI]),
    ("Typescript课程专用券", '*0.88', '0', 'course',
        ["Vue.js 从入门到精通", "Vue 3 + TypeScript 商城前台"], 'grant',
        1000, 90, [ZHANG]),
    ("python七夕专用券", '-99', '0', 'category', ["Web 开发", "自动化运维"],
        'claim', 200, 30, [ZHANG]),
    ("算法学习优惠券", '*0.85', '200', 'category', ["机器学习"], 'grant',
        1000, 120, [ZHANG]),
    ]
SCOPE_MODELS = {
    'direction': ('directions', 'course.direction'),
    'category': ('categories', 'course.category'),
    'course': ('courses', 'course.course'),
    }


def load():
    config = get_config()
    Company = Model.get('company.company')
    company, = Company.find([('party.name', '=', COMPANY_NAME)])
    students = get_students()
    Coupon = Model.get('course.coupon')
    Grant = Model.get('course.coupon.grant')
    coupons = {}
    for values in COUPONS:
        coupon = get_coupon(company, *values[:8])
        coupons[coupon.name] = coupon
        for email in values[8]:
            party = students[email]
            if Grant.find([
                        ('coupon', '=', coupon.id),
                        ('party', '=', party.id),
                        ], limit=1):
                continue
            if coupon.issue_mode == 'claim':
                Coupon.claim([coupon.id], party.id, config.context)
            else:
                Coupon.grant(
                    [coupon.id], [party.id], 'script', config.context)
    first = coupons[COUPONS[0][0]]
    if not Grant.find([
                ('coupon', '=', first.id),
                ('origin', '=', 'code'),
                ], limit=1):
        Coupon.generate([first.id], CODES, config.context)
    load_orders(company, students, coupons)


def load_orders(company, students, coupons):
    "Checkout with a grant of the student; skipped once the grant is taken"
    config = get_config()
    Grant = Model.get('course.coupon.grant')
    Course = Model.get('course.course')
    Order = Model.get('course.order')
    for email, coupon_name, course_name, paid in ORDERS:
        grants = Grant.find([
                ('coupon', '=', coupons[coupon_name].id),
                ('party', '=', students[email].id),
                ('state', '=', 'available'),
                ], limit=1)
        if not grants:
            continue
        course, = Course.find([
                ('company', '=', company.id), ('name', '=', course_name)])
        try:
            order = Order.checkout(
                students[email].id, [{'course': course.id}], 'manual',
                {'grants': [grants[0].id]}, config.context)
        except Exception as error:  # a refusal: leave the demo as it is
            print(f"    skipped the order of {email}: {error}", flush=True)
            continue
        if paid:
            Order(order).click('confirm_payment')


def get_coupon(company, name, formula, condition, scope, scope_names,
        issue_mode, total, days):
    Coupon = Model.get('course.coupon')
    found = Coupon.find([('name', '=', name)], limit=1)
    if found:
        return found[0]
    now = utcnow()
    coupon = Coupon(
        company=company, name=name, formula=formula,
        condition=Decimal(condition), scope=scope, issue_mode=issue_mode,
        total=total, per_party_limit=1,
        valid_start=now - dt.timedelta(days=1),
        valid_end=now + dt.timedelta(days=days))
    if issue_mode == 'claim':
        coupon.claim_start = now - dt.timedelta(days=1)
        coupon.claim_end = now + dt.timedelta(days=days)
    if scope in SCOPE_MODELS:
        field, model = SCOPE_MODELS[scope]
        Target = Model.get(model)
        records = Target.find([('name', 'in', scope_names)])
        assert len(records) == len(scope_names), (name, scope_names)
        getattr(coupon, field).extend(records)
    coupon.save()
    return coupon

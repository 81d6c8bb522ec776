"""Demo data of the module course_order: orders of the demo students in
every state the sales staff see in the order tabs.

- unpaid: three orders waiting for a manual payment (deadline in a day: the
  demo sets the configuration's order timeout to 86400 s when it is still
  the default 900 s, so they outlive a coffee break);
- paid: two orders confirmed by hand (with their enrollments) and one free
  order (a course made free by the running price activity), paid at once;
- cancelled: one order cancelled by the student;
- expired: one order past its deadline, expired by the scheduled job
  (``course.order|expire_overdue``, run once);
- refunded: one order paid, then refunded (its enrollment ended);
- the courses the students own from before: paid orders (confirmed by
  hand) and free orders of the free course, so that every enrollment of
  the demo but the gift comes from a paid order line and the audit of
  orders (``course.order.audit``) finds nothing.  The workflow starts an
  enrollment when its order is paid, so these start when the demo is
  built: the demo has no backdated history (an enrollment that already
  ended, like a course bought months ago, cannot be made).  A demo
  database built before keeps the enrollments its loader wrote without
  order (these orders are then skipped) until ``demo.py --rebuild``.

The orders go through the real workflow (``checkout``, the buttons, the
cron job), as the storefront and the staff would, so they hold consistent
lines, amounts, enrollments and history.

Idempotent: an order of the list is identified by its student and first
course; it is created only when that student has no order of that course
yet.  Only the unpaid ones are created again when the scheduler has expired
them meanwhile (an old demo database left more than a day), so the Unpaid
tab is never empty.  A course the student meanwhile owns or has in another
unpaid order is skipped: checkout would refuse it.
"""
import datetime as dt

from proteus import Model
from proteus.config import get_config

from . import as_root
from .course import COMPANY_NAME, get_students

DEMO_ORDER_TIMEOUT = 24 * 60 * 60
DEFAULT_ORDER_TIMEOUT = 900

# (student e-mail, [(course, option or None), ...], state)
# The courses are chosen against the gift of the course demo data
# (checkout refuses a course the student owns) and each course appears at
# most once per student.  The courses owned from before come last, so the
# ids and numbers of the orders above stay those the tests and the
# Storefront API examples know.
ORDERS = [
    ('chen.jing@example.com',
        [("Django 企业级项目实战", "一个月有效")], 'unpaid'),
    ('li.na@example.com',
        [("深度学习与 PyTorch", "三个月有效"),
            ("Docker 与 Kubernetes 实战", None)], 'unpaid'),
    ('zhang.wei@example.com',
        [("机器学习入门", "永久有效")], 'unpaid'),
    ('wang.fang@example.com',
        [("深度学习与 PyTorch", "永久有效")], 'paid'),
    ('liu.yang@example.com',
        [("Docker 与 Kubernetes 实战", None)], 'paid'),
    # Free through the running activity: paid at checkout
    ('chen.jing@example.com',
        [("Flask 轻量级 Web 开发", "永久有效")], 'paid'),
    ('zhang.wei@example.com',
        [("Vue 3 + TypeScript 商城前台", None)], 'cancelled'),
    ('li.na@example.com',
        [("微信小程序开发", "一个月有效")], 'expired'),
    ('chen.jing@example.com',
        [("uni-app 跨端开发", None)], 'refunded'),
    # Owned from before; "Python 零基础入门" is free: paid at checkout
    ('zhang.wei@example.com', [("Python 零基础入门", None)], 'paid'),
    ('zhang.wei@example.com',
        [("Django 企业级项目实战", "永久有效")], 'paid'),
    ('wang.fang@example.com', [("机器学习入门", "一个月有效")], 'paid'),
    ('liu.yang@example.com', [("Python 零基础入门", None)], 'paid'),
    ('liu.yang@example.com', [("Linux 自动化运维", "三个月有效")], 'paid'),
    ]

EXPIRE_METHOD = 'course.order|expire_overdue'


def now():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def load():
    config = get_config()
    company = get_company()
    set_order_timeout()
    cron = get_expire_cron(company)
    students = get_students({email for email, _, _ in ORDERS})
    courses = get_courses(company)
    for email, items, state in ORDERS:
        party = students[email]
        pairs = [(courses[c], option(courses[c], o)) for c, o in items]
        if present(party, pairs[0][0], state):
            continue
        if not can_order(party, [c for c, _ in pairs]):
            print(f"    skipped an order of {email}: a course is owned "
                "or pending", flush=True)
            continue
        create_order(config, party, pairs, state, cron)


def get_company():
    Company = Model.get('company.company')
    company, = Company.find([('party.name', '=', COMPANY_NAME)])
    return company


def set_order_timeout():
    "A day to pay the demo orders (unless someone chose another timeout)"
    Configuration = Model.get('course.configuration')
    configuration = Configuration(1)
    if configuration.order_timeout in {None, DEFAULT_ORDER_TIMEOUT}:
        configuration.order_timeout = DEMO_ORDER_TIMEOUT
        configuration.save()


def get_expire_cron(company):
    "The expiry job, run for the demo company"
    Cron = Model.get('ir.cron')
    Company = Model.get('company.company')
    cron, = Cron.find([('method', '=', EXPIRE_METHOD)])
    if company not in cron.companies:
        cron.companies.append(Company(company.id))
        cron.save()
    return cron



def get_courses(company):
    "{name: course} of the courses the orders use"
    Course = Model.get('course.course')
    names = sorted({c for _, items, _ in ORDERS for c, _ in items})
    courses = {c.name: c for c in Course.find([
                ('company', '=', company.id),
                ('name', 'in', names),
                ])}
    missing = set(names) - set(courses)
    if missing:
        raise LookupError(f"Demo courses not found: {sorted(missing)}")
    return courses


def option(course, name):
    if name is None:
        return None
    for option in course.options:
        if option.name == name:
            return option
    raise LookupError(f"No option {name!r} on the course {course.name!r}")


def present(party, course, state):
    """Is the order of (party, course) already there?  For an unpaid one,
    only an order the scheduler has not expired counts."""
    Order = Model.get('course.order')
    domain = [
        ('party', '=', party.id),
        ('lines.course', '=', course.id),
        ]
    if state == 'unpaid':
        domain.append(('state', '!=', 'expired'))
    return bool(Order.find(domain, limit=1))


def can_order(party, courses):
    "Would checkout accept these courses for the party?"
    Enrollment = Model.get('course.enrollment')
    Line = Model.get('course.order.line')
    ids = [c.id for c in courses]
    owned = [e for e in Enrollment.find([
                ('party', '=', party.id),
                ('course', 'in', ids),
                ]) if e.state == 'live']
    pending = Line.find([
            ('order.party', '=', party.id),
            ('order.state', '=', 'unpaid'),
            ('course', 'in', ids),
            ], limit=1)
    return not owned and not pending


def create_order(config, party, pairs, state, cron):
    Order = Model.get('course.order')
    items = [{'course': c.id, 'option': o.id if o else None}
        for c, o in pairs]
    order = Order(Order.checkout(party.id, items, 'manual', config.context))
    if state == 'unpaid' or order.state == state:
        return order
    if state in {'paid', 'refunded'}:
        order.click('confirm_payment')
        if state == 'refunded':
            order.click('refund')
    elif state == 'cancelled':
        order.click('cancel')
    elif state == 'expired':
        # No user may move a deadline: the demo lets the time pass as root
        with as_root():
            Order.write([order.id], {
                    'pay_deadline': now() - dt.timedelta(minutes=5),
                    }, config.context)
        cron.click('run_once')
    order.reload()
    if order.state != state:
        raise RuntimeError(
            f"Demo order {order.number} is {order.state}, not {state}")
    return order

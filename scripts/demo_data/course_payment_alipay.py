"""Demo data of the module course_payment_alipay: an Alipay account of the
demo company on the demo's fake gateway (scripts/fake_alipay.py, started by
scripts/demo.py before the data is loaded), an unpaid order to pay with
Alipay, and an order paid with Alipay then partly refunded.

- The account "Fake Alipay (demo)": gateway *Custom URL* =
  ``<fake>/gateway.do``, the fake's app id, seller id and keys (read from,
  or made once in, its folder ``<var>/demo/fake_alipay``), notify and
  return URLs on the demo server, storefront page = the fake's ``/thanks``.
  Its URLs and keys are brought up to date at each load (another port, a
  new folder) while its gateway is *Custom URL*.  Another active account of
  the company, or this one pointed at the Alipay sandbox, is left alone
  (and the paid order below is not made).
- wang.fang's order of "Vue.js 从入门到精通" (永久有效), paid with
  ``alipay`` and left unpaid; its page-pay URL (on the gateway of the
  company's active account) (``course.payment.start``,
  computed as root: ``start`` is no RPC method) is written to the fake's
  ``pay_urls.json`` at each load, so the fake serves it as
  ``<fake>/pay/<order number>`` and scripts/demo.py prints that link.  Made
  again when the expiry job expired it.
- liu.yang's order of "数据分析与可视化" and "uni-app 跨端开发", paid on
  the fake's cashier (the payment confirmed by a trade query, as trytond's
  not running yet to receive the notify), then the uni-app line refunded
  with the staff *Refund Order* wizard (``alipay.trade.refund`` on the
  fake).  Skipped when the fake does not answer.

Environment (set by scripts/demo.py): ``COURSE_DEMO_URL`` (the demo server,
default http://localhost:8000), ``COURSE_DEMO_ALIPAY_URL`` (the fake,
default http://127.0.0.1:8090) and ``COURSE_DEMO_ALIPAY_DIR`` (its folder,
default ``<database path>/fake_alipay``).
"""
import os
import urllib.error
import urllib.parse
import urllib.request

from proteus import Model, Wizard
from proteus.config import get_config

from .course import get_students
from .course_order import can_order, get_company, option

ACCOUNT_NAME = "Fake Alipay (demo)"
UNPAID = ('wang.fang@example.com', [("Vue.js 从入门到精通", "永久有效")])
PAID = ('liu.yang@example.com',
    [("数据分析与可视化", None), ("uni-app 跨端开发", None)])
REFUNDED_COURSE = "uni-app 跨端开发"
REFUND_REASON = "Bought uni-app by mistake (demo partial refund)"


def settings():
    "(demo server URL, fake gateway URL, fake folder)"
    from trytond.config import config as trytond_config
    folder = os.environ.get('COURSE_DEMO_ALIPAY_DIR') or os.path.join(
        trytond_config.get('database', 'path'), 'fake_alipay')
    return (
        os.environ.get('COURSE_DEMO_URL', 'http://localhost:8000'),
        os.environ.get('COURSE_DEMO_ALIPAY_URL', 'http://127.0.0.1:8090'),
        folder)


def load():
    from fake_alipay import read_pay_urls, write_pay_urls
    server, gateway, folder = settings()
    company = get_company()
    fake = demo_account(company, server, gateway, folder)
    students = get_students({UNPAID[0], PAID[0]})
    urls = {}
    order = unpaid_order(company, students[UNPAID[0]], UNPAID[1])
    if order is not None:
        urls[order.number] = start_payment(order)
    # Keep the links of the other orders still unpaid
    Order = Model.get('course.order')
    for number, url in read_pay_urls(folder).items():
        if number not in urls and Order.find([
                    ('number', '=', number), ('state', '=', 'unpaid'),
                    ('pay_method', '=', 'alipay')], limit=1):
            urls[number] = url
    write_pay_urls(folder, urls)
    if fake:
        paid_order(company, students[PAID[0]], PAID[1], gateway)


def demo_account(company, server, gateway, folder):
    """Create or update the demo's account on the fake; False when the
    company's active account is another one or was pointed elsewhere (it
    is left alone)"""
    from fake_alipay import demo_keys
    from trytond.modules.course_payment_alipay.tests.tools import (
        APP_ID, SELLER_ID)
    config = get_config()
    keys = demo_keys(folder)
    database = config.database_name
    values = {
        'app_id': APP_ID, 'seller_id': SELLER_ID,
        'app_private_key': keys['app'][1],
        'alipay_public_key': keys['alipay'][2],
        'gateway': 'custom', 'gateway_url': f'{gateway}/gateway.do',
        'notify_url': f'{server}/{database}/alipay/notify',
        'return_url': f'{server}/{database}/alipay/return',
        'storefront_url': f'{gateway}/thanks',
        'timeout': 10,
        }
    Account = Model.get('course.payment.alipay.account')
    accounts = Account.find([('company', '=', company.id)])
    if accounts and (accounts[0].name != ACCOUNT_NAME
            or accounts[0].gateway != 'custom'):
        print(f"    the Alipay account {accounts[0].name!r} is not on the "
            "fake gateway: left as it is", flush=True)
        return False
    account = accounts[0] if accounts else Account(
        name=ACCOUNT_NAME, company=company)
    changed = not accounts
    for name, value in values.items():
        if getattr(account, name) != value:
            setattr(account, name, value)
            changed = True
    if changed:
        account.save()
    return True


def courses_of(company, items):
    "[(course, option or None)] of the (name, option name) items"
    Course = Model.get('course.course')
    result = []
    for name, option_name in items:
        course, = Course.find([
                ('company', '=', company.id), ('name', '=', name)])
        result.append((course, option(course, option_name)))
    return result


def find_order(party, course, domain=()):
    Order = Model.get('course.order')
    orders = Order.find([
            ('party', '=', party.id), ('lines.course', '=', course.id),
            ('pay_method', '=', 'alipay')] + list(domain), limit=1)
    return orders[0] if orders else None


def checkout(party, pairs):
    "The Alipay order of the pairs, or None when checkout would refuse"
    config = get_config()
    Order = Model.get('course.order')
    if not can_order(party, [c for c, _ in pairs]):
        print(f"    skipped an Alipay order of {party.rec_name}: a course "
            "is owned or pending", flush=True)
        return None
    items = [{'course': c.id, 'option': o.id if o else None}
        for c, o in pairs]
    return Order(Order.checkout(
            party.id, items, 'alipay', {}, config.context))


def unpaid_order(company, party, items):
    "The unpaid Alipay order (not expired; created when missing)"
    pairs = courses_of(company, items)
    order = find_order(party, pairs[0][0], [('state', '!=', 'expired')])
    if order is None:
        order = checkout(party, pairs)
    if order is None or order.state != 'unpaid':
        return None
    return order


def as_root(func):
    """func(Payment) in a transaction of root (user 0), started again when
    a row lock asks for it (as trytond's RPC does)"""
    from trytond.pool import Pool
    from trytond.transaction import Transaction, TransactionError
    config = get_config()
    extras = {}
    while True:
        with Transaction().start(config.database_name, 0,
                context=config.context, **extras) as transaction:
            try:
                return func(Pool().get('course.payment'))
            except TransactionError as error:
                transaction.rollback()
                error.fix(extras)


def start_payment(order):
    """The page-pay URL of the order: course.payment.start, as root (the
    storefront's call; it is no RPC method)"""
    return as_root(lambda Payment: Payment.start(order.id)['url'])


def query_payment(order):
    "Ask the gateway about the order's pending payment, as root"
    as_root(lambda Payment: Payment.query(Payment.search([
                    ('order', '=', order.id), ('state', '=', 'pending')])))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def pay_on_fake(gateway, url):
    """Press "Pay" on the fake's cashier page of the page-pay url; False
    when the fake does not answer"""
    query = urllib.parse.urlsplit(url).query
    data = urllib.parse.urlencode({'request': query, 'action': 'pay'})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(f'{gateway}/cashier', data.encode(), timeout=60):
            pass
    except urllib.error.HTTPError as error:
        return error.code == 303  # to the return URL: paid
    except (urllib.error.URLError, OSError):
        return False
    return False


def paid_order(company, party, items, gateway):
    "The order paid with Alipay, then partly refunded (created once)"
    pairs = courses_of(company, items)
    if find_order(party, pairs[0][0]) is not None:
        return
    order = checkout(party, pairs)
    if order is None:
        return
    if not pay_on_fake(gateway, start_payment(order)):
        print(f"    the fake Alipay gateway ({gateway}) does not answer: "
            f"order {order.number} left unpaid", flush=True)
        return
    query_payment(order)
    order.reload()
    if order.state != 'paid':
        raise RuntimeError(
            f"Demo order {order.number} is {order.state}, not paid")
    refund = Wizard('course.payment.refund.wizard', [order])
    refund.form.whole = False
    Line = Model.get('course.order.line')
    refund.form.lines.extend([Line(l.id) for l in order.lines
            if l.course and l.course.name == REFUNDED_COURSE])
    refund.form.reason = REFUND_REASON
    refund.execute('refund')

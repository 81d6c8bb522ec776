"""Demo data of the module course_payment_wechat: a WeChat Pay account of
the demo company on the demo's fake gateway (scripts/fake_wechat.py,
started by scripts/demo.py before the data is loaded) and an unpaid order
to pay with WeChat Pay.

- The account "Fake WeChat Pay (demo)": gateway *Custom URL* = the fake,
  the fake's merchant id, appid, keys and APIv3 key (read from, or made
  once in, its folder ``<var>/demo/fake_wechat``), notify URL on the demo
  server.  Its URL and keys are brought up to date at each load while its
  gateway is *Custom URL*; another active account of the company, or this
  one pointed elsewhere, is left alone.
- chen.jing's order of "数据分析与可视化", paid with ``wechat`` and left
  unpaid; its code (``course.payment.start``, as root: the storefront's
  call) is asked at each load, so the fake knows the transaction, and the
  order number is written to the fake's ``pay_links.json``: scripts/demo.py
  prints ``<fake>/pay/<order number>``, the page standing for the
  student's phone.  Made again when the expiry job expired it.

Environment (set by scripts/demo.py): ``COURSE_DEMO_URL`` (the demo server,
default http://localhost:8000), ``COURSE_DEMO_WECHAT_URL`` (the fake,
default http://127.0.0.1:8091) and ``COURSE_DEMO_WECHAT_DIR`` (its folder,
default ``<database path>/fake_wechat``).
"""
import os

from proteus import Model
from proteus.config import get_config

from .course import get_students
from .course_order import can_order, get_company
from .course_payment_alipay import as_root, courses_of

ACCOUNT_NAME = "Fake WeChat Pay (demo)"
UNPAID = ('chen.jing@example.com', [("数据分析与可视化", None)])


def settings():
    "(demo server URL, fake gateway URL, fake folder)"
    from trytond.config import config as trytond_config
    folder = os.environ.get('COURSE_DEMO_WECHAT_DIR') or os.path.join(
        trytond_config.get('database', 'path'), 'fake_wechat')
    return (
        os.environ.get('COURSE_DEMO_URL', 'http://localhost:8000'),
        os.environ.get('COURSE_DEMO_WECHAT_URL', 'http://127.0.0.1:8091'),
        folder)


def load():
    from fake_wechat import write_pay_links
    server, gateway, folder = settings()
    company = get_company()
    if not demo_account(company, server, gateway, folder):
        return
    students = get_students({UNPAID[0]})
    links = {}
    order = unpaid_order(company, students[UNPAID[0]], UNPAID[1])
    if order is not None:
        try:
            answer = as_root(lambda Payment: Payment.start(order.id))
        except Exception as error:
            print(f"    the fake WeChat Pay gateway ({gateway}) refused the "
                f"code of order {order.number}: {error}", flush=True)
        else:
            links[order.number] = answer['code_url']
    write_pay_links(folder, links)


def demo_account(company, server, gateway, folder):
    """Create or update the demo's account on the fake; False when the
    company's active account is another one or was pointed elsewhere (it
    is left alone)"""
    from fake_wechat import demo_keys
    from trytond.modules.course_payment_wechat.tests.tools import (
        APPID, MCHID, MERCHANT_SERIAL, PUBLIC_KEY_ID)
    config = get_config()
    keys, apiv3_key = demo_keys(folder)
    values = {
        'mchid': MCHID, 'appid': APPID,
        'merchant_private_key': keys['merchant'][1],
        'merchant_serial': MERCHANT_SERIAL,
        'apiv3_key': apiv3_key,
        'wechatpay_public_key': keys['platform'][2],
        'wechatpay_public_key_id': PUBLIC_KEY_ID,
        'gateway': 'custom', 'gateway_url': gateway,
        'notify_url': f'{server}/{config.database_name}/wechat/notify',
        'timeout': 10,
        }
    Account = Model.get('course.payment.wechat.account')
    accounts = Account.find([('company', '=', company.id)])
    if accounts and (accounts[0].name != ACCOUNT_NAME
            or accounts[0].gateway != 'custom'):
        print(f"    the WeChat Pay account {accounts[0].name!r} is not on "
            "the fake gateway: left as it is", flush=True)
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


def unpaid_order(company, party, items):
    "The unpaid WeChat Pay order (not expired; created when missing)"
    config = get_config()
    Order = Model.get('course.order')
    pairs = courses_of(company, items)
    orders = Order.find([
            ('party', '=', party.id),
            ('lines.course', '=', pairs[0][0].id),
            ('pay_method', '=', 'wechat'),
            ('state', '!=', 'expired')], limit=1)
    if orders:
        order = orders[0]
    elif can_order(party, [c for c, _ in pairs]):
        order = Order(Order.checkout(party.id, [
                    {'course': c.id, 'option': o.id if o else None}
                    for c, o in pairs], 'wechat', {}, config.context))
    else:
        print(f"    skipped a WeChat Pay order of {party.rec_name}: a "
            "course is owned or pending", flush=True)
        return None
    return order if order.state == 'unpaid' else None

#!/usr/bin/env python3
"""The demo's fake Alipay gateway: the tests' FakeAlipay
(trytond.modules.course_payment_alipay.tests.tools) on a fixed port, with
its RSA2 keys and its trades kept in a folder, and a cashier page.

    python scripts/fake_alipay.py --dir var/demo/fake_alipay --port 8090

scripts/demo.py starts it beside trytond (the venv's Python).  It serves:

- GET  /gateway.do?<signed alipay.trade.page.pay>: the cashier page (order
  number, subject, amount, "Pay" and "Cancel");
- POST /cashier: "Pay" marks the trade paid, posts the signed notify to the
  request's notify_url (trytond's /<db>/alipay/notify), then redirects the
  browser to its return_url with the signed return query (trytond checks it
  and redirects on to the account's storefront page); "Cancel" leaves the
  trade unpaid;
- POST /gateway.do: query, close, refund and refund query, signed, as the
  test fake answers them;
- GET  /pay/<order number>: a redirect to the page-pay URL the demo data
  wrote in <dir>/pay_urls.json (short links for the console), GET / lists
  them;
- GET  /thanks?order=N&state=S: the demo's storefront page.

The key pairs (the app's and "Alipay's") are made once, in <dir>/*.pem, so
the Alipay account of the demo database keeps verifying across restarts;
the trades are kept in <dir>/trades.json.
"""
import argparse
import datetime as dt
import html
import importlib
import json
import logging
import os
import signal
import threading
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal

# The fake of the tests: imported by fake_server() and demo_keys() only, so
# scripts/demo.py reads the constants and files below without trytond
TOOLS = 'trytond.modules.course_payment_alipay.tests.tools'

logger = logging.getLogger('fake_alipay')

DEFAULT_PORT = 8090
KEY_FILES = {'app': 'app_private.pem', 'alipay': 'alipay_private.pem'}
PAY_URLS = 'pay_urls.json'
TRADES = 'trades.json'
NOTIFY_TIMEOUT = 30


def demo_keys(folder):
    """{'app'|'alipay': (key, private PEM, public PEM)}, read from folder
    or made there once"""
    from cryptography.hazmat.primitives.asymmetric import rsa
    pem_pair = importlib.import_module(TOOLS).pem_pair
    os.makedirs(folder, exist_ok=True)
    keys = {}
    for name, filename in KEY_FILES.items():
        path = os.path.join(folder, filename)
        if not os.path.exists(path):
            key, private, _ = pem_pair(rsa.generate_private_key(
                    public_exponent=65537, key_size=2048))
            tmp = f'{path}.{os.getpid()}.tmp'
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600),
                    'w') as fp:
                fp.write(private)
            os.replace(tmp, path)
        with open(path) as fp:
            keys[name] = pem_pair(fp.read())
    return keys


def read_pay_urls(folder):
    "{order number: page-pay URL} written by the demo data"
    try:
        with open(os.path.join(folder, PAY_URLS)) as fp:
            return json.load(fp)
    except (OSError, ValueError):
        return {}


def write_pay_urls(folder, urls):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, PAY_URLS)
    with open(path + '.tmp', 'w') as fp:
        json.dump(urls, fp, indent=1, ensure_ascii=False)
    os.replace(path + '.tmp', path)


def with_query(url, params):
    "url with params added to its query"
    return url + ('&' if '?' in url else '?') + urllib.parse.urlencode(params)


PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:32em;margin:3em auto}}
.amount{{font-size:2em;color:#e4393c}} button{{font-size:1.1em;
padding:.4em 1.2em;margin-right:1em}}</style></head>
<body><p><small>Fake Alipay (demo gateway, no money moves)</small></p>
{body}</body></html>"""


def fake_server(folder):
    "The demo's fake gateway, keys and trades in folder (not started)"
    tools = importlib.import_module(TOOLS)
    return type('DemoAlipay', (DemoMixin, tools.FakeAlipay), {})(folder)


class DemoMixin:
    """FakeAlipay with persistent keys and trades, and the cashier pages
    (mixed into the tests' FakeAlipay by fake_server)"""

    def __init__(self, folder):
        self.folder = folder
        super().__init__(keys=demo_keys(folder))
        self.lock = threading.RLock()  # pay() takes it again
        self.trades = self.load_trades()

    # ---- state ------------------------------------------------------------

    def load_trades(self):
        try:
            with open(os.path.join(self.folder, TRADES)) as fp:
                trades = json.load(fp)
        except (OSError, ValueError):
            return {}
        for trade in trades.values():
            trade['refunds'] = {
                k: Decimal(v) for k, v in trade.get('refunds', {}).items()}
        return trades

    def save_trades(self):
        path = os.path.join(self.folder, TRADES)
        with open(path + '.tmp', 'w') as fp:
            json.dump(self.trades, fp, indent=1, default=str)
        os.replace(path + '.tmp', path)
        # Trade numbers go on after a restart
        self._count = max([self._count] + [
                int(t['trade_no'][4:]) for t in self.trades.values()
                if t.get('trade_no', '')[4:].isdigit()])

    # ---- HTTP -------------------------------------------------------------

    def handle(self, handler, params):
        path = urllib.parse.urlsplit(handler.path).path
        get = handler.command == 'GET'
        try:
            if path == '/gateway.do' and get:
                return self.cashier(handler, params)
            if path == '/cashier' and not get:
                return self.submit(handler, params)
            if path == '/thanks':
                return self.thanks(handler, params)
            if path.startswith('/pay/') and get:
                return self.short_link(handler, path[len('/pay/'):])
            if path == '/' and get:
                return self.index(handler)
            if path != '/gateway.do':
                return self.page(handler, "Not found", "<p>Not found.</p>",
                    404)
            super().handle(handler, params)
        except Exception:
            logger.exception("fake alipay %s %s", handler.command, path)
            return self.page(handler, "Error", "<p>Error.</p>", 500)
        with self.lock:
            self.save_trades()

    def page(self, handler, title, body, status=200):
        self.send(handler, PAGE.format(title=html.escape(title), body=body),
            status)

    def redirect(self, handler, url, status=303):
        handler.send_response(status)
        handler.send_header('Location', url)
        handler.send_header('Content-Length', '0')
        handler.end_headers()

    def page_pay(self, params):
        """(biz_content dict, params) of a signed alipay.trade.page.pay
        request of this app, or None"""
        verify = importlib.import_module(TOOLS).verify
        unsigned = '&'.join(f'{k}={v}' for k, v in sorted(params.items())
            if k != 'sign')
        if (params.get('method') != 'alipay.trade.page.pay'
                or params.get('app_id') != self.app_id
                or not verify(self.app_public, unsigned,
                    params.get('sign', ''))):
            return None
        try:
            biz = json.loads(params.get('biz_content') or '')
            Decimal(biz['total_amount'])
            biz['out_trade_no'], biz['subject']
        except (ValueError, KeyError, TypeError, ArithmeticError):
            return None
        return biz

    def expired(self, biz):
        if not biz.get('time_expire'):
            return False
        beijing = dt.timezone(dt.timedelta(hours=8))
        now = dt.datetime.now(beijing).strftime('%Y-%m-%d %H:%M:%S')
        return biz['time_expire'] <= now

    def cashier(self, handler, params):
        "The cashier page of a signed page-pay request"
        biz = self.page_pay(params)
        if biz is None:
            return self.page(handler, "Invalid request",
                "<h1>Invalid request</h1><p>The signature, the app id or "
                "the trade does not verify.</p>", 400)
        number = html.escape(biz['out_trade_no'])
        trade = self.trades.get(biz['out_trade_no'], {})
        status = trade.get('trade_status')
        if status in {'TRADE_SUCCESS', 'TRADE_FINISHED', 'TRADE_CLOSED'}:
            return self.page(handler, "Alipay",
                f"<h1>Order {number}</h1><p>This trade is {status}.</p>")
        if self.expired(biz):
            return self.page(handler, "Alipay",
                f"<h1>Order {number}</h1><p>This trade has expired "
                f"({html.escape(biz['time_expire'])}).</p>")
        query = html.escape(urllib.parse.urlencode(params))
        body = f"""<h1>Alipay cashier</h1>
<table>
<tr><th align="left">Order</th><td id="order">{number}</td></tr>
<tr><th align="left">Subject</th>
<td id="subject">{html.escape(biz['subject'])}</td></tr>
<tr><th align="left">Amount</th>
<td class="amount" id="amount">¥{html.escape(biz['total_amount'])}</td></tr>
</table>
<form method="post" action="/cashier">
<input type="hidden" name="request" value="{query}">
<button type="submit" name="action" value="pay">Pay</button>
<button type="submit" name="action" value="cancel">Cancel</button>
</form>"""
        return self.page(handler, "Alipay cashier", body)

    def submit(self, handler, form):
        "Pay or Cancel on the cashier page"
        params = dict(urllib.parse.parse_qsl(form.get('request', '')))
        biz = self.page_pay(params)
        if biz is None:
            return self.page(handler, "Invalid request",
                "<h1>Invalid request</h1>", 400)
        number = biz['out_trade_no']
        if form.get('action') != 'pay':
            return self.page(handler, "Alipay",
                f"<h1>Not paid</h1><p>Order {html.escape(number)} was not "
                f"paid. <a href=\"/gateway.do?{html.escape(form['request'])}"
                "\">Back to the cashier</a></p>")
        if self.expired(biz):
            return self.page(handler, "Alipay", "<p>This trade has "
                "expired.</p>", 400)
        with self.lock:
            trade = self.trades.get(number, {})
            if trade.get('trade_status') not in {
                    'TRADE_SUCCESS', 'TRADE_FINISHED'}:
                trade = self.pay(number, biz['total_amount'])
            trade['subject'] = biz['subject']
            self.save_trades()
        # Alipay's asynchronous notify, here before the browser goes back
        notify_url = params.get('notify_url')
        if notify_url:
            self.post_notify(notify_url, self.notify(
                    number, subject=biz['subject']))
        return_url = params.get('return_url')
        if not return_url:
            return self.page(handler, "Alipay", "<h1>Paid</h1>")
        self.redirect(handler, with_query(
                return_url, self.return_params(number)))

    def post_notify(self, url, params):
        "POST the notify; Alipay would retry, the fake logs a failure"
        data = urllib.parse.urlencode(params).encode()
        try:
            with urllib.request.urlopen(urllib.request.Request(
                        url, data=data, method='POST'),
                    timeout=NOTIFY_TIMEOUT) as answer:
                text = answer.read(100).decode(errors='replace')
        except (urllib.error.URLError, OSError) as error:
            text = str(getattr(error, 'reason', error))
        logger.info("notify %s of %s: %s", url, params['out_trade_no'], text)
        return text

    def thanks(self, handler, params):
        number = html.escape(params.get('order', ''))
        state = html.escape(params.get('state', ''))
        return self.page(handler, "Thank you",
            f"<h1>Order {number}</h1><p>State: <b id=\"state\">{state}</b>"
            "</p><p>This page stands for the storefront's order page.</p>")

    def short_link(self, handler, number):
        url = read_pay_urls(self.folder).get(urllib.parse.unquote(number))
        if not url:
            return self.page(handler, "Not found",
                "<p>No page-pay link for this order.</p>", 404)
        self.redirect(handler, url, 302)

    def index(self, handler):
        links = ''.join(
            f'<li><a href="/pay/{html.escape(n)}">{html.escape(n)}</a></li>'
            for n in read_pay_urls(self.folder))
        return self.page(handler, "Fake Alipay",
            "<h1>Fake Alipay</h1><p>Orders of the demo to pay:</p>"
            f"<ul>{links}</ul>")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dir', required=True,
        help="the folder of the keys and trades")
    parser.add_argument('--port', type=int, default=DEFAULT_PORT)
    parser.add_argument('--host', default='127.0.0.1')
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO,
        format='%(asctime)s %(levelname)s %(name)s %(message)s')
    fake = fake_server(os.path.abspath(args.dir))
    fake.start(args.host, args.port)
    logger.info("fake Alipay gateway at %s", fake.url)
    stopped = threading.Event()
    for signum in [signal.SIGINT, signal.SIGTERM]:
        signal.signal(signum, lambda *a: stopped.set())
    stopped.wait()
    fake.stop()


if __name__ == '__main__':
    main()

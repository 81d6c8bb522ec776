#!/usr/bin/env python3
"""The demo's fake WeChat Pay gateway: the tests' FakeWechat
(trytond.modules.course_payment_wechat.tests.tools) on a fixed port, with
its keys, APIv3 key and transactions kept in a folder, and a page standing
for the student's phone.

    python scripts/fake_wechat.py --dir var/demo/fake_wechat --port 8091

scripts/demo.py starts it beside trytond (the venv's Python).  It serves:

- the API v3 calls (Native pay, query, close, refund, refund query), signed,
  as the test fake answers them;
- GET  /pay/<order number>: the "scan" page of the transaction (its
  code_url, description, amount, "Pay");
- POST /pay/<order number>: "Pay" marks the transaction paid and posts the
  signed, encrypted TRANSACTION.SUCCESS notification to the transaction's
  notify_url (trytond's /<db>/wechat/notify); the page tells its answer;
- GET  /: the transactions waiting to be paid.

The key pairs (the merchant's and "WeChat Pay's") and the APIv3 key are
made once, in <dir>, so the WeChat Pay account of the demo database keeps
verifying across restarts; the transactions are kept in
<dir>/trades.json.
"""
import argparse
import html
import importlib
import json
import logging
import os
import secrets
import signal
import threading
import urllib.error
import urllib.parse
import urllib.request

# The fake of the tests: imported by fake_server() and demo_keys() only, so
# scripts/demo.py reads the constants and files below without trytond
TOOLS = 'trytond.modules.course_payment_wechat.tests.tools'

logger = logging.getLogger('fake_wechat')

DEFAULT_PORT = 8091
KEY_FILES = {
    'merchant': 'merchant_private.pem', 'platform': 'platform_private.pem'}
APIV3_KEY = 'apiv3_key.txt'
TRADES = 'trades.json'
PAY_LINKS = 'pay_links.json'
NOTIFY_TIMEOUT = 30


def read_pay_links(folder):
    "{order number: code_url} of the unpaid orders the demo data wrote"
    try:
        with open(os.path.join(folder, PAY_LINKS)) as fp:
            return json.load(fp)
    except (OSError, ValueError):
        return {}


def write_pay_links(folder, links):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, PAY_LINKS)
    with open(path + '.tmp', 'w') as fp:
        json.dump(links, fp, indent=1, ensure_ascii=False)
    os.replace(path + '.tmp', path)


def write_secret(path, text):
    "Write text to path, readable by its owner only"
    tmp = f'{path}.{os.getpid()}.tmp'
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600), 'w') as fp:
        fp.write(text)
    os.replace(tmp, path)


def demo_keys(folder):
    """({'merchant'|'platform': (key, private PEM, public PEM)}, APIv3
    key), read from folder or made there once"""
    from cryptography.hazmat.primitives.asymmetric import rsa
    pem_pair = importlib.import_module(TOOLS).pem_pair
    os.makedirs(folder, exist_ok=True)
    keys = {}
    for name, filename in KEY_FILES.items():
        path = os.path.join(folder, filename)
        if not os.path.exists(path):
            _, private, _ = pem_pair(rsa.generate_private_key(
                    public_exponent=65537, key_size=2048))
            write_secret(path, private)
        with open(path) as fp:
            keys[name] = pem_pair(fp.read())
    path = os.path.join(folder, APIV3_KEY)
    if not os.path.exists(path):
        write_secret(path, secrets.token_hex(16))
    with open(path) as fp:
        return keys, fp.read().strip()


PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:32em;margin:3em auto}}
.amount{{font-size:2em;color:#07c160}} button{{font-size:1.1em;
padding:.4em 1.2em}} code{{word-break:break-all}}</style></head>
<body><p><small>Fake WeChat Pay (demo gateway, no money moves)</small></p>
{body}</body></html>"""


def fake_server(folder):
    "The demo's fake gateway, keys and transactions in folder (not started)"
    tools = importlib.import_module(TOOLS)
    return type('DemoWechat', (DemoMixin, tools.FakeWechat), {})(folder)


class DemoMixin:
    """FakeWechat with persistent keys and transactions, and the pay pages
    (mixed into the tests' FakeWechat by fake_server)"""

    def __init__(self, folder):
        self.folder = folder
        keys, apiv3_key = demo_keys(folder)
        super().__init__(keys=keys, apiv3_key=apiv3_key)
        self.trades, self.refunds = self.load()

    # ---- state ------------------------------------------------------------

    def load(self):
        try:
            with open(os.path.join(self.folder, TRADES)) as fp:
                data = json.load(fp)
        except (OSError, ValueError):
            return {}, {}
        self._count = data.get('count', 0)
        return data.get('trades', {}), data.get('refunds', {})

    def save(self):
        path = os.path.join(self.folder, TRADES)
        with open(path + '.tmp', 'w') as fp:
            json.dump({'trades': self.trades, 'refunds': self.refunds,
                    'count': self._count}, fp, indent=1, ensure_ascii=False)
        os.replace(path + '.tmp', path)

    # ---- HTTP -------------------------------------------------------------

    def handle(self, handler, body):
        path = urllib.parse.urlsplit(handler.path).path
        get = handler.command == 'GET'
        try:
            if path.startswith('/pay/'):
                number = urllib.parse.unquote(path[len('/pay/'):])
                return (self.scan_page(handler, number) if get
                    else self.submit(handler, number))
            if path == '/' and get:
                return self.index(handler)
            super().handle(handler, body)
        except Exception:
            logger.exception("fake wechat %s %s", handler.command, path)
            return self.page(handler, "Error", "<p>Error.</p>", 500)
        with self.lock:
            self.save()

    def page(self, handler, title, body, status=200):
        self.send(handler, status,
            PAGE.format(title=html.escape(title), body=body),
            content_type='text/html;charset=utf-8')

    def scan_page(self, handler, number):
        "What the student's phone shows after scanning the code"
        trade = self.trades.get(number)
        if trade is None or 'code_url' not in trade:
            return self.page(handler, "Not found",
                "<p>No WeChat Pay transaction for this order.</p>", 404)
        escaped = html.escape(number)
        amount = f"{trade['amount']['total'] / 100:.2f}"
        if trade['trade_state'] != 'NOTPAY':
            return self.page(handler, "WeChat Pay",
                f"<h1>Order {escaped}</h1><p>This transaction is "
                f"<b id=\"state\">{html.escape(trade['trade_state'])}</b>."
                "</p>")
        body = f"""<h1>WeChat Pay</h1>
<table>
<tr><th align="left">Order</th><td id="order">{escaped}</td></tr>
<tr><th align="left">Description</th>
<td id="description">{html.escape(trade.get('description', ''))}</td></tr>
<tr><th align="left">Amount</th>
<td class="amount" id="amount">¥{amount}</td></tr>
<tr><th align="left">Code</th>
<td><code id="code_url">{html.escape(trade['code_url'])}</code></td></tr>
<tr><th align="left">Expires</th>
<td>{html.escape(trade.get('time_expire') or '')}</td></tr>
</table>
<form method="post"><button type="submit" name="action" value="pay">Pay
</button></form>"""
        return self.page(handler, "WeChat Pay", body)

    def submit(self, handler, number):
        "Pay: the transaction paid, its notification posted to trytond"
        with self.lock:
            trade = self.trades.get(number)
            if trade is None or trade['trade_state'] != 'NOTPAY':
                return self.page(handler, "WeChat Pay",
                    "<p>This transaction cannot be paid.</p>", 400)
            self.pay(number)
            self.save()
        headers, body = self.payment_notification(number)
        answer = self.post_notification(trade.get('notify_url'), headers,
            body)
        return self.page(handler, "WeChat Pay",
            f"<h1>Paid</h1><p>Order {html.escape(number)}: "
            f"<b id=\"state\">paid</b>. The notify route answered: "
            f"<code id=\"answer\">{html.escape(answer)}</code></p>")

    def post_notification(self, url, headers, body):
        "POST the notification; WeChat Pay would retry, the fake logs it"
        if not url:
            return 'no notify_url'
        request = urllib.request.Request(
            url, data=body, method='POST', headers=headers)
        try:
            with urllib.request.urlopen(
                    request, timeout=NOTIFY_TIMEOUT) as answer:
                text = f'{answer.status} ' + answer.read(200).decode(
                    errors='replace')
        except urllib.error.HTTPError as error:
            text = f'{error.code} ' + error.read(200).decode(errors='replace')
        except (urllib.error.URLError, OSError) as error:
            text = str(getattr(error, 'reason', error))
        logger.info("notification %s: %s", url, text)
        return text

    def index(self, handler):
        links = ''.join(
            f'<li><a href="/pay/{urllib.parse.quote(n)}">{html.escape(n)}'
            '</a></li>' for n, t in self.trades.items()
            if t['trade_state'] == 'NOTPAY' and 'code_url' in t)
        return self.page(handler, "Fake WeChat Pay",
            "<h1>Fake WeChat Pay</h1><p>Transactions to pay:</p>"
            f"<ul>{links}</ul>")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dir', required=True,
        help="the folder of the keys and transactions")
    parser.add_argument('--port', type=int, default=DEFAULT_PORT)
    parser.add_argument('--host', default='127.0.0.1')
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO,
        format='%(asctime)s %(levelname)s %(name)s %(message)s')
    fake = fake_server(os.path.abspath(args.dir))
    fake.start(args.host, args.port)
    logger.info("fake WeChat Pay gateway at %s", fake.url)
    stopped = threading.Event()
    for signum in [signal.SIGINT, signal.SIGTERM]:
        signal.signal(signum, lambda *a: stopped.set())
    stopped.wait()
    fake.stop()


if __name__ == '__main__':
    main()

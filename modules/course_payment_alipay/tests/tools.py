"""A fake Alipay gateway for the tests (and the demo): an HTTP server in a
thread with its own RSA2 key pairs made at start, answering
alipay.trade.query, .close, .refund and .fastpay.refund.query with signed
responses the way Alipay does, and signing notifies and returns with the
same keys.  No network beyond 127.0.0.1.

    with FakeAlipay() as fake:
        account values: fake.account_values(company_id)
        fake.pay('ORDER-1', '500.00')        # the buyer paid on the page
        params = fake.notify('ORDER-1')      # the signed notify form
        fake.mode = 'down' | 'slow' | '500' | 'garbage' | 'badsign' | 'error'
"""
import base64
import datetime as dt
import json
import threading
import time
import urllib.parse
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

APP_ID = '2021000000000001'
SELLER_ID = '2088000000000001'
BEIJING = dt.timezone(dt.timedelta(hours=8))
_KEYS = {}


def key_pair(name):
    "A 2048-bit RSA key pair made once per process: (key, private, public PEM)"
    if name not in _KEYS:
        _KEYS[name] = pem_pair(
            rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _KEYS[name]


def pem_pair(key):
    "(key, private PEM, public PEM) of an RSA private key (or its PEM)"
    if isinstance(key, str):
        key = serialization.load_pem_private_key(key.encode(), None)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return key, private, public


def sign(key, text):
    "The base64 RSA-SHA256 (RSA2) signature of text"
    return base64.b64encode(key.sign(
            text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(public_pem, text, signature):
    key = serialization.load_pem_public_key(public_pem.encode())
    try:
        key.verify(base64.b64decode(signature), text.encode(),
            padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def signing_string(params):
    "What Alipay signs: the sorted k=v without sign and sign_type"
    return '&'.join(f'{k}={v}' for k, v in sorted(params.items())
        if k not in {'sign', 'sign_type'})


def beijing_now():
    return dt.datetime.now(BEIJING).strftime('%Y-%m-%d %H:%M:%S')


class FakeAlipay:
    """The fake gateway: `trades` {out_trade_no: trade dict}, `calls` the
    (method, biz_content) received, `mode` how it answers"""

    def __init__(self, app_id=APP_ID, seller_id=SELLER_ID, delay=2.0,
            keys=None):
        "keys: {'app'|'alipay': (key, private PEM, public PEM)} to reuse"
        keys = keys or {}
        self.app_id = app_id
        self.seller_id = seller_id
        self.delay = delay
        self.app_key, self.app_private, self.app_public = (
            keys.get('app') or key_pair('app'))
        self.key, self.private, self.public = (
            keys.get('alipay') or key_pair('alipay'))
        self.trades = {}
        self.calls = []
        self.mode = 'ok'
        self.lock = threading.Lock()
        self.server = None
        self._count = 0

    # ---- lifecycle --------------------------------------------------------

    def start(self, host='127.0.0.1', port=0):
        "Serve in a thread on host:port (a free port by default)"
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(length).decode()
                fake.handle(self, dict(urllib.parse.parse_qsl(body)))

            def do_GET(self):
                query = urllib.parse.urlsplit(self.path).query
                fake.handle(self, dict(urllib.parse.parse_qsl(query)))
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True
            ).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        host, port = self.server.server_address
        return f'http://{host}:{port}/gateway.do'

    def account_values(self, company, **values):
        "The values of an Alipay account of company on this gateway"
        result = {
            'name': "Fake Alipay", 'company': int(company),
            'app_id': self.app_id, 'seller_id': self.seller_id,
            'app_private_key': self.app_private,
            'alipay_public_key': self.public,
            'gateway': 'custom', 'gateway_url': self.url,
            'notify_url': 'https://shop.test/db/alipay/notify',
            'return_url': 'https://shop.test/db/alipay/return',
            'storefront_url': 'https://shop.test/paid?from=alipay',
            'timeout': 1,
            }
        result.update(values)
        return result

    # ---- what Alipay does on its own ------------------------------------

    def trade_no(self):
        with self.lock:
            self._count += 1
            return f'2024{self._count:020d}'

    def pay(self, out_trade_no, amount, status='TRADE_SUCCESS'):
        "The buyer paid the trade on Alipay's page; return the trade"
        trade = self.trades.setdefault(out_trade_no, {
                'out_trade_no': out_trade_no, 'refunds': {}})
        trade.update({
                'trade_status': status,
                'total_amount': str(Decimal(amount).quantize(
                        Decimal('0.01'))),
                'trade_no': trade.get('trade_no') or self.trade_no(),
                'buyer_user_id': '2088102177846880',
                'send_pay_date': beijing_now(),
                })
        return trade

    def signed(self, params, key=None):
        "params with sign and sign_type (by Alipay's key unless key)"
        params = dict(params)
        params['sign'] = sign(key or self.key, signing_string(params))
        params['sign_type'] = 'RSA2'
        return params

    def notify(self, out_trade_no, **values):
        "The signed notify Alipay posts for the trade (values override)"
        trade = self.trades.get(out_trade_no, {})
        params = {
            'notify_time': beijing_now(), 'notify_type': 'trade_status_sync',
            'notify_id': f'n{time.time_ns()}', 'charset': 'utf-8',
            'version': '1.0', 'app_id': self.app_id,
            'auth_app_id': self.app_id, 'seller_id': self.seller_id,
            'out_trade_no': out_trade_no,
            'trade_no': trade.get('trade_no', self.trade_no()),
            'trade_status': trade.get('trade_status', 'WAIT_BUYER_PAY'),
            'total_amount': trade.get('total_amount', '0.00'),
            'receipt_amount': trade.get('total_amount', '0.00'),
            'buyer_id': trade.get('buyer_user_id', '2088102177846880'),
            'gmt_create': beijing_now(),
            'gmt_payment': trade.get('send_pay_date', beijing_now()),
            'subject': 'Course order',
            }
        key = values.pop('key', None)
        params.update(values)
        return self.signed(params, key)

    def return_params(self, out_trade_no, **values):
        "The signed query of the browser's return (no trade status)"
        trade = self.trades.get(out_trade_no, {})
        params = {
            'charset': 'utf-8', 'out_trade_no': out_trade_no,
            'method': 'alipay.trade.page.pay.return',
            'total_amount': trade.get('total_amount', '0.00'),
            'trade_no': trade.get('trade_no', ''), 'auth_app_id': self.app_id,
            'version': '1.0', 'app_id': self.app_id,
            'seller_id': self.seller_id, 'timestamp': beijing_now(),
            }
        key = values.pop('key', None)
        params.update(values)
        return self.signed(params, key)

    # ---- the gateway ------------------------------------------------------

    def count(self, method):
        return sum(1 for m, _ in self.calls if m == method)

    def handle(self, handler, params):
        method = params.get('method', '')
        try:
            biz = json.loads(params.get('biz_content') or '{}')
        except ValueError:
            biz = {}
        with self.lock:
            self.calls.append((method, biz))
        mode = self.mode
        if mode == 'down':
            # The connection is dropped without an answer
            handler.close_connection = True
            handler.connection.shutdown(2)
            return
        if mode == 'slow':
            time.sleep(self.delay)
        if mode == '500':
            return self.send(handler, 'Internal Server Error', 500)
        if mode == 'garbage':
            return self.send(handler, '<html>Bad Gateway</html>')
        response_type = method.replace('.', '_') + '_response'
        # Requests are signed over every parameter but sign
        unsigned = '&'.join(f'{k}={v}' for k, v in sorted(params.items())
            if k != 'sign')
        if not verify(self.app_public, unsigned, params.get('sign', '')) or params.get('app_id') != self.app_id:
            content = {'code': '40002', 'msg': 'Invalid Arguments',
                'sub_code': 'isv.invalid-signature', 'sub_msg': '验签出错'}
            return self.answer(handler, 'error_response', content)
        if mode == 'error':
            content = {'code': '20000', 'msg': 'Service Currently Unavailable',
                'sub_code': 'isp.unknow-error', 'sub_msg': '系统繁忙'}
            return self.answer(handler, 'error_response', content)
        func = {
            'alipay.trade.query': self.query,
            'alipay.trade.close': self.close,
            'alipay.trade.refund': self.refund,
            'alipay.trade.fastpay.refund.query': self.refund_query,
            }.get(method)
        if func is None:
            content = {'code': '40004', 'msg': 'Business Failed',
                'sub_code': 'isv.invalid-method'}
        else:
            with self.lock:
                content = func(biz)
        self.answer(handler, response_type, content,
            key=None if mode != 'badsign' else self.app_key)

    def answer(self, handler, response_type, content, key=None):
        text = json.dumps(content, ensure_ascii=False)
        body = (f'{{"{response_type}":{text},'
            f'"sign":"{sign(key or self.key, text)}"}}')
        self.send(handler, body)

    def send(self, handler, body, status=200):
        data = body.encode()
        try:
            handler.send_response(status)
            handler.send_header('Content-Type', 'text/html;charset=utf-8')
            handler.send_header('Content-Length', str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (slow)

    @staticmethod
    def not_exist():
        return {'code': '40004', 'msg': 'Business Failed',
            'sub_code': 'ACQ.TRADE_NOT_EXIST', 'sub_msg': '交易不存在'}

    def query(self, biz):
        trade = self.trades.get(biz.get('out_trade_no'))
        if trade is None:
            return self.not_exist()
        result = {'code': '10000', 'msg': 'Success'}
        result.update({k: v for k, v in trade.items() if k != 'refunds'})
        return result

    def close(self, biz):
        trade = self.trades.get(biz.get('out_trade_no'))
        if trade is None:
            return self.not_exist()
        if trade['trade_status'] != 'WAIT_BUYER_PAY':
            return {'code': '40004', 'msg': 'Business Failed',
                'sub_code': 'ACQ.TRADE_STATUS_ERROR', 'sub_msg': '交易状态不合法'}
        trade['trade_status'] = 'TRADE_CLOSED'
        return {'code': '10000', 'msg': 'Success',
            'out_trade_no': trade['out_trade_no'],
            'trade_no': trade['trade_no']}

    def refund(self, biz):
        trade = self.trades.get(biz.get('out_trade_no'))
        if trade is None:
            return self.not_exist()
        if trade['trade_status'] not in {'TRADE_SUCCESS'}:
            return {'code': '40004', 'msg': 'Business Failed',
                'sub_code': 'ACQ.TRADE_STATUS_ERROR', 'sub_msg': '交易状态不合法'}
        number = biz.get('out_request_no') or trade['out_trade_no']
        amount = Decimal(biz['refund_amount'])
        refunds = trade['refunds']
        fund_change = 'N'
        if number not in refunds:
            total = sum(refunds.values(), Decimal(0))
            if total + amount > Decimal(trade['total_amount']):
                return {'code': '40004', 'msg': 'Business Failed',
                    'sub_code': 'ACQ.REFUND_AMT_NOT_EQUAL_TOTAL',
                    'sub_msg': '退款金额超限'}
            refunds[number] = amount
            fund_change = 'Y'
        return {'code': '10000', 'msg': 'Success',
            'out_trade_no': trade['out_trade_no'],
            'trade_no': trade['trade_no'], 'fund_change': fund_change,
            'refund_fee': str(sum(refunds.values(), Decimal(0))),
            'buyer_user_id': trade['buyer_user_id']}

    def refund_query(self, biz):
        trade = self.trades.get(biz.get('out_trade_no'))
        if trade is None:
            return self.not_exist()
        number = biz.get('out_request_no')
        result = {'code': '10000', 'msg': 'Success',
            'out_trade_no': trade['out_trade_no'],
            'trade_no': trade['trade_no'], 'out_request_no': number}
        if number in trade['refunds']:
            result.update(
                refund_amount=str(trade['refunds'][number]),
                total_amount=trade['total_amount'],
                refund_status='REFUND_SUCCESS')
        return result

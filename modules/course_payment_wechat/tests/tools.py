"""A fake WeChat Pay (API v3) gateway for the tests (and the demo): an HTTP
server in a thread on 127.0.0.1 with two RSA-2048 key pairs made at start
(the merchant's and WeChat Pay's "platform" key), answering Native pay,
query, close, refund and refund query the way WeChat Pay does: it checks
the merchant's Authorization signature of every request, signs every answer
with the platform key, and builds notifications encrypted with the APIv3
key (AES-256-GCM) and signed with the platform key.  No network beyond
127.0.0.1.

    with FakeWechat() as fake:
        account values: fake.account_values(company_id)
        fake.pay('ORDER-1')                   # the buyer scanned and paid
        headers, body = fake.payment_notification('ORDER-1')
        headers, body = fake.refund_notification('ORDER-1R01')
        fake.mode = 'down' | 'slow' | '500' | 'garbage' | 'badsign' | 'error'
        fake.refund_status = 'SUCCESS' | 'PROCESSING'
"""
import base64
import datetime as dt
import json
import re
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MCHID = '1900000109'
APPID = 'wx8888888888888888'
MERCHANT_SERIAL = '5157F09EFDC096DE15EBE81A47057A7232F1B8E1'
PUBLIC_KEY_ID = 'PUB_KEY_ID_0119000001092024110800000000000001'
SIGNATURE_TYPE = 'WECHATPAY2-SHA256-RSA2048'
BEIJING = dt.timezone(dt.timedelta(hours=8))
AUTHORIZATION = re.compile(r'(\w+)="([^"]*)"')
_KEYS = {}


def key_pair(name):
    "A 2048-bit RSA key pair made once per run: (key, private, public PEM)"
    if name not in _KEYS:
        _KEYS[name] = pem_pair(
            rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _KEYS[name]


def pem_pair(key):
    "(key, PKCS#8 private PEM, SPKI public PEM) of an RSA key (or its PEM)"
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
    "The base64 SHA256withRSA signature of text"
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


def beijing_now():
    return dt.datetime.now(BEIJING).replace(microsecond=0).isoformat()


def fen(amount):
    "An amount (Decimal, str or int of yuan) as int fen, for the helpers"
    from decimal import Decimal
    return int(Decimal(str(amount)) * 100)


class FakeWechat:
    """The fake gateway: `trades` {out_trade_no: dict}, `refunds`
    {out_refund_no: dict}, `calls` the (api, path, body) received, `mode`
    how it answers, `refund_status` what a new refund is (SUCCESS or
    PROCESSING)"""

    def __init__(self, mchid=MCHID, appid=APPID, delay=2.0, keys=None,
            apiv3_key=None):
        "keys: {'merchant'|'platform': (key, private, public PEM)} to reuse"
        keys = keys or {}
        self.mchid = mchid
        self.appid = appid
        self.serial = MERCHANT_SERIAL
        self.public_key_id = PUBLIC_KEY_ID
        self.apiv3_key = apiv3_key or secrets.token_hex(16)
        self.delay = delay
        self.merchant_key, self.merchant_private, self.merchant_public = (
            keys.get('merchant') or key_pair('merchant'))
        self.key, self.private, self.public = (
            keys.get('platform') or key_pair('platform'))
        self.trades = {}
        self.refunds = {}
        self.calls = []
        self.mode = 'ok'
        self.refund_status = 'SUCCESS'
        self.check_authorization = True
        self.lock = threading.RLock()
        self.server = None
        self._count = 0

    # ---- lifecycle --------------------------------------------------------

    def start(self, host='127.0.0.1', port=0):
        "Serve in a thread on host:port (a free port by default)"
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get('Content-Length') or 0)
                fake.handle(self, self.rfile.read(length).decode(
                        'utf-8', 'replace'))

            def do_GET(self):
                fake.handle(self, '')
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
        return f'http://{host}:{port}'

    def account_values(self, company, **values):
        "The values of a WeChat Pay account of company on this gateway"
        result = {
            'name': "Fake WeChat Pay", 'company': int(company),
            'mchid': self.mchid, 'appid': self.appid,
            'merchant_private_key': self.merchant_private,
            'merchant_serial': self.serial,
            'apiv3_key': self.apiv3_key,
            'wechatpay_public_key': self.public,
            'wechatpay_public_key_id': self.public_key_id,
            'gateway': 'custom', 'gateway_url': self.url,
            'notify_url': 'https://shop.test/db/wechat/notify',
            'timeout': 1,
            }
        result.update(values)
        return result

    # ---- what WeChat Pay does on its own ---------------------------------

    def next_id(self, prefix):
        with self.lock:
            self._count += 1
            return f'{prefix}{self._count:020d}'

    def pay(self, out_trade_no, amount=None, state='SUCCESS'):
        """The buyer scanned the code and paid the transaction (made when
        missing with amount, in yuan); return it"""
        with self.lock:
            trade = self.trades.get(out_trade_no)
            if trade is None:
                trade = self.trades[out_trade_no] = self.new_trade(
                    out_trade_no, fen(amount or 0))
            if amount is not None:
                trade['amount']['total'] = fen(amount)
            trade['trade_state'] = state
            if state in {'SUCCESS', 'REFUND'}:
                trade['transaction_id'] = (trade.get('transaction_id')
                    or self.next_id('4200'))
                trade['success_time'] = beijing_now()
                trade['payer'] = {'openid': 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o'}
                trade['amount']['payer_total'] = trade['amount']['total']
            return trade

    def new_trade(self, out_trade_no, total, **values):
        trade = {
            'appid': self.appid, 'mchid': self.mchid,
            'out_trade_no': out_trade_no, 'trade_type': 'NATIVE',
            'trade_state': 'NOTPAY', 'trade_state_desc': '',
            'amount': {'total': total, 'currency': 'CNY'},
            'code_url': f'weixin://wxpay/bizpayurl?pr={secrets.token_hex(6)}',
            }
        trade.update(values)
        return trade

    def encrypt(self, resource, key=None, associated_data='transaction'):
        "The encrypted resource of a notification (AEAD_AES_256_GCM)"
        nonce = secrets.token_hex(6)
        ciphertext = AESGCM((key or self.apiv3_key).encode()).encrypt(
            nonce.encode(), json.dumps(resource).encode(),
            associated_data.encode())
        return {
            'original_type': associated_data,
            'algorithm': 'AEAD_AES_256_GCM',
            'ciphertext': base64.b64encode(ciphertext).decode(),
            'associated_data': associated_data,
            'nonce': nonce,
            }

    def notification(self, event_type, resource, timestamp=None, key=None,
            serial=None, apiv3_key=None, associated_data='transaction'):
        """(headers, body bytes) of a notification as WeChat Pay posts it:
        resource encrypted with the APIv3 key, signed with the platform
        key (or key), at timestamp (now)"""
        body = json.dumps({
                'id': secrets.token_hex(16),
                'create_time': beijing_now(),
                'resource_type': 'encrypt-resource',
                'event_type': event_type,
                'summary': '支付成功' if event_type.startswith(
                    'TRANSACTION') else '退款成功',
                'resource': self.encrypt(
                    resource, apiv3_key, associated_data),
                }, ensure_ascii=False)
        return self.signed_headers(body, timestamp, key, serial), body.encode()

    def signed_headers(self, body, timestamp=None, key=None, serial=None):
        timestamp = str(int(time.time()) if timestamp is None else timestamp)
        nonce = secrets.token_hex(16)
        return {
            'Wechatpay-Timestamp': timestamp,
            'Wechatpay-Nonce': nonce,
            'Wechatpay-Signature': sign(
                key or self.key, f'{timestamp}\n{nonce}\n{body}\n'),
            'Wechatpay-Serial': serial or self.public_key_id,
            'Wechatpay-Signature-Type': SIGNATURE_TYPE,
            'Content-Type': 'application/json',
            }

    def payment_resource(self, out_trade_no, **values):
        "The decrypted resource of the transaction's TRANSACTION.SUCCESS"
        trade = self.trades.get(out_trade_no) or self.new_trade(
            out_trade_no, 0, transaction_id=self.next_id('4200'),
            trade_state='SUCCESS', success_time=beijing_now())
        resource = {
            'mchid': self.mchid, 'appid': self.appid,
            'out_trade_no': out_trade_no,
            'transaction_id': trade.get('transaction_id', ''),
            'trade_type': 'NATIVE',
            'trade_state': trade['trade_state'],
            'trade_state_desc': '支付成功', 'bank_type': 'OTHERS',
            'attach': '', 'success_time': trade.get(
                'success_time', beijing_now()),
            'payer': trade.get('payer', {'openid': 'o-unknown'}),
            'amount': {
                'total': trade['amount']['total'],
                'payer_total': trade['amount']['total'],
                'currency': 'CNY', 'payer_currency': 'CNY'},
            }
        resource.update(values)
        return resource

    def payment_notification(self, out_trade_no, timestamp=None, key=None,
            serial=None, apiv3_key=None, **values):
        "(headers, body) of TRANSACTION.SUCCESS of the transaction"
        return self.notification(
            'TRANSACTION.SUCCESS',
            self.payment_resource(out_trade_no, **values),
            timestamp=timestamp, key=key, serial=serial, apiv3_key=apiv3_key)

    def refund_notification(self, out_refund_no, status='SUCCESS',
            timestamp=None, key=None, **values):
        """(headers, body) of REFUND.<status> of the refund (its status is
        set to status at the fake)"""
        refund = self.refunds[out_refund_no]
        with self.lock:
            refund['status'] = status
        resource = {
            'mchid': self.mchid,
            'out_trade_no': refund['out_trade_no'],
            'transaction_id': refund['transaction_id'],
            'out_refund_no': out_refund_no,
            'refund_id': refund['refund_id'],
            'refund_status': status,
            'success_time': beijing_now(),
            'user_received_account': '支付用户零钱',
            'amount': {
                'total': refund['amount']['total'],
                'refund': refund['amount']['refund'],
                'payer_total': refund['amount']['total'],
                'payer_refund': refund['amount']['refund']},
            }
        resource.update(values)
        return self.notification(f'REFUND.{status}', resource,
            timestamp=timestamp, key=key, associated_data='refund')

    # ---- the gateway ------------------------------------------------------

    def count(self, api):
        return sum(1 for a, _, _ in self.calls if a == api)

    def bodies(self, api):
        return [b for a, _, b in self.calls if a == api]

    def route(self, method, path):
        "(api, argument) of a request"
        path = urllib.parse.urlsplit(path).path
        if method == 'POST' and path == '/v3/pay/transactions/native':
            return 'pay', None
        match = re.fullmatch(
            r'/v3/pay/transactions/out-trade-no/([^/]+)(/close)?', path)
        if match and method == ('POST' if match.group(2) else 'GET'):
            return ('close' if match.group(2) else 'query'), urllib.parse.unquote(
                match.group(1))
        if method == 'POST' and path == '/v3/refund/domestic/refunds':
            return 'refund', None
        match = re.fullmatch(r'/v3/refund/domestic/refunds/([^/]+)', path)
        if match and method == 'GET':
            return 'query_refund', urllib.parse.unquote(match.group(1))
        return None, None

    def authorized(self, handler, body):
        "Is the request signed by the merchant's key (Authorization)?"
        header = handler.headers.get('Authorization', '')
        scheme, _, rest = header.partition(' ')
        values = dict(AUTHORIZATION.findall(rest))
        if (scheme != SIGNATURE_TYPE or values.get('mchid') != self.mchid
                or values.get('serial_no') != self.serial):
            return False
        text = (f"{handler.command}\n{handler.path}\n"
            f"{values.get('timestamp')}\n{values.get('nonce_str')}\n{body}\n")
        return verify(self.merchant_public, text, values.get('signature', ''))

    def handle(self, handler, body):
        api, argument = self.route(handler.command, handler.path)
        with self.lock:
            self.calls.append((api, handler.path, body))
        mode = self.mode
        if mode == 'down':
            # The connection is dropped without an answer
            handler.close_connection = True
            handler.connection.shutdown(2)
            return
        if mode == 'slow':
            time.sleep(self.delay)
        if mode == '500':
            return self.send(handler, 500, 'Internal Server Error',
                content_type='text/plain')
        if mode == 'garbage':
            return self.answer(handler, 200, '<html>Bad Gateway</html>')
        if api is None:
            return self.answer(handler, 404, {
                    'code': 'NOT_FOUND', 'message': 'no such API'})
        if self.check_authorization and not self.authorized(handler, body):
            return self.answer(handler, 401, {
                    'code': 'SIGN_ERROR', 'message': '签名错误'})
        if mode == 'error':
            return self.answer(handler, 500, {
                    'code': 'SYSTEM_ERROR', 'message': '系统错误'})
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            return self.answer(handler, 400, {
                    'code': 'PARAM_ERROR', 'message': 'not JSON'})
        with self.lock:
            status, content = getattr(self, f'api_{api}')(data, argument)
        self.answer(handler, status, content,
            key=self.merchant_key if mode == 'badsign' else None)

    def answer(self, handler, status, content, key=None):
        "Send content (a dict, or text) signed as WeChat Pay signs"
        if content is None:
            text = ''
        elif isinstance(content, str):
            text = content
        else:
            text = json.dumps(content, ensure_ascii=False)
        headers = self.signed_headers(text, key=key)
        self.send(handler, status, text, headers)

    def send(self, handler, status, text, headers=None,
            content_type='application/json'):
        data = text.encode()
        try:
            handler.send_response(status)
            for name, value in (headers or {
                        'Content-Type': content_type}).items():
                handler.send_header(name, value)
            handler.send_header('Content-Length', str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (slow)

    @staticmethod
    def not_exist(code='ORDER_NOT_EXIST'):
        return 404, {'code': code, 'message': '订单不存在'}

    def api_pay(self, data, argument):
        amount = data.get('amount') or {}
        total = amount.get('total')
        number = data.get('out_trade_no')
        if (data.get('mchid') != self.mchid or data.get('appid') != self.appid
                or type(total) is not int or total <= 0 or not number
                or not data.get('description')
                or not data.get('notify_url')):
            return 400, {'code': 'PARAM_ERROR', 'message': '参数错误'}
        trade = self.trades.get(number)
        if trade is None:
            trade = self.trades[number] = self.new_trade(number, total)
        if trade['trade_state'] in {'SUCCESS', 'REFUND'}:
            return 400, {'code': 'ORDERPAID', 'message': '该订单已支付'}
        if trade['trade_state'] == 'CLOSED':
            return 400, {'code': 'ORDER_CLOSED', 'message': '订单已关闭'}
        if trade['amount']['total'] != total:
            return 400, {'code': 'INVALID_REQUEST',
                'message': '201 商户订单号重复'}
        trade.update(description=data['description'],
            notify_url=data['notify_url'],
            time_expire=data.get('time_expire'))
        return 200, {'code_url': trade['code_url']}

    def api_query(self, data, number):
        trade = self.trades.get(number)
        if trade is None:
            return self.not_exist()
        return 200, {k: v for k, v in trade.items() if k not in {
                'code_url', 'description', 'notify_url', 'time_expire'}}

    def api_close(self, data, number):
        if data.get('mchid') != self.mchid:
            return 400, {'code': 'PARAM_ERROR', 'message': '参数错误'}
        trade = self.trades.get(number)
        if trade is None:
            return self.not_exist()
        if trade['trade_state'] in {'SUCCESS', 'REFUND'}:
            return 400, {'code': 'ORDERPAID', 'message': '该订单已支付'}
        trade['trade_state'] = 'CLOSED'
        return 204, None

    def api_refund(self, data, argument):
        number = data.get('out_refund_no')
        amount = data.get('amount') or {}
        trade = self.trades.get(data.get('out_trade_no'))
        if trade is None:
            return self.not_exist('RESOURCE_NOT_EXISTS')
        if number in self.refunds:
            return 200, self.refunds[number]
        if trade['trade_state'] not in {'SUCCESS', 'REFUND'}:
            return 400, {'code': 'INVALID_REQUEST', 'message': '订单未支付'}
        refund, total = amount.get('refund'), amount.get('total')
        if (not number or type(refund) is not int or refund <= 0
                or total != trade['amount']['total']
                or amount.get('currency') != 'CNY'):
            return 400, {'code': 'PARAM_ERROR', 'message': '参数错误'}
        refunded = sum(r['amount']['refund'] for r in self.refunds.values()
            if r['out_trade_no'] == trade['out_trade_no']
            and r['status'] in {'SUCCESS', 'PROCESSING'})
        if refunded + refund > total:
            return 403, {'code': 'NOT_ENOUGH', 'message': '退款金额超限'}
        self.refunds[number] = {
            'refund_id': self.next_id('5030'),
            'out_refund_no': number,
            'transaction_id': trade['transaction_id'],
            'out_trade_no': trade['out_trade_no'],
            'channel': 'ORIGINAL',
            'user_received_account': '支付用户零钱',
            'create_time': beijing_now(),
            'status': self.refund_status,
            'reason': data.get('reason', ''),
            'notify_url': data.get('notify_url'),
            'amount': {
                'total': total, 'refund': refund,
                'payer_total': total, 'payer_refund': refund,
                'currency': 'CNY'},
            }
        trade['trade_state'] = 'REFUND'
        return 200, self.refunds[number]

    def api_query_refund(self, data, number):
        refund = self.refunds.get(number)
        if refund is None:
            return 404, {'code': 'RESOURCE_NOT_EXISTS',
                'message': '退款单不存在'}
        return 200, refund

"""Alipay accounts of the companies and the client of the Alipay gateway.

python-alipay-sdk signs the requests and verifies the signatures; it has no
gateway setting and no control of the HTTP call (it sends a GET with
`urlopen` and raises opaque errors), so the HTTP exchange is done here with
the standard library: a POST to the account's gateway with the account's
timeout, and every failure (unreachable, slow, HTTP error, garbage, bad
signature, `error_response`) becomes an AlipayError with a clear message.
"""
import base64
import binascii
import datetime as dt
import functools
import http.client
import json
import logging
import socket
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal, InvalidOperation

from sql import Literal
from sql.operators import Equal

from trytond.i18n import gettext
from trytond.model import (
    DeactivableMixin, Exclude, ModelSQL, ModelView, fields)
from trytond.modules.course.course import CompanyMixin
from trytond.modules.course.rpc import RPCInputMixin
from trytond.pool import Pool
from trytond.pyson import Eval

from .exceptions import AccountValidationError, AlipayAccountError, AlipayError

logger = logging.getLogger(__name__)

GATEWAYS = {
    'production': 'https://openapi.alipay.com/gateway.do',
    'sandbox': 'https://openapi-sandbox.dl.alipaydev.com/gateway.do',
    }
# Beijing time (China has no daylight saving time): Alipay's dates
BEIJING = dt.timezone(dt.timedelta(hours=8))
ALIPAY_DATETIME = '%Y-%m-%d %H:%M:%S'
SUCCESS_CODE = '10000'
MAX_RESPONSE = 1024 * 1024


def load_key(text, private):
    """The RSA key of text (PEM, or the bare base64 the Alipay console
    shows, PKCS#1 or PKCS#8), or None when it is not a key of the kind"""
    from Cryptodome.PublicKey import RSA
    if not text or not isinstance(text, str):
        return None
    text = text.strip()
    try:
        if '-----BEGIN' in text:
            key = RSA.import_key(text)
        else:
            key = RSA.import_key(base64.b64decode(
                    ''.join(text.split()), validate=True))
    except (ValueError, IndexError, TypeError, binascii.Error):
        return None
    if key.has_private() != private:
        return None
    if key.size_in_bits() < 2048:
        return None
    return key


@functools.lru_cache(maxsize=64)
def sdk_client(app_id, private_text, public_text, gateway):
    """The SDK client of these keys and gateway, None when a key is not
    valid; one per process: importing an RSA private key checks its primes
    (tens of milliseconds per notify or payment page otherwise).  Keyed by
    the keys' text, so an account with new keys gets a new client."""
    from alipay import AliPay
    private = load_key(private_text, True)
    public = load_key(public_text, False)
    if private is None or public is None:
        return None
    client = AliPay(
        appid=app_id,
        app_private_key_string=private.export_key('PEM').decode(),
        alipay_public_key_string=public.export_key('PEM').decode(),
        sign_type='RSA2')
    client._gateway = gateway
    return client


def to_beijing(value):
    "The naive UTC datetime value as Alipay's Beijing time text"
    return value.replace(tzinfo=dt.timezone.utc).astimezone(
        BEIJING).strftime(ALIPAY_DATETIME)


def from_beijing(text):
    "Alipay's Beijing time text as a naive UTC datetime, or None"
    try:
        value = dt.datetime.strptime(text, ALIPAY_DATETIME)
    except (TypeError, ValueError):
        return None
    return value.replace(tzinfo=BEIJING).astimezone(
        dt.timezone.utc).replace(tzinfo=None)


def parse_amount(text):
    "Alipay's amount text as a Decimal, or None when it is not one"
    try:
        amount = Decimal(text)
    except (TypeError, ValueError, InvalidOperation):
        return None
    if not amount.is_finite() or amount < 0:
        return None
    return amount


def format_amount(amount):
    "An amount as Alipay wants it: a string with 2 decimals"
    return f'{Decimal(amount).quantize(Decimal("0.01")):f}'


class Account(RPCInputMixin, DeactivableMixin, CompanyMixin, ModelSQL, ModelView):
    "Alipay Account"
    __name__ = 'course.payment.alipay.account'
    _rec_name = 'name'

    name = fields.Char("Name", required=True)
    company = fields.Many2One(
        'company.company', "Company", required=True, ondelete='RESTRICT')
    app_id = fields.Char(
        "App ID", required=True, strip=True,
        help="The APPID of the application at the Alipay open platform.")
    app_private_key = fields.Text(
        "App Private Key", required=True, strip=False,
        help="The RSA2 private key of the application (PEM, or the base64 "
        "text the Alipay key tool shows): it signs the requests.")
    alipay_public_key = fields.Text(
        "Alipay Public Key", required=True, strip=False,
        help="Alipay's RSA2 public key for this application (PEM or "
        "base64): it verifies Alipay's answers and notifications.")
    gateway = fields.Selection([
            ('production', "Production"),
            ('sandbox', "Sandbox"),
            ('custom', "Custom URL"),
            ], "Gateway", required=True, sort=False)
    gateway_url = fields.Char(
        "Gateway URL",
        states={
            'invisible': Eval('gateway') != 'custom',
            'required': Eval('gateway') == 'custom',
            },
        help="The URL of the gateway (a local fake gateway for tests and "
        "demos).")
    seller_id = fields.Char(
        "Seller ID", required=True,
        help="The PID of the merchant (2088…): the notifications of another "
        "seller are refused.")
    notify_url = fields.Char(
        "Notify URL", required=True,
        help="The public URL of this server's notify route, "
        "https://<host>/<database>/alipay/notify: Alipay posts the payment "
        "results there.")
    return_url = fields.Char(
        "Return URL", required=True,
        help="The public URL of this server's return route, "
        "https://<host>/<database>/alipay/return: Alipay sends the "
        "student's browser there after paying.")
    storefront_url = fields.Char(
        "Storefront Page", required=True,
        help="The page of the storefront the return route redirects the "
        "student to, with the order number and state in its query.")
    timeout = fields.Integer(
        "Timeout", required=True,
        domain=[('timeout', '>', 0), ('timeout', '<=', 120)],
        help="Seconds to wait for the gateway before giving up.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('company_active_exclude',
                Exclude(t, (t.company, Equal),
                    where=t.active == Literal(True)),
                'course_payment_alipay.msg_account_unique'),
            ]

    @classmethod
    def default_gateway(cls):
        return 'production'

    @classmethod
    def default_timeout(cls):
        return 10

    @classmethod
    def validate_fields(cls, accounts, field_names):
        super().validate_fields(accounts, field_names)
        cls.check_keys(accounts, field_names)
        cls.check_urls(accounts, field_names)

    @classmethod
    def check_keys(cls, accounts, field_names=None):
        "Refuse keys that are not RSA keys of the right kind"
        for account in accounts:
            for name, private in [
                    ('app_private_key', True),
                    ('alipay_public_key', False)]:
                if field_names and name not in field_names:
                    continue
                if load_key(getattr(account, name), private) is None:
                    raise AccountValidationError(gettext(
                            f'course_payment_alipay.msg_{name}_invalid',
                            account=account.rec_name))

    @classmethod
    def check_urls(cls, accounts, field_names=None):
        "The URLs must be absolute http(s) URLs"
        names = ['gateway_url', 'notify_url', 'return_url', 'storefront_url']
        for account in accounts:
            for name in names:
                if field_names and name not in field_names:
                    continue
                value = getattr(account, name)
                if not value:
                    continue
                url = urllib.parse.urlsplit(value)
                if url.scheme not in {'http', 'https'} or not url.netloc:
                    raise AccountValidationError(gettext(
                            'course_payment_alipay.msg_url_invalid',
                            account=account.rec_name, url=value,
                            field=cls.__names__(name)['field']))

    @classmethod
    def get_account(cls, company):
        "The active account of company; raise AlipayAccountError if none"
        accounts = cls.search([
                ('company', '=', int(company)),
                ('active', '=', True),
                ], limit=1)
        if not accounts:
            Company = Pool().get('company.company')
            raise AlipayAccountError(gettext(
                    'course_payment_alipay.msg_no_account',
                    company=Company(int(company)).rec_name))
        return accounts[0]

    @classmethod
    def find(cls, app_id):
        "The active account of app_id, or None"
        if not isinstance(app_id, str) or not app_id:
            return None
        accounts = cls.search([
                ('app_id', '=', app_id),
                ('active', '=', True),
                ], limit=1)
        return accounts[0] if accounts else None

    # ---- The SDK client ---------------------------------------------------

    @property
    def gateway_address(self):
        if self.gateway == 'custom':
            return self.gateway_url
        return GATEWAYS[self.gateway]

    def client(self):
        """A python-alipay-sdk client of the account, pointed at its
        gateway (the SDK only knows production and its sandbox)"""
        client = sdk_client(
            self.app_id, self.app_private_key, self.alipay_public_key,
            self.gateway_address)
        if client is None:
            raise AlipayAccountError(gettext(
                    'course_payment_alipay.msg_account_keys',
                    account=self.rec_name))
        return client

    def request(self, method, biz_content, **params):
        """The signed parameters of a request (a query string), with the
        timestamp in Beijing time (the SDK uses the server's local time)"""
        client = self.client()
        data = client.build_body(
            method, biz_content,
            timestamp=to_beijing(dt.datetime.utcnow()), **params)
        return client.sign_data(data)

    def page_pay_url(self, subject, out_trade_no, amount, time_expire=None):
        "The URL of alipay.trade.page.pay the student's browser opens"
        biz = {
            'subject': subject[:256],
            'out_trade_no': out_trade_no,
            'total_amount': format_amount(amount),
            'product_code': 'FAST_INSTANT_TRADE_PAY',
            }
        if time_expire:
            biz['time_expire'] = to_beijing(time_expire)
        query = self.request(
            'alipay.trade.page.pay', biz,
            notify_url=self.notify_url, return_url=self.return_url)
        return f'{self.gateway_address}?{query}'

    def verify(self, params):
        """Whether params (a notify or return, {name: text}) are signed by
        Alipay with RSA2: the signature over the sorted parameters without
        `sign` and `sign_type`"""
        if not isinstance(params, dict):
            return False
        data = dict(params)  # the SDK changes what it is given
        sign = data.pop('sign', None)
        sign_type = data.pop('sign_type', 'RSA2')
        if not isinstance(sign, str) or not sign or sign_type != 'RSA2':
            return False
        if not all(isinstance(v, str) for v in data.values()):
            return False
        try:
            return bool(self.client().verify(data, sign))
        except AlipayAccountError:
            raise
        except Exception:
            logger.debug("signature check failed", exc_info=True)
            return False

    def call(self, method, biz_content):
        """Call the gateway's method (alipay.trade.query, …) and return the
        verified `<method>_response` dict (business errors included: check
        its `code`); raise AlipayError when the gateway cannot be trusted"""
        client = self.client()
        body = self.request(method, biz_content).encode()
        response_type = method.replace('.', '_') + '_response'
        gateway = self.gateway_address
        logger.info("alipay %s %s to %s", method, biz_content, gateway)

        def error(message_id, **kwargs):
            text = gettext(
                f'course_payment_alipay.{message_id}', method=method,
                gateway=gateway, **kwargs)
            logger.warning("alipay %s: %s", method, text)
            return AlipayError(text)
        request = urllib.request.Request(
            gateway, data=body, method='POST', headers={
                'Content-Type':
                'application/x-www-form-urlencoded;charset=utf-8',
                })
        try:
            with urllib.request.urlopen(
                    request, timeout=self.timeout or 10) as answer:
                raw = answer.read(MAX_RESPONSE + 1)
        except urllib.error.HTTPError as exc:
            raise error('msg_gateway_http', status=exc.code)
        except (TimeoutError, socket.timeout):
            raise error('msg_gateway_timeout', seconds=self.timeout)
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                raise error('msg_gateway_timeout', seconds=self.timeout)
            raise error('msg_gateway_unreachable', error=str(exc.reason))
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise error('msg_gateway_unreachable', error=str(exc) or
                type(exc).__name__)
        try:
            if len(raw) > MAX_RESPONSE:
                raise ValueError("too large")
            text = raw.decode('utf-8')
            document = json.loads(text)
            if not isinstance(document, dict):
                raise ValueError("not an object")
        except ValueError:
            raise error('msg_gateway_garbage')
        logger.debug("alipay %s answered %s", method, text)
        if 'error_response' in document or response_type not in document:
            failure = document.get('error_response') or {}
            if not isinstance(failure, dict):
                raise error('msg_gateway_garbage')
            raise error('msg_gateway_error',
                code=str(failure.get('code', '')),
                message=str(failure.get('sub_msg') or failure.get('msg')
                    or '')[:200])
        sign = document.get('sign')
        plain = client._get_string_to_be_signed(text, response_type)
        try:
            valid = (isinstance(sign, str)
                and client._verify(plain, sign))
            result = json.loads(plain) if valid else None
        except Exception:
            valid, result = False, None
        if not valid or not isinstance(result, dict):
            raise error('msg_gateway_signature')
        return result

    @staticmethod
    def business_error(method, result):
        "The AlipayError of a business failure answered by the gateway"
        return AlipayError(gettext(
                'course_payment_alipay.msg_gateway_error',
                method=method, code=str(result.get('code', '')),
                message=str(result.get('sub_code', '')) + ' '
                + str(result.get('sub_msg') or result.get('msg') or '')[:200]))

    def storefront_redirect(self, order):
        "The storefront page with the order's number and state"
        url = urllib.parse.urlsplit(self.storefront_url)
        query = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        query += [('order', order.number), ('state', order.state)]
        return urllib.parse.urlunsplit(
            url._replace(query=urllib.parse.urlencode(query)))

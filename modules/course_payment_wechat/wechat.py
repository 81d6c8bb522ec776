"""WeChat Pay accounts of the companies and the client of the WeChat Pay
API v3 gateway.

wechatpayv3 (2.0.*) signs the requests, verifies the signatures of the
answers and decrypts the notifications.  It is built in public-key mode
(the WeChat Pay public key and its id: no call to the gateway at
construction), always with a timeout, and pointed at the account's gateway
through its private attribute `_core._gate_way` (hence the pin on 2.0.*).
Every failure of a call (unreachable, slow, HTTP 5xx, garbage, bad
signature) becomes a WechatError with a clear message.
"""
import datetime as dt
import functools
import json
import logging
import re
import time
import urllib.parse
from decimal import Decimal

from sql import Literal
from sql.operators import Equal

from trytond.i18n import gettext
from trytond.model import (
    DeactivableMixin, Exclude, ModelSQL, ModelView, fields)
from trytond.modules.course.course import CompanyMixin
from trytond.modules.course.rpc import RPCInputMixin
from trytond.pool import Pool
from trytond.pyson import Eval

from .exceptions import AccountValidationError, WechatAccountError, WechatError

logger = logging.getLogger(__name__)

GATEWAYS = {
    'production': 'https://api.mch.weixin.qq.com',
    'backup': 'https://api2.mch.weixin.qq.com',
    }
# Beijing time (China has no daylight saving time): WeChat Pay's dates
BEIJING = dt.timezone(dt.timedelta(hours=8))
# A notification older (or further in the future) than this is refused
NOTIFY_WINDOW = 300
MAX_NOTIFY = 64 * 1024
APIV3_KEY = re.compile(r'^[\x21-\x7e]{32}$')
MCHID = re.compile(r'^[0-9]{1,32}$')
SERIAL = re.compile(r'^[0-9A-Fa-f]{1,64}$')
PUBLIC_KEY_ID = re.compile(r'^[A-Za-z0-9_-]{1,64}$')
LOCAL_HOSTS = {'127.0.0.1', 'localhost', '::1'}
SIGNATURE_TYPE = 'WECHATPAY2-SHA256-RSA2048'
HEADERS = [
    'Wechatpay-Serial', 'Wechatpay-Timestamp', 'Wechatpay-Nonce',
    'Wechatpay-Signature', 'Wechatpay-Signature-Type']


def load_private_key(text):
    """The RSA private key of text (PKCS#8 PEM, or its bare base64 as the
    SDK accepts it) of 2048 bits or more, or None"""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from wechatpayv3.utils import load_private_key as sdk_load
    if not text or not isinstance(text, str):
        return None
    try:
        key = sdk_load(text.strip())
    except Exception:
        return None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        return None
    return key


def load_public_key(text):
    "The RSA public key of text (SPKI PEM or base64) of 2048+ bits, or None"
    from cryptography.hazmat.primitives.asymmetric import rsa
    from wechatpayv3.utils import load_public_key as sdk_load
    if not text or not isinstance(text, str):
        return None
    try:
        key = sdk_load(text.strip())
    except Exception:
        return None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        return None
    return key


def proxy_of(gateway):
    """The proxies of the SDK's calls: none for a local gateway (a proxy of
    the environment would get 127.0.0.1), the environment's otherwise"""
    host = urllib.parse.urlsplit(gateway).hostname
    if host in LOCAL_HOSTS:
        return {'http': None, 'https': None}
    return None


@functools.lru_cache(maxsize=64)
def sdk_client(mchid, private_key, serial, appid, apiv3_key, public_key,
        public_key_id, notify_url, gateway, timeout):
    """The SDK client of these settings, None when a key is not valid; one
    per process (loading the private key costs), keyed by the settings so
    that an account changed gets a new client"""
    from wechatpayv3 import WeChatPay, WeChatPayType
    if (load_private_key(private_key) is None
            or load_public_key(public_key) is None):
        return None
    try:
        client = WeChatPay(
            wechatpay_type=WeChatPayType.NATIVE, mchid=mchid,
            private_key=private_key.strip(), cert_serial_no=serial,
            appid=appid, apiv3_key=apiv3_key, notify_url=notify_url,
            public_key=public_key.strip(), public_key_id=public_key_id,
            timeout=(min(timeout, 5), timeout), proxy=proxy_of(gateway))
    except Exception:
        logger.warning("wechat client of %s not built", mchid, exc_info=True)
        return None
    client._core._gate_way = gateway.rstrip('/')
    return client


def to_fen(amount):
    """A Decimal amount of yuan as the int of fen WeChat Pay wants; a value
    that is not a whole number of fen raises ValueError (never rounded)"""
    if not isinstance(amount, (Decimal, int)) or isinstance(amount, bool):
        raise ValueError(f"not a Decimal amount: {amount!r}")
    fen = Decimal(amount) * 100
    if not fen.is_finite() or fen < 0 or fen != fen.to_integral_value():
        raise ValueError(f"not a whole number of fen: {amount!r}")
    return int(fen)


def from_fen(value):
    "WeChat Pay's int of fen as a Decimal of yuan, or None"
    if type(value) is not int or value < 0:
        return None
    return (Decimal(value) / 100).quantize(Decimal('0.01'))


def to_rfc3339(value):
    "The naive UTC datetime value as WeChat Pay's Beijing time (+08:00)"
    return value.replace(tzinfo=dt.timezone.utc, microsecond=0).astimezone(
        BEIJING).isoformat()


def from_rfc3339(text):
    "WeChat Pay's RFC 3339 time as a naive UTC datetime, or None"
    if not isinstance(text, str):
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=BEIJING)
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None)


class NotifyRefused(Exception):
    """A notification that is refused: answered status (4xx) with reason,
    so WeChat Pay sends it again"""

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Account(
        RPCInputMixin, DeactivableMixin, CompanyMixin, ModelSQL, ModelView):
    "WeChat Pay Account"
    __name__ = 'course.payment.wechat.account'
    _rec_name = 'name'

    name = fields.Char("Name", required=True)
    company = fields.Many2One(
        'company.company', "Company", required=True, ondelete='RESTRICT')
    mchid = fields.Char(
        "Merchant ID", required=True, strip=True,
        help="The merchant number (商户号) of WeChat Pay: the "
        "notifications of another merchant are refused.")
    appid = fields.Char(
        "App ID", required=True, strip=True,
        help="The APPID bound to the merchant (official account, mini "
        "program or app).")
    merchant_private_key = fields.Text(
        "Merchant Private Key", required=True, strip=False,
        help="The merchant's API private key (apiclient_key.pem, PKCS#8 "
        "PEM): it signs the requests.")
    merchant_serial = fields.Char(
        "Merchant Certificate Serial", required=True, strip=True,
        help="The serial number of the merchant's API certificate "
        "(hexadecimal).")
    apiv3_key = fields.Char(
        "APIv3 Key", required=True, strip=False,
        help="The 32 characters of the APIv3 key set in the merchant "
        "platform: it decrypts the notifications.")
    wechatpay_public_key = fields.Text(
        "WeChat Pay Public Key", required=True, strip=False,
        help="WeChat Pay's public key (pub_key.pem): it verifies the "
        "answers and notifications.")
    wechatpay_public_key_id = fields.Char(
        "WeChat Pay Public Key ID", required=True, strip=True,
        help="The id of WeChat Pay's public key (PUB_KEY_ID_…), the "
        "Wechatpay-Serial of its signatures.")
    gateway = fields.Selection([
            ('production', "Production"),
            ('backup', "Backup Domain"),
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
    notify_url = fields.Char(
        "Notify URL", required=True,
        help="The public URL of this server's notify route, "
        "https://<host>/<database>/wechat/notify: WeChat Pay posts the "
        "payment and refund results there.")
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
                'course_payment_wechat.msg_account_unique'),
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
        cls.check_codes(accounts, field_names)
        cls.check_urls(accounts, field_names)

    @classmethod
    def check_keys(cls, accounts, field_names=None):
        "Refuse keys that are not RSA keys of the right kind"
        for account in accounts:
            for name, load in [
                    ('merchant_private_key', load_private_key),
                    ('wechatpay_public_key', load_public_key)]:
                if field_names and name not in field_names:
                    continue
                if load(getattr(account, name)) is None:
                    raise AccountValidationError(gettext(
                            f'course_payment_wechat.msg_{name}_invalid',
                            account=account.rec_name))

    @classmethod
    def check_codes(cls, accounts, field_names=None):
        "The merchant id, serial, APIv3 key and public key id as WeChat's"
        for account in accounts:
            for name, pattern in [
                    ('mchid', MCHID),
                    ('merchant_serial', SERIAL),
                    ('apiv3_key', APIV3_KEY),
                    ('wechatpay_public_key_id', PUBLIC_KEY_ID)]:
                if field_names and name not in field_names:
                    continue
                value = getattr(account, name)
                if not isinstance(value, str) or not pattern.match(value):
                    raise AccountValidationError(gettext(
                            f'course_payment_wechat.msg_{name}_invalid',
                            account=account.rec_name))

    @classmethod
    def check_urls(cls, accounts, field_names=None):
        "The URLs must be absolute http(s) URLs"
        for account in accounts:
            for name in ['gateway_url', 'notify_url']:
                if field_names and name not in field_names:
                    continue
                value = getattr(account, name)
                if not value:
                    continue
                url = urllib.parse.urlsplit(value)
                if url.scheme not in {'http', 'https'} or not url.netloc:
                    raise AccountValidationError(gettext(
                            'course_payment_wechat.msg_url_invalid',
                            account=account.rec_name, url=value,
                            field=cls.__names__(name)['field']))

    @classmethod
    def get_account(cls, company):
        "The active account of company; raise WechatAccountError if none"
        accounts = cls.search([
                ('company', '=', int(company)),
                ('active', '=', True),
                ], limit=1)
        if not accounts:
            Company = Pool().get('company.company')
            raise WechatAccountError(gettext(
                    'course_payment_wechat.msg_no_account',
                    company=Company(int(company)).rec_name))
        return accounts[0]

    # ---- The SDK client ---------------------------------------------------

    @property
    def gateway_address(self):
        if self.gateway == 'custom':
            return self.gateway_url
        return GATEWAYS[self.gateway]

    def client(self):
        "The wechatpayv3 client of the account, pointed at its gateway"
        client = sdk_client(
            self.mchid, self.merchant_private_key, self.merchant_serial,
            self.appid, self.apiv3_key, self.wechatpay_public_key,
            self.wechatpay_public_key_id, self.notify_url,
            self.gateway_address, self.timeout or 10)
        if client is None:
            raise WechatAccountError(gettext(
                    'course_payment_wechat.msg_account_keys',
                    account=self.rec_name))
        return client

    def call(self, api, **kwargs):
        """Call the SDK's api (pay, query, close, refund, query_refund) and
        return (HTTP status, answer dict): 2xx answers are verified by the
        SDK, 4xx are WeChat Pay's refusals (the caller reads their code);
        raise WechatError when the gateway cannot be trusted"""
        import requests
        client = self.client()
        gateway = self.gateway_address
        logger.info("wechat %s %s to %s", api, kwargs, gateway)

        def error(message_id, **values):
            text = gettext(
                f'course_payment_wechat.{message_id}', method=api,
                gateway=gateway, **values)
            logger.warning("wechat %s: %s", api, text)
            return WechatError(text)
        try:
            status, text = getattr(client, api)(**kwargs)
        except requests.Timeout:
            raise error('msg_gateway_timeout', seconds=self.timeout)
        except requests.RequestException as exc:
            raise error('msg_gateway_unreachable',
                error=type(exc).__name__)
        except Exception as exc:
            # The SDK raises plain exceptions: a bad signature, garbage
            if 'signature' in str(exc):
                raise error('msg_gateway_signature')
            logger.warning("wechat %s failed", api, exc_info=True)
            raise error('msg_gateway_garbage')
        if not 200 <= status < 500:
            raise error('msg_gateway_http', status=status)
        if isinstance(text, bytes):
            text = text.decode('utf-8', 'replace')
        try:
            document = json.loads(text) if text else {}
            if not isinstance(document, dict):
                raise ValueError("not an object")
        except ValueError:
            raise error('msg_gateway_garbage')
        logger.debug("wechat %s answered %s %s", api, status, text)
        return status, document

    @staticmethod
    def business_error(api, status, document):
        "The WechatError of a refusal answered by the gateway"
        return WechatError(gettext(
                'course_payment_wechat.msg_gateway_error',
                method=api, code=f"{status} {document.get('code', '')}",
                message=str(document.get('message') or '')[:200]))

    # ---- Notifications ----------------------------------------------------

    @classmethod
    def verify_notification(cls, headers, body):
        """(account, notification) of a notification WeChat Pay posted:
        headers (any mapping), body the raw bytes.  Raise NotifyRefused
        when it is too large, not signed as WeChat Pay signs, out of the
        time window, of no active account, or not decrypted."""
        if not isinstance(body, bytes) or len(body) > MAX_NOTIFY:
            raise NotifyRefused(413, 'too large')
        values = {}
        for name in HEADERS:
            value = headers.get(name)
            if not isinstance(value, str) or not value:
                raise NotifyRefused(400, f'no {name}')
            values[name] = value
        if values['Wechatpay-Signature-Type'] != SIGNATURE_TYPE:
            raise NotifyRefused(400, 'signature type')
        try:
            timestamp = int(values['Wechatpay-Timestamp'])
        except ValueError:
            raise NotifyRefused(400, 'timestamp')
        if abs(time.time() - timestamp) > NOTIFY_WINDOW:
            raise NotifyRefused(400, 'timestamp out of window')
        try:
            text = body.decode('utf-8')
        except UnicodeDecodeError:
            raise NotifyRefused(400, 'not utf-8')
        # Only the serial of an account's public key: another one would
        # make the SDK fetch certificates from the gateway
        accounts = cls.search([
                ('wechatpay_public_key_id', '=',
                    values['Wechatpay-Serial']),
                ('active', '=', True),
                ])
        if not accounts:
            raise NotifyRefused(400, 'unknown serial')
        for account in accounts:
            try:
                notification = account.client().callback(values, text)
            except Exception:
                logger.debug("wechat callback failed", exc_info=True)
                notification = None
            if (isinstance(notification, dict)
                    and isinstance(notification.get('resource'), dict)):
                return account, notification
        raise NotifyRefused(401, 'signature')

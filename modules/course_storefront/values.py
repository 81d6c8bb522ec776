"""How values go out: money as text with the currency's digits, datetimes
ISO 8601 with the company's offset"""
import datetime as dt
from decimal import Decimal

try:
    from zoneinfo import ZoneInfo
except ImportError:  # pragma: no cover
    ZoneInfo = None


def money(amount, currency):
    "'1380.00': the amount rounded to the currency, as text"
    if amount is None:
        return None
    exponent = Decimal(1).scaleb(-currency.digits)
    return str(currency.round(Decimal(amount)).quantize(exponent))


def timezone(company):
    name = getattr(company, 'timezone', None)
    try:
        return ZoneInfo(name) if name else dt.timezone.utc
    except Exception:
        return dt.timezone.utc


def when(value, company):
    "A stored (naive UTC) datetime as ISO 8601 in the company's zone"
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc).astimezone(
        timezone(company)).isoformat()

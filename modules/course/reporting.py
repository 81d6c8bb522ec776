"""Reporting: the context every course report is read in (company, dates,
period) and the SQL helpers of the reports that each module builds on the
records it owns (the pattern of Tryton's sale reporting)."""
import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import relativedelta
from sql import Literal
from sql.functions import DateTrunc, Function

from trytond import backend
from trytond.model import ModelView, fields
from trytond.pool import Pool
from trytond.pyson import Eval, If
from trytond.transaction import Transaction

PERIODS = ['day', 'month', 'year']
# Casts SQL expressions to dates (bound to no model)
DATE = fields.Date("Date")


class ReportingContext(ModelView):
    "Course Reporting Context"
    __name__ = 'course.reporting.context'
    __string__ = "Reporting Context"

    company = fields.Many2One('company.company', "Company", required=True)
    from_date = fields.Date(
        "From Date",
        domain=[
            If(Eval('to_date') & Eval('from_date'),
                ('from_date', '<=', Eval('to_date')),
                ()),
            ])
    to_date = fields.Date(
        "To Date",
        domain=[
            If(Eval('from_date') & Eval('to_date'),
                ('to_date', '>=', Eval('from_date')),
                ()),
            ])
    period = fields.Selection([
            ('year', "Year"),
            ('month', "Month"),
            ('day', "Day"),
            ], "Period", required=True,
        help="The length of the rows of the reports by date.")

    @classmethod
    def default_company(cls):
        return Transaction().context.get('company')

    @classmethod
    def default_from_date(cls):
        context = Transaction().context
        if 'from_date' in context:
            return context['from_date']
        Date = Pool().get('ir.date')
        return Date.today() - relativedelta(years=1)

    @classmethod
    def default_to_date(cls):
        context = Transaction().context
        if 'to_date' in context:
            return context['to_date']
        return Pool().get('ir.date').today()

    @classmethod
    def default_period(cls):
        return Transaction().context.get('period', 'month')


class _SQLiteDate(Function):
    "SQLite's DATE(timestamp, modifier)"
    __slots__ = ()
    _function = 'DATE'


def _context_date(name):
    "The date of the context under name (a date or its ISO text), or None"
    value = Transaction().context.get(name)
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        return None
    return value


class ReportingMixin:
    """An SQL report (a ModelSQL with table_query) read in the context of
    course.reporting.context: the rows of the context's company, between
    its dates (days of the company's time zone), by its period.

    Subclasses build their query with `_company_id()`, `_local_date()`,
    `_in_dates()`, `_period()` and `_company_columns()`; on SQLite their
    Numeric sums are read as Decimals of the currency's digits."""
    __slots__ = ()

    company = fields.Many2One('company.company', "Company", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        # Figures are read only: no door to write them (the access rights
        # refuse it too, but a table query would fail first)
        for method in ['create', 'write', 'delete', 'copy', 'import_data']:
            cls.__rpc__.pop(method, None)

    @classmethod
    def _company(cls):
        "The company of the context, or None"
        Company = Pool().get('company.company')
        company_id = Transaction().context.get('company')
        if isinstance(company_id, int) and company_id > 0:
            companies = Company.search([('id', '=', company_id)])
            if companies:
                return companies[0]
        return None

    @classmethod
    def _company_id(cls):
        "The id of the context's company, -1 without one (no row matches)"
        company = cls._company()
        return company.id if company else -1

    @classmethod
    def _company_columns(cls):
        "The company and currency columns (constants: one company a query)"
        company = cls._company()
        columns = [cls.company.sql_cast(
                Literal(company.id if company else -1)).as_('company')]
        if 'currency' in cls._fields:
            columns.append(cls.currency.sql_cast(Literal(
                        company.currency.id if company else -1)
                    ).as_('currency'))
        return columns

    @classmethod
    def _timezone(cls):
        company = cls._company()
        name = getattr(company, 'timezone', None) if company else None
        try:
            return ZoneInfo(name) if name else ZoneInfo('UTC')
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo('UTC')

    @classmethod
    def _local_date(cls, column):
        """The day, in the company's time zone, of column (a UTC
        timestamp)"""
        timezone = cls._timezone()
        if backend.name == 'sqlite':
            # Tryton's SQLite backend knows no time zone: shift by the
            # zone's offset at the end of the period (exact for the zones
            # without daylight saving time, such as Asia/Shanghai)
            at = dt.datetime.combine(
                _context_date('to_date') or dt.date.today(), dt.time(12))
            offset = timezone.utcoffset(at)
            return _SQLiteDate(
                column, f'{int(offset.total_seconds()):+d} seconds')
        return DATE.sql_cast(column, timezone=timezone.key)

    @classmethod
    def _in_dates(cls, date):
        "The condition keeping the dates between those of the context"
        where = Literal(True)
        from_date = _context_date('from_date')
        if from_date:
            where &= date >= from_date
        to_date = _context_date('to_date')
        if to_date:
            where &= date <= to_date
        return where

    @classmethod
    def _period(cls, date):
        "The first day of the context's period (day, month, year) of date"
        period = Transaction().context.get('period')
        if period not in PERIODS:
            period = 'month'
        return DATE.sql_cast(DateTrunc(period, date))

    @classmethod
    def read(cls, ids, fields_names):
        result = super().read(ids, fields_names)
        numeric = [n for n in fields_names
            if n in cls._fields and cls._fields[n]._type == 'numeric']
        if numeric and backend.name == 'sqlite':
            cls._as_decimals(result, numeric)
        return result

    @classmethod
    def _as_decimals(cls, rows, names):
        "SQLite's float sums as Decimals of the currency's digits"
        Currency = Pool().get('currency.currency')
        currencies = {}
        for row in rows:
            currency_id = row.get('currency')
            if currency_id is None:
                company = cls._company()
                currency_id = company.currency.id if company else None
            if currency_id not in currencies:
                digits = (Currency(currency_id).digits
                    if currency_id is not None else 2)
                currencies[currency_id] = Decimal(1).scaleb(-digits)
            exp = currencies[currency_id]
            for name in names:
                value = row.get(name)
                if isinstance(value, (float, int)):
                    row[name] = Decimal(str(value)).quantize(exp)

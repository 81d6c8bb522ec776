"""Credit point and wallet figures by period: the movements of the two
ledgers summed by kind, in the context's dates."""
from sql import Literal
from sql.aggregate import Min, Sum
from sql.conditionals import Case

from trytond.model import ModelSQL, ModelView, fields
from trytond.modules.course.reporting import ReportingMixin
from trytond.modules.currency.fields import Monetary
from trytond.pool import Pool


class LedgerFiguresMixin(ReportingMixin):
    """The movements of the ledger `_movement` summed by period: each field
    of `_columns` ({field: (kinds, sign)}) is sign × the sum of the
    movements of those kinds; `net` sums them all"""
    __slots__ = ()
    _movement = None
    _columns = {}

    date = fields.Date(
        "Date", readonly=True, help="The first day of the period.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('date', 'DESC'), ('id', 'DESC')]

    @classmethod
    def table_query(cls):
        Movement = Pool().get(cls._movement)
        ledger = Movement.__table__()
        date = cls._local_date(ledger.date)
        # The period computed in a subquery: PostgreSQL cannot group by an
        # expression holding a query parameter
        movement = ledger.select(
            ledger.id, ledger.kind,
            cls.net.sql_cast(
                getattr(ledger, Movement._amount_field)).as_('value'),
            cls._period(date).as_('period'),
            where=(ledger.company == cls._company_id())
            & cls._in_dates(date))
        value = movement.value
        zero = Literal(0)
        columns = [
            getattr(cls, name).sql_cast(Sum(Case(
                        (movement.kind.in_(list(kinds)), value),
                        else_=zero)) * sign).as_(name)
            for name, (kinds, sign) in cls._columns.items()]
        return movement.select(
            Min(movement.id).as_('id'),
            *cls._company_columns(),
            movement.period.as_('date'),
            *columns,
            cls.net.sql_cast(Sum(value)).as_('net'),
            group_by=[movement.period])


class CreditFigures(LedgerFiguresMixin, ModelSQL, ModelView):
    "Credit Point Figures"
    __name__ = 'course.credit.reporting'
    __string__ = "Credit Point Figures"
    _movement = 'course.credit.movement'
    _columns = {
        'issued': (['grant', 'earn'], 1),
        'spent': (['spend'], -1),
        'returned': (['refund'], 1),
        'expired': (['expire'], -1),
        'adjusted': (['adjust'], 1),
        }

    issued = fields.Integer(
        "Issued", readonly=True,
        help="Points given (welcome, gifts) and earned by paid orders; "
        "earned points taken back by a refund count less.")
    spent = fields.Integer(
        "Spent", readonly=True, help="Points spent on orders.")
    returned = fields.Integer(
        "Returned", readonly=True,
        help="Spent points given back (order cancelled, expired or "
        "refunded).")
    expired = fields.Integer(
        "Expired", readonly=True, help="Points that expired.")
    adjusted = fields.Integer(
        "Adjusted", readonly=True, help="Staff adjustments, with their sign.")
    net = fields.Integer(
        "Net Change", readonly=True,
        help="How much the students' balances changed.")


class WalletFigures(LedgerFiguresMixin, ModelSQL, ModelView):
    "Wallet Figures"
    __name__ = 'course.wallet.reporting'
    __string__ = "Wallet Figures"
    _movement = 'course.wallet.movement'
    _columns = {
        'topped_up': (['topup'], 1),
        'paid': (['pay'], -1),
        'refunded': (['refund'], 1),
        'adjusted': (['adjust'], 1),
        }

    currency = fields.Many2One(
        'currency.currency', "Currency", readonly=True)
    topped_up = Monetary(
        "Top-ups", digits='currency', currency='currency', readonly=True,
        help="Money put in the wallets.")
    paid = Monetary(
        "Payments", digits='currency', currency='currency', readonly=True,
        help="Orders paid from the wallets.")
    refunded = Monetary(
        "Refunds", digits='currency', currency='currency', readonly=True,
        help="Wallet payments given back (order refunded).")
    adjusted = Monetary(
        "Adjusted", digits='currency', currency='currency', readonly=True,
        help="Staff adjustments, with their sign.")
    net = Monetary(
        "Net Change", digits='currency', currency='currency',
        readonly=True, help="How much the wallets' balances changed.")

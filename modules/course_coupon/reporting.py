"""Coupon figures: per coupon, the grants given to students, the grants
used by paid orders and the discount they gave, in the context's dates."""
from sql import Literal, Null
from sql.aggregate import Sum
from sql.conditionals import Case

from trytond.model import ModelSQL, ModelView, fields
from trytond.modules.course.reporting import ReportingMixin
from trytond.modules.currency.fields import Monetary
from trytond.pool import Pool


class CouponUsage(ReportingMixin, ModelSQL, ModelView):
    "Coupon Usage"
    __name__ = 'course.coupon.reporting'
    __string__ = "Coupon Usage"

    coupon = fields.Many2One('course.coupon', "Coupon", readonly=True)
    currency = fields.Many2One(
        'currency.currency', "Currency", readonly=True)
    granted = fields.Integer(
        "Granted", readonly=True,
        help="The grants a student got in the period (given by staff, "
        "claimed or redeemed from a code).")
    used = fields.Integer(
        "Used", readonly=True,
        help="The grants used by an order paid in the period.")
    discount_amount = Monetary(
        "Discount Given", digits='currency', currency='currency',
        readonly=True,
        help="What the grants used in the period took off their orders.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('used', 'DESC'), ('id', 'ASC')]

    @classmethod
    def table_query(cls):
        Grant = Pool().get('course.coupon.grant')
        grant = Grant.__table__()
        granted = (grant.granted_at != Null) & cls._in_dates(
            cls._local_date(grant.granted_at))
        # A used grant stays used when its order is refunded later
        used = ((grant.state == 'used') & (grant.used_at != Null)
            & cls._in_dates(cls._local_date(grant.used_at)))
        one, zero = Literal(1), Literal(0)
        discount = cls.discount_amount.sql_cast(grant.discount_amount)
        return grant.select(
            grant.coupon.as_('id'),
            *cls._company_columns(),
            grant.coupon.as_('coupon'),
            Sum(Case((granted, one), else_=zero)).as_('granted'),
            Sum(Case((used, one), else_=zero)).as_('used'),
            cls.discount_amount.sql_cast(
                Sum(Case((used, discount), else_=zero))
                ).as_('discount_amount'),
            where=(grant.company == cls._company_id()) & (granted | used),
            group_by=[grant.coupon])

    def get_rec_name(self, name):
        return self.coupon.rec_name if self.coupon else ''

"Credit settings on the course configuration"
from decimal import Decimal

from trytond.model import fields
from trytond.pool import PoolMeta

DEFAULT_CREDIT_RATIO = 10


class Configuration(metaclass=PoolMeta):
    __name__ = 'course.configuration'
    credit_ratio = fields.Integer(
        "Credit Ratio", required=True,
        domain=[('credit_ratio', '>', 0)],
        help="How many credit points are worth one unit of the currency "
        "(1 yuan).")
    credit_earn_rate = fields.Numeric(
        "Credit Earn Rate", digits=(16, 4), required=True,
        domain=[
            ('credit_earn_rate', '>=', 0),
            ('credit_earn_rate', '<=', 1),
            ],
        help="The share of a paid order's amount given back as credit "
        "points (0.05: 5%, converted with the credit ratio); 0 turns "
        "earning off.")

    @classmethod
    def default_credit_ratio(cls):
        return DEFAULT_CREDIT_RATIO

    @classmethod
    def default_credit_earn_rate(cls):
        return Decimal(0)

    def get_credit_ratio(self):
        return self.credit_ratio or DEFAULT_CREDIT_RATIO

    def get_credit_earn_rate(self):
        return self.credit_earn_rate or Decimal(0)

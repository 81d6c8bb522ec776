"Rights and conversions shared by the ledgers, the checkout and the wizard"
from decimal import Decimal
from fractions import Fraction


# The most points one call may move: far below the 32-bit columns, far above
# any real balance.
MAX_POINTS = 10 ** 9


def points_step(currency, ratio):
    """The smallest positive number of points worth a whole number of the
    currency's units at ratio points per unit (1 at ratio 10 in cents,
    10 at ratio 1000 in cents or at ratio 10 without decimals)"""
    return (Fraction(str(currency.rounding)) * ratio).numerator


def points_value(points, ratio):
    "What points are worth at ratio points per unit (exact)"
    return Decimal(points) / Decimal(ratio)

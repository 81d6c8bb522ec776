from trytond.exceptions import UserError
from trytond.model.exceptions import ValidationError


class CouponValidationError(ValidationError):
    "A coupon or a grant that is not consistent"


class CouponError(UserError):
    "A coupon cannot be granted, claimed, redeemed or revoked"


class RedeemRateLimitError(CouponError):
    "Too many wrong codes tried: the party must wait"

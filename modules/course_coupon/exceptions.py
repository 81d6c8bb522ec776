from trytond.exceptions import UserError
from trytond.model.exceptions import ValidationError
from trytond.modules.course.exceptions import InputError


class CouponValidationError(ValidationError):
    "A coupon or a grant that is not consistent"


class CouponError(UserError):
    "A coupon cannot be granted, claimed, redeemed or revoked"


class RedeemRateLimitError(CouponError):
    "Too many wrong codes tried: the party must wait"


class CouponModificationError(UserError):
    "A change made by hand that only the workflow may make"


class CouponInputError(InputError):
    "A parameter of a call is not what the call accepts"

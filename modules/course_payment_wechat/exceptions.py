from trytond.exceptions import UserError
from trytond.model.exceptions import ValidationError


class AccountValidationError(ValidationError):
    """A WeChat Pay account with a key that is not valid, an APIv3 key that
    is not 32 characters or a bad URL"""


class WechatAccountError(UserError):
    "No WeChat Pay account can serve the call"


class WechatError(UserError):
    """The WeChat Pay gateway could not be reached or answered what cannot
    be trusted (timeout, HTTP error, garbage, bad signature, error code)"""

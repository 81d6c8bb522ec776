from trytond.exceptions import UserError
from trytond.model.exceptions import ValidationError


class AccountValidationError(ValidationError):
    "An Alipay account with a key that is not a valid RSA key or a bad URL"


class AlipayAccountError(UserError):
    "No Alipay account can serve the call"


class AlipayError(UserError):
    """The Alipay gateway could not be reached or answered what cannot be
    trusted (timeout, HTTP error, garbage, bad signature, error code)"""

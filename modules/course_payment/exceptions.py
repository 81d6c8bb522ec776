from trytond.exceptions import UserError


class PaymentError(UserError):
    "A payment action that is not possible (state, amount, method)"


class ProviderError(UserError):
    """The payment provider failed or answered what the module does not
    understand; nothing was changed"""


class PaymentModificationError(UserError):
    "A user's call tried to change what only the payment workflow writes"


class RefundError(UserError):
    "A refund that cannot be made; nothing of it is kept"


class RefundRequestError(UserError):
    "A refund request that cannot be made or decided"

from trytond.exceptions import UserError


class CheckoutError(UserError):
    "A checkout that cannot be done; nothing of it is kept"


class OrderStateError(UserError):
    "An order is not in a state that allows the action"


class OrderModificationError(UserError):
    "A user's call tried to change what only checkout and the workflow do"


class AuditError(UserError):
    "The audit cannot be run by this user"

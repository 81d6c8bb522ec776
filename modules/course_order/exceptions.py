from trytond.exceptions import UserError


class CheckoutError(UserError):
    "A checkout that cannot be done; nothing of it is kept"


class OrderStateError(UserError):
    "An order is not in a state that allows the action"

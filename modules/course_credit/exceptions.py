from trytond.exceptions import UserError
from trytond.model.exceptions import ValidationError


class LedgerError(UserError):
    "A movement that the ledger refuses (balance, change, deletion)"


class BalanceError(LedgerError):
    "A movement would take a balance below zero"


class MovementValidationError(ValidationError):
    "A movement whose values do not fit its kind"

from trytond.exceptions import UserError
from trytond.model.exceptions import AccessError, ValidationError


class LedgerError(UserError):
    "A movement or adjustment that the ledger refuses (origin, change)"


class BalanceError(LedgerError):
    "A movement would take a balance below zero"


class MovementValidationError(ValidationError):
    "A movement or adjustment whose values do not fit its kind"


class AdjustError(UserError):
    "The adjust wizard refuses its input"


class AuditAccessError(AccessError):
    "The caller may not audit the ledgers"

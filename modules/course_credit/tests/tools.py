"Helpers for the tests of course_credit and of modules built on it"
from decimal import Decimal

from trytond.pool import Pool
from trytond.transaction import Transaction


def company_catalog(**company_values):
    """Create a company, make it the context's company and return its
    catalog (see course's create_catalog)"""
    from trytond.modules.company.tests import create_company
    from trytond.modules.course.tests.tools import create_catalog
    company = create_company(**company_values)
    transaction = Transaction()
    transaction.context = dict(transaction.context, company=company.id)
    return create_catalog(company)


def set_config(**values):
    "Write values on the course configuration"
    Configuration = Pool().get('course.configuration')
    config = Configuration(1)
    for name, value in values.items():
        setattr(config, name, value)
    config.save()


def balances(party):
    "Return the credit and wallet balances of party (context company)"
    Party = Pool().get('party.party')
    party = Party(party.id)
    return party.credit_balance, party.wallet_balance


def adjust(party, kind, value, reason="test", company=None):
    """Record an adjustment of party's points (int value) or wallet money
    (any other value) as the adjust wizard does; return its movement"""
    pool = Pool()
    Adjustment = pool.get('course.credit.adjustment')
    ledger = 'credit' if isinstance(value, int) else 'wallet'
    adjustment = Adjustment(
        party=party, ledger=ledger, kind=kind, reason=reason,
        company=company or Transaction().context.get('company'))
    if ledger == 'credit':
        adjustment.points = value
    else:
        adjustment.amount = Decimal(value)
    adjustment.save()
    movement, = Adjustment.create_movements([adjustment])
    return movement


def grant(party, points, **kwargs):
    "Give party points"
    return adjust(party, 'grant', points, **kwargs)


def topup(party, amount, **kwargs):
    "Put amount (str or Decimal) in party's wallet"
    return adjust(party, 'topup', Decimal(amount), **kwargs)

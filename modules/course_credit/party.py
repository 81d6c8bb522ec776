"The student's credit and wallet balances and movements"
from trytond.model import fields
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction


class Party(metaclass=PoolMeta):
    __name__ = 'party.party'
    credit_balance = fields.Function(fields.Integer(
            "Credit Balance",
            help="The sum of the credit movements (in the current company)."),
        'get_ledger_balance')
    wallet_currency = fields.Function(fields.Many2One(
            'currency.currency', "Wallet Currency"), 'get_wallet_currency')
    wallet_balance = fields.Function(fields.Numeric(
            "Wallet Balance", digits='wallet_currency',
            help="The sum of the wallet movements (in the current company)."),
        'get_ledger_balance')
    credit_movements = fields.One2Many(
        'course.credit.movement', 'party', "Credit Movements", readonly=True)
    wallet_movements = fields.One2Many(
        'course.wallet.movement', 'party', "Wallet Movements", readonly=True)

    @classmethod
    def get_ledger_balance(cls, parties, names):
        pool = Pool()
        Credit = pool.get('course.credit.movement')
        Wallet = pool.get('course.wallet.movement')
        company = Transaction().context.get('company')
        result = {}
        if 'credit_balance' in names:
            result['credit_balance'] = Credit.get_balances(parties, company)
        if 'wallet_balance' in names:
            result['wallet_balance'] = Wallet.get_balances(parties, company)
        return result

    @classmethod
    def get_wallet_currency(cls, parties, name):
        Company = Pool().get('company.company')
        company = Transaction().context.get('company')
        currency = Company(company).currency.id if company else None
        return dict.fromkeys([p.id for p in parties], currency)

    @classmethod
    def _student_queries(cls, company):
        "Who has points or money in the wallet ledgers is a student too"
        pool = Pool()
        queries = super()._student_queries(company)
        for name in ['course.credit.movement', 'course.wallet.movement']:
            movement = pool.get(name).__table__()
            where = movement.company == company if company else None
            queries.append(movement.select(movement.party, where=where))
        return queries

    @classmethod
    def copy(cls, parties, default=None):
        default = default.copy() if default is not None else {}
        default.setdefault('credit_movements', None)
        default.setdefault('wallet_movements', None)
        return super().copy(parties, default=default)

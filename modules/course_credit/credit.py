"""Credit points and wallet: two append-only ledgers per student.

Each movement stores the balance of its (party, company) ledger after it.
Movements of a student are created under a lock of the student's party row
(course_order's checkout takes the same lock), so the stored balances form
a chain that the audit can verify and the balance never goes below zero.
"""
import datetime as dt
from collections import defaultdict
from decimal import Decimal

from sql import Null
from sql.aggregate import Sum

from trytond import backend
from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, fields
from trytond.modules.course.course import CompanyMixin
from trytond.modules.course.tools import lock_rows
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Bool, Eval, If
from trytond.rpc import RPC
from trytond.tools import grouped_slice, reduce_ids
from trytond.transaction import Transaction
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .exceptions import BalanceError, LedgerError, MovementValidationError


def in_max():
    "How many ids to put in one query"
    return backend.MAX_QUERY_PARAMS


def now():
    "The current UTC datetime (naive, as Tryton stores datetimes)"
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


_CREATE_ONLY = {'readonly': Eval('id', -1) >= 0}


class LedgerMixin(CompanyMixin):
    """An append-only ledger of signed movements per student.

    Subclasses set `_amount_field` ('points' or 'amount'), `_kind_signs`
    ({kind: '+', '-' or '±'}) and `_order_kinds` (kinds that need an order).
    """
    __slots__ = ()
    _amount_field = None
    _kind_signs = {}
    _order_kinds = set()
    _ledger_message = None

    party = fields.Many2One(
        'party.party', "Student", required=True, ondelete='RESTRICT',
        states=_CREATE_ONLY,
        context={'company': Eval('company', -1)}, depends={'company'})
    order = fields.Many2One(
        'course.order', "Order", ondelete='RESTRICT',
        domain=[If(Bool(Eval('order')),
                [('party', '=', Eval('party', -1)),
                    ('company', '=', Eval('company', -1))],
                [])],
        states=_CREATE_ONLY,
        help="The order that caused the movement.")
    note = fields.Char("Note", states=_CREATE_ONLY)
    date = fields.DateTime("Date", required=True, states=_CREATE_ONLY)
    user = fields.Many2One(
        'res.user', "User", readonly=True, ondelete='RESTRICT',
        help="Who recorded the movement.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('date', 'DESC'), ('id', 'DESC')]
        cls.company.states = _CREATE_ONLY
        t = cls.__table__()
        cls._sql_indexes.update({
                Index(t,
                    (t.party, Index.Equality()),
                    (t.company, Index.Equality())),
                Index(t, (t.order, Index.Equality()), where=t.order != Null),
                })

    @classmethod
    def default_date(cls):
        return now()

    @classmethod
    def default_user(cls):
        return Transaction().user

    @classmethod
    def _zero(cls):
        raise NotImplementedError

    @classmethod
    def _convert(cls, value, company=None):
        "Return a database value (a sum) as a points or money value"
        raise NotImplementedError

    def get_rec_name(self, name):
        return '%s %s %s' % (
            self.party.rec_name, self.kind_string,
            getattr(self, self._amount_field))

    # ---- Balances ---------------------------------------------------------

    @classmethod
    def get_balances(cls, parties, company=None):
        """Return {party id: balance} summed in SQL, one grouped query per
        slice of parties whatever their number; company None sums all
        companies."""
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        amount = getattr(table, cls._amount_field)
        ids = [int(p) for p in parties]
        result = dict.fromkeys(ids, cls._zero())
        for sub_ids in grouped_slice(ids, in_max()):
            where = reduce_ids(table.party, sub_ids)
            if company is not None:
                where &= table.company == int(company)
            cursor.execute(*table.select(
                    table.party, Sum(amount),
                    where=where, group_by=[table.party]))
            for party, total in cursor:
                result[party] = cls._convert(total, company)
        return result

    @classmethod
    def totals_by_order(cls, orders):
        "Return {order id: {kind: sum}} of the orders' movements"
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        amount = getattr(table, cls._amount_field)
        result = {int(o): {} for o in orders}
        companies = {int(o): o.company.id for o in orders}
        for sub_ids in grouped_slice(list(result), in_max()):
            cursor.execute(*table.select(
                    table.order, table.kind, Sum(amount),
                    where=reduce_ids(table.order, sub_ids),
                    group_by=[table.order, table.kind]))
            for order, kind, total in cursor:
                result[order][kind] = cls._convert(total, companies[order])
        return result

    @classmethod
    def create(cls, vlist):
        """Record the movements after the running balance of each ledger.

        The students are locked first (a no-op when the caller, like the
        checkout, holds the lock already): two transactions cannot both read
        the old balance, and a movement that would take a balance below zero
        is refused.
        """
        pool = Pool()
        Party = pool.get('party.party')
        Company = pool.get('company.company')
        vlist = [v.copy() for v in vlist]
        default_company = cls.default_company()
        for values in vlist:
            if values.get('company') is None:
                values['company'] = default_company
        parties = {v['party'] for v in vlist if v.get('party') is not None}
        # Lock first (the call may restart); see lock_rows for the write
        lock_rows(Party, Party.browse(list(parties)))
        by_company = defaultdict(set)
        for values in vlist:
            if values.get('party') is not None and values['company']:
                by_company[values['company']].add(values['party'])
        balances = {}
        for company, company_parties in by_company.items():
            for party, balance in cls.get_balances(
                    company_parties, company).items():
                balances[(party, company)] = balance
        for values in vlist:
            key = (values.get('party'), values['company'])
            if key not in balances:
                continue  # required fields missing: refused by the ORM
            amount = cls._normalize(
                values.get(cls._amount_field) or cls._zero(),
                Company(key[1]))
            if values.get(cls._amount_field) is not None:
                values[cls._amount_field] = amount
            # The kind first: a wrong movement is not a balance problem
            cls._check_sign(values.get('kind'), amount)
            if values.get('kind') in cls._order_kinds and not values.get(
                    'order'):
                cls._raise_order_required(values['kind'])
            balance = balances[key] + amount
            if balance < 0:
                cls._raise_short(
                    Party(key[0]), Company(key[1]), balances[key], -amount)
            values['balance'] = balances[key] = balance
        return super().create(vlist)

    @classmethod
    def _raise_short(cls, party, company, balance, amount):
        raise NotImplementedError

    @classmethod
    def _normalize(cls, amount, company):
        "Return amount as stored in the ledger of company"
        return amount

    @classmethod
    def check_modification(cls, mode, movements, values=None, external=False):
        super().check_modification(
            mode, movements, values=values, external=external)
        if mode in {'write', 'delete'}:
            raise LedgerError(gettext(
                    'course_credit.msg_movement_immutable',
                    movement=movements[0].rec_name if movements else ''))

    @classmethod
    def copy(cls, movements, default=None):
        "A copy is a new movement of now, checked against the balance"
        default = default.copy() if default is not None else {}
        default.setdefault('date', now())
        default.setdefault('user', Transaction().user)
        default.setdefault('balance', None)
        return super().copy(movements, default=default)

    @classmethod
    def validate_fields(cls, movements, field_names):
        super().validate_fields(movements, field_names)
        cls.check_kind(movements)

    @classmethod
    def _check_sign(cls, kind, value):
        sign = cls._kind_signs.get(kind, '±')
        if (not value or (sign == '+' and value < 0)
                or (sign == '-' and value > 0)):
            kinds = dict(cls._fields['kind'].selection)
            raise MovementValidationError(gettext(
                    'course_credit.msg_movement_sign',
                    kind=kinds.get(kind, kind), value=value,
                    sign={'+': gettext('course_credit.msg_positive'),
                        '-': gettext('course_credit.msg_negative'),
                        '±': gettext('course_credit.msg_not_zero'),
                        }[sign]))

    @classmethod
    def _raise_order_required(cls, kind):
        kinds = dict(cls._fields['kind'].selection)
        raise MovementValidationError(gettext(
                'course_credit.msg_movement_order_required',
                kind=kinds.get(kind, kind)))

    @classmethod
    def check_kind(cls, movements):
        "The sign of the amount and the order follow the kind"
        for movement in movements:
            cls._check_sign(
                movement.kind, getattr(movement, cls._amount_field))
            if movement.kind in cls._order_kinds and not movement.order:
                cls._raise_order_required(movement.kind)
            if movement.order and (movement.order.party != movement.party
                    or movement.order.company != movement.company):
                raise MovementValidationError(gettext(
                        'course_credit.msg_movement_order_party',
                        order=movement.order.rec_name,
                        party=movement.party.rec_name))

    # ---- Audit ------------------------------------------------------------

    @classmethod
    def _audit_chain(cls):
        """Return the disagreements of the stored balances with the sum of
        the movements, and balances below zero, one per ledger at most"""
        pool = Pool()
        Party = pool.get('party.party')
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        amount = getattr(table, cls._amount_field)
        cursor.execute(*table.select(
                table.id, table.party, table.company, amount, table.balance,
                order_by=[table.company.asc, table.party.asc, table.id.asc]))
        running, broken, broken_keys = {}, [], set()
        for id_, party, company, value, balance in cursor:
            key = (party, company)
            total = running.get(key, cls._zero()) + cls._convert(value)
            running[key] = total
            if key in broken_keys:
                continue
            stored = cls._convert(balance) if balance is not None else None
            if stored != total or total < 0:
                broken.append((key, id_, stored, total))
                broken_keys.add(key)
        names = {p.id: p.rec_name for p in Party.browse(
                list({party for party, _ in broken_keys}))}
        ledger = gettext(cls._ledger_message)
        return [gettext('course_credit.msg_audit_balance',
                ledger=ledger, party=names[party], movement=id_,
                stored=stored, total=total)
            for (party, _), id_, stored, total in broken]


class CreditMovement(LedgerMixin, ModelSQL, ModelView):
    "Credit Movement"
    __name__ = 'course.credit.movement'
    _amount_field = 'points'
    _kind_signs = {
        'grant': '+', 'earn': '±', 'spend': '-', 'refund': '+',
        'expire': '-', 'adjust': '±',
        }
    _order_kinds = {'spend', 'refund'}
    _ledger_message = 'course_credit.msg_ledger_credit'

    kind = fields.Selection([
            ('grant', "Grant"),
            ('earn', "Earn"),
            ('spend', "Spend"),
            ('refund', "Refund"),
            ('expire', "Expire"),
            ('adjust', "Adjustment"),
            ], "Kind", required=True, states=_CREATE_ONLY, sort=False)
    kind_string = kind.translated('kind')
    points = fields.Integer(
        "Points", required=True, states=_CREATE_ONLY,
        help="Positive when the student gains points, negative when they "
        "are taken.")
    balance = fields.Integer(
        "Balance", readonly=True,
        help="The student's credit balance after this movement.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__rpc__.update({
                'audit': RPC(readonly=True),
                })

    @classmethod
    def _zero(cls):
        return 0

    @classmethod
    def _convert(cls, value, company=None):
        return int(value or 0)

    @classmethod
    def _raise_short(cls, party, company, balance, amount):
        raise BalanceError(gettext(
                'course_credit.msg_credit_balance_short',
                party=party.rec_name, balance=balance, points=amount))

    @classmethod
    def audit(cls):
        """Check both ledgers: every stored balance against the sum of the
        movements (never below zero), and every order's movements against
        its state.  Return the disagreements as a list of texts (empty when
        all agree)."""
        pool = Pool()
        Wallet = pool.get('course.wallet.movement')
        return (cls._audit_chain() + Wallet._audit_chain()
            + cls._audit_orders())

    @classmethod
    def _audit_orders(cls):
        "Return the orders whose credit or wallet movements do not fit"
        pool = Pool()
        Order = pool.get('course.order')
        Discount = pool.get('course.order.discount')
        Wallet = pool.get('course.wallet.movement')
        cursor = Transaction().connection.cursor()
        totals = {}
        for Model in [cls, Wallet]:
            table = Model.__table__()
            amount = getattr(table, Model._amount_field)
            cursor.execute(*table.select(
                    table.order, table.kind, Sum(amount),
                    where=table.order != Null,
                    group_by=[table.order, table.kind]))
            for order, kind, total in cursor:
                totals.setdefault(order, {}).setdefault(Model, {})[kind] = (
                    Model._convert(total))
        discount = Discount.__table__()
        cursor.execute(*discount.select(
                discount.order, Sum(discount.amount),
                where=discount.kind == 'credit',
                group_by=[discount.order]))
        credit_discounts = {o: a for o, a in cursor}
        order = Order.__table__()
        cursor.execute(*order.select(
                order.id, where=order.pay_method == 'wallet'))
        ids = set(totals) | set(credit_discounts) | {i for i, in cursor}
        messages = []
        for sub_ids in grouped_slice(sorted(ids), in_max()):
            cursor.execute(*order.select(
                    order.id, order.number, order.state, order.pay_method,
                    order.payable_amount,
                    where=reduce_ids(order.id, sub_ids)))
            for id_, number, state, method, payable in cursor.fetchall():
                credit = totals.get(id_, {}).get(cls, {})
                wallet = totals.get(id_, {}).get(Wallet, {})
                messages.extend(cls._audit_order(
                        number, state, method, Decimal(str(payable or 0)),
                        credit, wallet, id_ in credit_discounts))
        return messages

    @classmethod
    def _audit_order(
            cls, number, state, method, payable, credit, wallet,
            has_discount):
        "Return the disagreements of one order"
        messages = []

        def report(text, **kwargs):
            messages.append(gettext(
                    'course_credit.msg_audit_order', order=number,
                    state=state, problem=text % kwargs))
        spent = -credit.get('spend', 0)
        refunded = credit.get('refund', 0)
        earned = credit.get('earn', 0)
        if bool(spent) != has_discount:
            report("credit discount %(discount)s, %(spent)s points spent",
                discount='yes' if has_discount else 'none', spent=spent)
        if state in {'cancelled', 'expired', 'refunded'}:
            if refunded != spent:
                report("%(spent)s points spent, %(refunded)s refunded",
                    spent=spent, refunded=refunded)
        elif refunded:
            report("%(refunded)s points refunded", refunded=refunded)
        if earned < 0 or (earned and state in {
                    'unpaid', 'cancelled', 'expired'}):
            report("%(earned)s points earned", earned=earned)
        net = sum(wallet.values(), Decimal(0))
        if method == 'wallet' and state in {'paid', 'refunding'}:
            expected = -payable
        else:
            expected = Decimal(0)
        if net != expected:
            report("wallet movements %(net)s, expected %(expected)s",
                net=net, expected=expected)
        return messages


class WalletMovement(LedgerMixin, ModelSQL, ModelView):
    "Wallet Movement"
    __name__ = 'course.wallet.movement'
    _amount_field = 'amount'
    _kind_signs = {
        'topup': '+', 'pay': '-', 'refund': '+', 'adjust': '±',
        }
    _order_kinds = {'pay', 'refund'}
    _ledger_message = 'course_credit.msg_ledger_wallet'

    kind = fields.Selection([
            ('topup', "Top-up"),
            ('pay', "Payment"),
            ('refund', "Refund"),
            ('adjust', "Adjustment"),
            ], "Kind", required=True, states=_CREATE_ONLY, sort=False)
    kind_string = kind.translated('kind')
    currency = fields.Function(
        fields.Many2One('currency.currency', "Currency"),
        'on_change_with_currency')
    amount = fields.Numeric(
        "Amount", digits='currency', required=True, states=_CREATE_ONLY,
        help="In the company currency; positive when money goes into the "
        "wallet, negative when it is taken.")
    balance = fields.Numeric(
        "Balance", digits='currency', readonly=True,
        help="The student's wallet balance after this movement.")

    @fields.depends('company')
    def on_change_with_currency(self, name=None):
        return self.company.currency if self.company else None

    @classmethod
    def _zero(cls):
        return Decimal(0)

    @classmethod
    def _convert(cls, value, company=None):
        # SQLite sums numerics as floats: back to the currency's digits
        if value is None:
            return Decimal(0)
        if company is not None:
            Company = Pool().get('company.company')
            return Company(int(company)).currency.round(
                Decimal(str(value)))
        if isinstance(value, float):
            return Decimal(str(round(value, 6)))
        return Decimal(value)

    @classmethod
    def _normalize(cls, amount, company):
        # 500 is stored as 500.00; more digits are refused by check_kind
        amount = Decimal(amount)
        rounded = company.currency.round(amount)
        return rounded if rounded == amount else amount

    @classmethod
    def _raise_short(cls, party, company, balance, amount):
        raise BalanceError(gettext(
                'course_credit.msg_wallet_balance_short',
                party=party.rec_name,
                balance=company.currency.round(balance),
                amount=company.currency.round(amount)))

    @classmethod
    def _check_sign(cls, kind, value):
        sign = cls._kind_signs.get(kind, '±')
        if (not value or (sign == '+' and value < 0)
                or (sign == '-' and value > 0)):
            kinds = dict(cls._fields['kind'].selection)
            raise MovementValidationError(gettext(
                    'course_credit.msg_movement_sign',
                    kind=kinds.get(kind, kind), value=value,
                    sign={'+': gettext('course_credit.msg_positive'),
                        '-': gettext('course_credit.msg_negative'),
                        '±': gettext('course_credit.msg_not_zero'),
                        }[sign]))

    @classmethod
    def check_kind(cls, movements):
        super().check_kind(movements)
        for movement in movements:
            if movement.amount != movement.currency.round(movement.amount):
                raise MovementValidationError(gettext(
                        'course_credit.msg_wallet_amount_digits',
                        amount=movement.amount))


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
    def copy(cls, parties, default=None):
        default = default.copy() if default is not None else {}
        default.setdefault('credit_movements', None)
        default.setdefault('wallet_movements', None)
        return super().copy(parties, default=default)


class AdjustStart(ModelView):
    "Adjust Credit or Wallet"
    __name__ = 'course.credit.adjust.start'
    party = fields.Many2One(
        'party.party', "Student", required=True,
        context={'company': Eval('company', -1)}, depends={'company'})
    company = fields.Many2One('company.company', "Company", required=True)
    ledger = fields.Selection([
            ('credit', "Credit Points"),
            ('wallet', "Wallet"),
            ], "Ledger", required=True)
    kind = fields.Selection([
            ('adjust', "Adjustment"),
            ('grant', "Grant"),
            ('expire', "Expire"),
            ('topup', "Top-up"),
            ], "Kind", required=True,
        domain=[If(Eval('ledger') == 'credit',
                ('kind', 'in', ['adjust', 'grant', 'expire']),
                ('kind', 'in', ['adjust', 'topup']))])
    points = fields.Integer(
        "Points",
        states={
            'invisible': Eval('ledger') != 'credit',
            'required': Eval('ledger') == 'credit',
            },
        help="Signed for an adjustment; the number of points granted or "
        "expired otherwise.")
    currency = fields.Many2One('currency.currency', "Currency", readonly=True)
    amount = fields.Numeric(
        "Amount", digits='currency',
        states={
            'invisible': Eval('ledger') != 'wallet',
            'required': Eval('ledger') == 'wallet',
            },
        help="Signed for an adjustment; the amount topped up otherwise.")
    reason = fields.Text("Reason", required=True)
    credit_balance = fields.Integer("Credit Balance", readonly=True)
    wallet_balance = fields.Numeric(
        "Wallet Balance", digits='currency', readonly=True)

    @classmethod
    def default_company(cls):
        return Transaction().context.get('company')

    @classmethod
    def default_ledger(cls):
        return 'credit'

    @classmethod
    def default_kind(cls):
        return 'adjust'

    @fields.depends('company', 'party')
    def on_change_party(self):
        pool = Pool()
        Credit = pool.get('course.credit.movement')
        Wallet = pool.get('course.wallet.movement')
        self.currency = self.company.currency if self.company else None
        if self.party and self.party.id >= 0 and self.company:
            self.credit_balance = Credit.get_balances(
                [self.party], self.company.id)[self.party.id]
            self.wallet_balance = Wallet.get_balances(
                [self.party], self.company.id)[self.party.id]
        else:
            self.credit_balance = self.wallet_balance = None

    @fields.depends(methods=['on_change_party'])
    def on_change_company(self):
        self.on_change_party()

    @fields.depends('ledger', 'kind')
    def on_change_ledger(self):
        if self.kind not in ({'adjust', 'grant', 'expire'}
                if self.ledger == 'credit' else {'adjust', 'topup'}):
            self.kind = 'adjust'


class Adjust(Wizard):
    "Adjust Credit or Wallet"
    __name__ = 'course.credit.adjust'
    start = StateView(
        'course.credit.adjust.start',
        'course_credit.adjust_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Record", 'adjust_', 'tryton-ok', default=True),
            ])
    adjust_ = StateTransition()

    def default_start(self, fields):
        values = {}
        if self.model and self.model.__name__ == 'party.party' and (
                self.record is not None):
            values['party'] = self.record.id
        elif self.model and self.model.__name__ in {
                'course.credit.movement', 'course.wallet.movement'} and (
                self.record is not None):
            values['party'] = self.record.party.id
        company = Transaction().context.get('company')
        if company:
            Company = Pool().get('company.company')
            values['company'] = company
            values['currency'] = Company(company).currency.id
        return values

    def transition_adjust_(self):
        pool = Pool()
        Credit = pool.get('course.credit.movement')
        Wallet = pool.get('course.wallet.movement')
        start = self.start
        if not (start.reason or '').strip():
            raise LedgerError(gettext('course_credit.msg_adjust_reason'))
        if start.ledger == 'credit':
            Model, value, kinds = Credit, start.points, {
                'adjust', 'grant', 'expire'}
        else:
            Model, value, kinds = Wallet, start.amount, {'adjust', 'topup'}
        if start.kind not in kinds:
            raise LedgerError(gettext(
                    'course_credit.msg_adjust_kind', kind=start.kind))
        if start.kind == 'expire' and value and value > 0:
            value = -value
        movement = Model(
            party=start.party, company=start.company, kind=start.kind,
            note=start.reason.strip())
        setattr(movement, Model._amount_field, value)
        movement.save()
        return 'end'

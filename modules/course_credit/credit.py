"""Credit points and wallet: two append-only ledgers per student.

Each movement stores the balance of its (party, company) ledger after it.
Movements of a student are created under a lock of the student's party row
(course_order's checkout takes the same lock), so the stored balances form
a chain that the audit can verify and the balance never goes below zero.

Every movement is explained by what created it: an order (the workflow:
spend, refund, earn, pay) or an adjustment (the adjust wizard: grant,
expire, adjust, top-up).  Nothing else creates, changes or copies them.
"""
from collections import defaultdict
from decimal import Decimal

from sql import Literal, Null
from sql.aggregate import Sum
from sql.conditionals import Case

from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, fields
from trytond.modules.course.course import CompanyMixin
from trytond.modules.course.rpc import RPCInputMixin
from trytond.modules.course.tools import (
    company_language, in_group, in_max, insert_rows, lock_rows, now)
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.rpc import RPC
from trytond.tools import grouped_slice, reduce_ids
from trytond.transaction import Transaction, without_check_access

from .exceptions import (
    AuditAccessError, BalanceError, LedgerError, MovementValidationError)

# The kinds of each ledger that an adjustment (the wizard) records; the
# other kinds come from an order.
ADJUSTMENT_KINDS = {
    'credit': ('grant', 'expire', 'adjust'),
    'wallet': ('topup', 'adjust'),
    }
# The order states in which an order has been paid
PAID_STATES = {'paid', 'refunding', 'refunded'}


class LedgerRecordMixin(CompanyMixin):
    """A record of a student's ledgers (a movement, an adjustment): of a
    student in a company, dated, with who recorded it.

    Only server code creates them (the order workflow, the adjust wizard)
    and nobody writes, deletes or copies them."""
    __slots__ = ()
    party = fields.Many2One(
        'party.party', "Student", required=True, ondelete='RESTRICT',
        readonly=True,
        context={'company': Eval('company', -1)}, depends={'company'})
    date = fields.DateTime("Date", required=True, readonly=True)
    user = fields.Many2One(
        'res.user', "Recorded By", required=True, readonly=True,
        ondelete='RESTRICT', help="Who recorded it.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('date', 'DESC'), ('id', 'DESC')]
        cls.company.readonly = True
        t = cls.__table__()
        cls._sql_indexes.add(
            Index(t,
                (t.party, Index.Equality()),
                (t.company, Index.Equality())))

    @classmethod
    def default_date(cls):
        return now()

    @classmethod
    def default_user(cls):
        return Transaction().user

    @classmethod
    def create(cls, vlist):
        # A user's call through RPC, whatever their groups, is refused
        # before anything else (the ledgers lock the students)
        if Transaction().check_access:
            raise LedgerError(gettext('course_credit.msg_ledger_external'))
        return super().create(cls._prepare_create(vlist))

    @classmethod
    def _prepare_create(cls, vlist):
        "Return the values to insert, refusing those that cannot be"
        return vlist

    @classmethod
    def copy(cls, records, default=None):
        if records:
            raise LedgerError(gettext(
                    'course_credit.msg_ledger_copy',
                    record=records[0].rec_name))
        return []

    @classmethod
    def check_modification(cls, mode, records, values=None, external=False):
        super().check_modification(
            mode, records, values=values, external=external)
        if mode in {'write', 'delete'} and records:
            raise LedgerError(gettext(
                    'course_credit.msg_ledger_immutable',
                    record=records[0].rec_name))


class LedgerMixin(LedgerRecordMixin):
    """An append-only ledger of signed movements per student.

    Subclasses set `_ledger` ('credit' or 'wallet', as the adjustments
    name them), `_amount_field` ('points' or 'amount'), `_kind_signs`
    ({kind: '+', '-' or '±'}) and define `ledger_name()`.
    """
    __slots__ = ()
    _ledger = None
    _amount_field = None
    _kind_signs = {}

    order = fields.Many2One(
        'course.order', "Order", ondelete='RESTRICT', readonly=True,
        help="The order that caused the movement.")
    adjustment = fields.Many2One(
        'course.credit.adjustment', "Adjustment", ondelete='RESTRICT',
        readonly=True,
        help="The staff adjustment that recorded the movement.")
    note = fields.Char("Note", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.update({
                Index(t, (t.order, Index.Equality()), where=t.order != Null),
                Index(t, (t.adjustment, Index.Equality()),
                    where=t.adjustment != Null),
                })

    @classmethod
    def ledger_name(cls):
        "The name of the ledger, as the messages say it"
        raise NotImplementedError

    @classmethod
    def _zero(cls):
        raise NotImplementedError

    @classmethod
    def _convert(cls, value, company=None):
        "Return a database value (a sum) as a points or money value"
        raise NotImplementedError

    @classmethod
    def _adjustment_kinds(cls):
        return ADJUSTMENT_KINDS[cls._ledger]

    @classmethod
    def record_for_orders(cls, entries):
        """Record the movements the order workflow makes, set-based: entries
        are (order, kind, value) or (order, kind, value, note), the note
        being the order's number by default; return the movements in the
        order of entries.

        The student and the company are the order's, so only the kind, the
        value and the balance need checking: the students are locked (a
        no-op when the caller holds them), their balances summed in one
        query per company, the chain continued in memory and the rows
        inserted together.  Nothing is written when one is refused.
        """
        pool = Pool()
        Company = pool.get('company.company')
        Party = pool.get('party.party')
        if not entries:
            return []
        # Read in one query: the records may not have been read yet
        keys = cls._order_keys([order for order, *_ in entries])
        for order, kind, value, *_ in entries:
            if kind in cls._adjustment_kinds():
                raise MovementValidationError(gettext(
                        'course_credit.msg_movement_adjustment_required',
                        kind=cls._kind_name(kind)))
            cls._check_value(kind, value, Company(keys[order.id][1]))
        lock_rows(Party, Party.browse({p for p, _, _ in keys.values()}))
        balances = cls._ledger_balances({k[:2] for k in keys.values()})
        at, user = now(), Transaction().user
        languages = {
            c: company_language(Company(c)) for _, c, _ in keys.values()}
        rows = []
        for order, kind, value, *note in entries:
            party, company, number = keys[order.id]
            balances[(party, company)] += value
            balance = balances[(party, company)]
            if balance < 0:
                cls._raise_short(
                    Party(party), Company(company), balance - value, -value)
            rows.append({
                    'party': party, 'company': company, 'order': order.id,
                    'kind': kind, cls._amount_field: value,
                    'balance': balance,
                    'note': note[0] if note and note[0] else gettext(
                        'course_credit.msg_note_order', languages[company],
                        order=number),
                    'date': at, 'user': user,
                    })
        return cls.browse(insert_rows(cls, rows))

    @classmethod
    def _order_keys(cls, orders):
        "Return {order id: (party id, company id, number)} by one query"
        Order = Pool().get('course.order')
        table = Order.__table__()
        cursor = Transaction().connection.cursor()
        keys = {}
        for sub_ids in grouped_slice({int(o) for o in orders}, in_max()):
            cursor.execute(*table.select(
                    table.id, table.party, table.company, table.number,
                    where=reduce_ids(table.id, sub_ids)))
            keys.update((i, (p, c, n)) for i, p, c, n in cursor)
        return keys

    @classmethod
    def _ledger_balances(cls, keys):
        "Return {(party id, company id): balance} for the keys"
        by_company = defaultdict(set)
        for party, company in keys:
            by_company[company].add(party)
        balances = {}
        for company, parties in by_company.items():
            for party, balance in cls.get_balances(parties, company).items():
                balances[(party, company)] = balance
        return balances

    @property
    def value(self):
        "The signed points or amount of the movement (None when not set)"
        return getattr(self, self._amount_field, None)

    def get_rec_name(self, name):
        return '%s %s %s' % (
            self.party.rec_name, self.kind_string, self.value)

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
        for sub_ids in grouped_slice(list(result), in_max()):
            # A movement's company is its order's
            cursor.execute(*table.select(
                    table.order, table.kind, table.company, Sum(amount),
                    where=reduce_ids(table.order, sub_ids),
                    group_by=[table.order, table.kind, table.company]))
            for order, kind, company, total in cursor:
                result[order][kind] = cls._convert(total, company)
        return result

    @classmethod
    def _prepare_create(cls, vlist):
        """Check the movements, then record each one's running balance.

        Everything is checked before the rows are written, so a refused
        movement never sits in the table, even for a caller that catches
        the error and goes on.  The students are locked first (a no-op when
        the caller, like the checkout, holds the lock already): two
        transactions cannot both read the old balance.
        """
        pool = Pool()
        Party = pool.get('party.party')
        vlist = [v.copy() for v in vlist]
        default_company = cls.default_company()
        for values in vlist:
            if values.get('company') is None:
                values['company'] = default_company
        cls.check_kind(cls._unsaved(vlist))
        keys = {(v.get('party'), v['company']) for v in vlist}
        # Lock first (the call may restart); see lock_rows for the write
        lock_rows(Party, Party.browse(
                list({p for p, _ in keys if p is not None})))
        balances = cls._ledger_balances(
            {(p, c) for p, c in keys if p is not None and c is not None})
        for values in vlist:
            key = (values.get('party'), values['company'])
            if key in balances:  # else required fields missing: refused
                balances[key] += values[cls._amount_field]
                values['balance'] = balances[key]
        cls.check_balance(cls._unsaved(vlist))
        return vlist

    @classmethod
    def _unsaved(cls, vlist):
        "The movements of vlist as records, to check them before writing"
        fields = ['party', 'company', 'kind', cls._amount_field, 'order',
            'adjustment', 'balance']
        return [cls(**{**dict.fromkeys(fields), **v}) for v in vlist]

    @classmethod
    def check_kind(cls, movements):
        "The sign and the origin (order or adjustment) follow the kind"
        for movement in movements:
            cls._check_value(movement.kind, movement.value, movement.company)
            if movement.kind in cls._adjustment_kinds():
                cls._check_adjustment(movement)
            else:
                cls._check_order(movement)

    @classmethod
    def _check_value(cls, kind, value, company):
        "The value of a movement of kind in company's ledger is valid"
        cls._check_sign(kind, value)

    @classmethod
    def _check_sign(cls, kind, value):
        sign = cls._kind_signs.get(kind, '±')
        if (not value or (sign == '+' and value < 0)
                or (sign == '-' and value > 0)):
            raise MovementValidationError(gettext(
                    'course_credit.msg_movement_sign',
                    kind=cls._kind_name(kind), value=value,
                    sign={'+': gettext('course_credit.msg_positive'),
                        '-': gettext('course_credit.msg_negative'),
                        '±': gettext('course_credit.msg_not_zero'),
                        }[sign]))

    @classmethod
    def _kind_name(cls, kind):
        "The kind as the user reads it (translated)"
        selection = cls.fields_get(['kind'])['kind']['selection']
        return dict(selection).get(kind, kind)

    @classmethod
    def _check_order(cls, movement):
        if not movement.order or movement.adjustment:
            raise MovementValidationError(gettext(
                    'course_credit.msg_movement_order_required',
                    kind=cls._kind_name(movement.kind)))
        if (movement.order.party != movement.party
                or movement.order.company != movement.company):
            raise MovementValidationError(gettext(
                    'course_credit.msg_movement_order_party',
                    order=movement.order.rec_name,
                    party=movement.party.rec_name))

    @classmethod
    def _check_adjustment(cls, movement):
        if not movement.adjustment or movement.order:
            raise MovementValidationError(gettext(
                    'course_credit.msg_movement_adjustment_required',
                    kind=cls._kind_name(movement.kind)))
        if not movement.adjustment.explains(movement):
            raise MovementValidationError(gettext(
                    'course_credit.msg_movement_adjustment_mismatch',
                    movement=movement.get_rec_name(None),
                    adjustment=movement.adjustment.rec_name))

    @classmethod
    def check_balance(cls, movements):
        "A movement never takes its ledger below zero"
        for movement in movements:
            if movement.balance is not None and movement.balance < 0:
                cls._raise_short(
                    movement.party, movement.company,
                    movement.balance - movement.value, -movement.value)

    @classmethod
    def _raise_short(cls, party, company, balance, amount):
        raise NotImplementedError

    # ---- Audit ------------------------------------------------------------

    @classmethod
    def _where_companies(cls, table, companies):
        "The SQL condition of the rows of table in companies (None: all)"
        if companies is None:
            return Literal(True)
        return table.company.in_(companies)

    @classmethod
    def _audit_chain(cls, companies):
        """Return the disagreements of the stored balances with the sum of
        the movements, and balances below zero, one per ledger at most"""
        pool = Pool()
        Party = pool.get('party.party')
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        amount = getattr(table, cls._amount_field)
        cursor.execute(*table.select(
                table.id, table.party, table.company, amount, table.balance,
                where=cls._where_companies(table, companies),
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
        ledger = cls.ledger_name()
        return [gettext('course_credit.msg_audit_balance',
                ledger=ledger, party=names[party], movement=id_,
                stored=stored, total=total)
            for (party, _), id_, stored, total in broken]

    @classmethod
    def _audit_origins(cls, companies):
        """Return the movements that no order or adjustment explains: none
        of them, both, a kind that does not come from its origin, an
        adjustment that recorded something else, an order of another
        student or company"""
        pool = Pool()
        Adjustment = pool.get('course.credit.adjustment')
        Order = pool.get('course.order')
        Party = pool.get('party.party')
        movement = cls.__table__()
        adjustment = Adjustment.__table__()
        order = Order.__table__()
        cursor = Transaction().connection.cursor()
        amount = getattr(movement, cls._amount_field)
        adjusted = getattr(adjustment, cls._amount_field)
        by_adjustment = list(cls._adjustment_kinds())
        by_order = [k for k in cls._kind_signs if k not in by_adjustment]
        unexplained = (movement.order == Null) & (movement.adjustment == Null)
        wrong_origin = ~(
            (movement.kind.in_(by_adjustment)
                & (movement.adjustment != Null) & (movement.order == Null))
            | (movement.kind.in_(by_order)
                & (movement.order != Null) & (movement.adjustment == Null)))
        other_adjustment = (adjustment.id != Null) & (
            (adjustment.party != movement.party)
            | (adjustment.company != movement.company)
            | (adjustment.ledger != cls._ledger)
            | (adjustment.kind != movement.kind)
            | (adjusted == Null) | (adjusted != amount))
        other_order = (order.id != Null) & (
            (order.party != movement.party)
            | (order.company != movement.company))
        query = movement.join(adjustment, 'LEFT',
            condition=movement.adjustment == adjustment.id
            ).join(order, 'LEFT',
            condition=movement.order == order.id
            ).select(
                movement.id, movement.party, movement.kind, amount,
                order.number, movement.adjustment,
                Case((unexplained, 1), else_=0),
                Case((wrong_origin, 1), else_=0),
                Case((other_adjustment, 1), else_=0),
                where=cls._where_companies(movement, companies) & (
                    wrong_origin | other_adjustment | other_order),
                order_by=[movement.id.asc])
        cursor.execute(*query)
        rows = cursor.fetchall()
        parties = {p.id: p.rec_name for p in Party.browse(
                list({r[1] for r in rows}))}
        adjustments = {a.id: a.rec_name for a in Adjustment.browse(
                list({r[5] for r in rows if r[5]}))}
        ledger = cls.ledger_name()
        messages = []
        for (id_, party, kind, value, number, adjustment_id, is_unexplained,
                is_wrong_origin, is_other_adjustment) in rows:
            names = {
                'ledger': ledger, 'party': parties[party], 'movement': id_,
                'kind': cls._kind_name(kind), 'amount': cls._convert(value),
                }
            if is_unexplained:
                message = 'course_credit.msg_audit_unexplained'
            elif is_wrong_origin:
                message = 'course_credit.msg_audit_origin'
                names['origin'] = ', '.join(filter(None, [
                            number, adjustments.get(adjustment_id)]))
            elif is_other_adjustment:
                message = 'course_credit.msg_audit_adjustment'
                names['adjustment'] = adjustments[adjustment_id]
            else:
                message = 'course_credit.msg_audit_order_party'
                names['order'] = number
            messages.append(gettext(message, **names))
        return messages

    @classmethod
    def _order_stats(cls, companies):
        """Return {order id: {kind: (gained, taken, gains, takes)}}: the sums
        and the numbers of the positive and the negative movements"""
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        amount = getattr(table, cls._amount_field)
        positive, negative = amount > 0, amount < 0
        cursor.execute(*table.select(
                table.order, table.kind,
                Sum(Case((positive, amount), else_=0)),
                Sum(Case((negative, amount), else_=0)),
                Sum(Case((positive, 1), else_=0)),
                Sum(Case((negative, 1), else_=0)),
                where=(table.order != Null)
                & cls._where_companies(table, companies),
                group_by=[table.order, table.kind]))
        result = {}
        for order, kind, gained, taken, gains, takes in cursor:
            result.setdefault(order, {})[kind] = (
                cls._convert(gained), -cls._convert(taken),
                int(gains), int(takes))
        return result


class CreditMovement(
        RPCInputMixin, LedgerMixin, ModelSQL, ModelView):
    "Credit Movement"
    __name__ = 'course.credit.movement'
    _ledger = 'credit'
    _amount_field = 'points'
    _kind_signs = {
        'grant': '+', 'earn': '±', 'spend': '-', 'refund': '+',
        'expire': '-', 'adjust': '±',
        }

    kind = fields.Selection([
            ('grant', "Grant"),
            ('earn', "Earn"),
            ('spend', "Spend"),
            ('refund', "Refund"),
            ('expire', "Expire"),
            ('adjust', "Adjustment"),
            ], "Kind", required=True, readonly=True, sort=False)
    kind_string = kind.translated('kind')
    points = fields.Integer(
        "Points", required=True, readonly=True,
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
    def ledger_name(cls):
        return gettext('course_credit.msg_ledger_credit')

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
        """Check both ledgers and return the disagreements as a list of
        texts (empty when all agree): every stored balance against the sum
        of the movements (never below zero), every movement against the
        order or adjustment that explains it, every adjustment against its
        movement and every order's movements against its state and amounts.

        Over RPC: for Course Administration only, on the caller's
        companies."""
        pool = Pool()
        Wallet = pool.get('course.wallet.movement')
        Adjustment = pool.get('course.credit.adjustment')
        companies = cls._audit_companies()
        if companies == []:
            return []
        with without_check_access():
            return (cls._audit_chain(companies)
                + Wallet._audit_chain(companies)
                + cls._audit_origins(companies)
                + Wallet._audit_origins(companies)
                + Adjustment.audit_movements(companies)
                + cls._audit_orders(companies))

    @classmethod
    def _audit_companies(cls):
        """Return the companies a user's call may audit, refusing those not
        in Course Administration; None (all) for server code"""
        User = Pool().get('res.user')
        if not Transaction().check_access:
            return None
        if not in_group('course.group_course_admin'):
            raise AuditAccessError(gettext('course_credit.msg_audit_access'))
        return list(User.get_companies())

    @classmethod
    def _audit_orders(cls, companies):
        "Return the orders whose credit or wallet movements do not fit"
        pool = Pool()
        Order = pool.get('course.order')
        Discount = pool.get('course.order.discount')
        Wallet = pool.get('course.wallet.movement')
        cursor = Transaction().connection.cursor()
        credit_stats = cls._order_stats(companies)
        wallet_stats = Wallet._order_stats(companies)
        discount = Discount.__table__()
        cursor.execute(*discount.select(
                discount.order, Sum(discount.amount),
                where=discount.kind == 'credit',
                group_by=[discount.order]))
        discounts = dict(cursor)
        order = Order.__table__()
        where = cls._where_companies(order, companies)
        # The orders without movements that should have some
        cursor.execute(*order.select(order.id, where=where & (
                    (order.pay_method == 'wallet')
                    | (order.state.in_(list(PAID_STATES))
                        & (order.credit_earn_rate > 0)))))
        ids = (set(credit_stats) | set(wallet_stats) | set(discounts)
            | {i for i, in cursor})
        states = dict(Order.fields_get(['state'])['state']['selection'])
        messages = []
        for sub_ids in grouped_slice(sorted(ids), in_max()):
            for record in Order.browse(sub_ids):
                if companies is not None and (
                        record.company.id not in companies):
                    continue
                problems = cls._audit_order(
                    record, credit_stats.get(record.id, {}),
                    wallet_stats.get(record.id, {}),
                    discounts.get(record.id))
                messages.extend(gettext(
                        'course_credit.msg_audit_order',
                        order=record.number,
                        state=states.get(record.state, record.state),
                        problem=p) for p in problems)
        return messages

    @classmethod
    def _audit_order(cls, order, credit, wallet, discount):
        """Return the problems of one order with its movements: credit and
        wallet are {kind: (gained, taken, gains, takes)}, discount the sum
        of its credit discounts (None without)"""
        pool = Pool()
        Order = pool.get('course.order')
        Wallet = pool.get('course.wallet.movement')
        empty = (0, 0, 0, 0)
        problems = []
        for Model, stats in [(cls, credit), (Wallet, wallet)]:
            for kind, (_, _, gains, takes) in stats.items():
                # one movement of each kind; an earn may be taken back
                if gains > 1 or takes > 1 or (
                        kind != 'earn' and gains + takes > 1):
                    problems.append(gettext(
                            'course_credit.msg_audit_repeated',
                            ledger=Model.ledger_name(),
                            count=gains + takes,
                            kind=Model._kind_name(kind)))
        spent = credit.get('spend', empty)[1]
        ratio = order.credit_ratio
        expected = int(Decimal(str(discount or 0)) * ratio)
        if spent != expected:
            problems.append(gettext(
                    'course_credit.msg_audit_credit_discount',
                    points=spent, discount=discount or 0,
                    expected=expected, ratio=ratio))
        refunded = credit.get('refund', empty)[0]
        if order.state in {'cancelled', 'expired', 'refunded'}:
            given_back = spent
        else:
            given_back = 0
        if refunded != given_back:
            problems.append(gettext(
                    'course_credit.msg_audit_credit_refund',
                    spent=spent, refunded=refunded, expected=given_back))
        earned, taken = credit.get('earn', empty)[:2]
        expected = (Order.credit_to_earn(order)
            if order.state in PAID_STATES else 0)
        if earned != expected:
            problems.append(gettext(
                    'course_credit.msg_audit_credit_earn',
                    earned=earned, expected=expected,
                    amount=order.payable_amount,
                    rate=order.credit_earn_rate.normalize(), ratio=ratio))
        if taken > (earned if order.state == 'refunded' else 0):
            problems.append(gettext(
                    'course_credit.msg_audit_credit_taken_back',
                    taken=taken, earned=earned))
        net = sum((g - t for g, t, _, _ in wallet.values()), Decimal(0))
        if order.pay_method == 'wallet' and order.state in {
                'paid', 'refunding'}:
            expected = -order.payable_amount
        else:
            expected = Decimal(0)
        if net != expected:
            problems.append(gettext(
                    'course_credit.msg_audit_wallet',
                    net=net, expected=expected))
        return problems


class WalletMovement(
        RPCInputMixin, LedgerMixin, ModelSQL, ModelView):
    "Wallet Movement"
    __name__ = 'course.wallet.movement'
    _ledger = 'wallet'
    _amount_field = 'amount'
    _kind_signs = {
        'topup': '+', 'pay': '-', 'refund': '+', 'adjust': '±',
        }

    kind = fields.Selection([
            ('topup', "Top-up"),
            ('pay', "Payment"),
            ('refund', "Refund"),
            ('adjust', "Adjustment"),
            ], "Kind", required=True, readonly=True, sort=False)
    kind_string = kind.translated('kind')
    amount = fields.Numeric(
        "Amount", digits='currency', required=True, readonly=True,
        help="In the company currency; positive when money goes into the "
        "wallet, negative when it is taken.")
    balance = fields.Numeric(
        "Balance", digits='currency', readonly=True,
        help="The student's wallet balance after this movement.")

    @classmethod
    def ledger_name(cls):
        return gettext('course_credit.msg_ledger_wallet')

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
    def _check_value(cls, kind, value, company):
        super()._check_value(kind, value, company)
        currency = company.currency
        if value != currency.round(value):
            raise MovementValidationError(gettext(
                    'course_credit.msg_wallet_amount_digits',
                    amount=value, currency=currency.rec_name))

    @classmethod
    def _raise_short(cls, party, company, balance, amount):
        raise BalanceError(gettext(
                'course_credit.msg_wallet_balance_short',
                party=party.rec_name,
                balance=company.currency.round(balance),
                amount=company.currency.round(amount)))

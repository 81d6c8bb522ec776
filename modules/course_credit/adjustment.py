"""Staff adjustments of the ledgers: who changed a student's points or
wallet money outside an order, when and why.

The adjust wizard (Course Administration only) records an adjustment and
the one movement it explains.
"""
from sql.aggregate import Count

from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, fields
from trytond.modules.course.course import CompanyMixin
from trytond.modules.course.rpc import RPCInputMixin
from trytond.modules.course.tools import (
    check_amount, check_dict, check_int, check_record, check_text)
from trytond.pool import Pool
from trytond.pyson import Eval, If
from trytond.transaction import Transaction
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .credit import ADJUSTMENT_KINDS, LedgerRecordMixin
from .exceptions import AdjustError, MovementValidationError
from .tools import MAX_POINTS

LEDGERS = [
    ('credit', "Credit Points"),
    ('wallet', "Wallet"),
    ]
KINDS = [
    ('grant', "Grant"),
    ('expire', "Expire"),
    ('adjust', "Adjustment"),
    ('topup', "Top-up"),
    ]
REASON_SIZE = 1000


def _ledger_kinds_domain():
    "The kinds allowed by the ledger, as a domain on kind"
    return [If(Eval('ledger') == 'credit',
            ('kind', 'in', list(ADJUSTMENT_KINDS['credit'])),
            ('kind', 'in', list(ADJUSTMENT_KINDS['wallet'])))]


class Adjustment(
        RPCInputMixin, LedgerRecordMixin, ModelSQL, ModelView):
    "Credit and Wallet Adjustment"
    __name__ = 'course.credit.adjustment'
    ledger = fields.Selection(LEDGERS, "Ledger", required=True, readonly=True)
    ledger_string = ledger.translated('ledger')
    kind = fields.Selection(
        KINDS, "Kind", required=True, readonly=True, sort=False,
        domain=_ledger_kinds_domain())
    kind_string = kind.translated('kind')
    points = fields.Integer(
        "Points", readonly=True,
        states={'invisible': Eval('ledger') != 'credit'})
    amount = fields.Numeric(
        "Amount", digits='currency', readonly=True,
        states={'invisible': Eval('ledger') != 'wallet'})
    reason = fields.Text("Reason", required=True, readonly=True)

    @property
    def value(self):
        "The signed points or amount the adjustment records"
        return self.points if self.ledger == 'credit' else self.amount

    def get_rec_name(self, name):
        return '%s: %s %s' % (
            self.party.rec_name, self.kind_string, self.value)

    def explains(self, movement):
        "Whether movement is the one this adjustment records"
        return (movement._ledger == self.ledger
            and movement.party == self.party
            and movement.company == self.company
            and movement.kind == self.kind
            and movement.value == self.value)

    @classmethod
    def validate_fields(cls, adjustments, field_names):
        super().validate_fields(adjustments, field_names)
        if field_names is None or field_names & {
                'ledger', 'kind', 'points', 'amount', 'reason'}:
            cls.check_values(adjustments)

    @classmethod
    def check_values(cls, adjustments):
        "A reason, and points or an amount as the ledger counts"
        for adjustment in adjustments:
            if not adjustment.reason.strip():
                raise MovementValidationError(
                    gettext('course_credit.msg_adjust_reason'))
            other = 'amount' if adjustment.ledger == 'credit' else 'points'
            if adjustment.value is None or getattr(adjustment, other):
                raise MovementValidationError(gettext(
                        'course_credit.msg_adjustment_value',
                        adjustment=adjustment.rec_name,
                        ledger=adjustment.ledger_string))

    @classmethod
    def _ledger_models(cls):
        pool = Pool()
        return {
            'credit': pool.get('course.credit.movement'),
            'wallet': pool.get('course.wallet.movement'),
            }

    @classmethod
    def create_movements(cls, adjustments):
        "Record the movement of each adjustment in its ledger"
        by_model = {}
        for ledger, Model in cls._ledger_models().items():
            by_model[Model] = [
                Model(party=a.party, company=a.company, kind=a.kind,
                    adjustment=a, note=a.reason, user=a.user, date=a.date,
                    **{Model._amount_field: a.value})
                for a in adjustments if a.ledger == ledger]
        for Model, movements in by_model.items():
            Model.save(movements)
        return [m for ms in by_model.values() for m in ms]

    @classmethod
    def audit_movements(cls, companies):
        """Return the adjustments that do not explain exactly one movement
        of their ledger (in companies, None: all)"""
        adjustment = cls.__table__()
        cursor = Transaction().connection.cursor()
        found = {}
        for ledger, Model in cls._ledger_models().items():
            movement = Model.__table__()
            where = adjustment.ledger == ledger
            if companies is not None:
                where &= adjustment.company.in_(companies)
            cursor.execute(*adjustment.join(movement, 'LEFT',
                    condition=movement.adjustment == adjustment.id
                    ).select(adjustment.id, Count(movement.id),
                    where=where, group_by=[adjustment.id],
                    having=Count(movement.id) != 1))
            found.update(cursor)
        return [gettext('course_credit.msg_audit_adjustment_count',
                adjustment=a.rec_name, count=found[a.id])
            for a in cls.browse(sorted(found))]


class AdjustStart(RPCInputMixin, CompanyMixin, ModelView):
    "Adjust Credit or Wallet"
    __name__ = 'course.credit.adjust.start'
    party = fields.Many2One(
        'party.party', "Student", required=True,
        context={'company': Eval('company', -1)}, depends={'company'})
    ledger = fields.Selection(LEDGERS, "Ledger", required=True)
    kind = fields.Selection(
        KINDS, "Kind", required=True, domain=_ledger_kinds_domain())
    points = fields.Integer(
        "Points",
        states={
            'invisible': Eval('ledger') != 'credit',
            'required': Eval('ledger') == 'credit',
            },
        help="Signed for an adjustment; the number of points granted or "
        "expired otherwise.")
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
        if self.kind not in ADJUSTMENT_KINDS.get(self.ledger, ()):
            self.kind = 'adjust'


class Adjust(RPCInputMixin, Wizard):
    """Adjust Credit or Wallet

    Course Administration only (the action's group); the input is checked
    before it reaches the form (see check_start)."""
    __name__ = 'course.credit.adjust'
    start = StateView(
        'course.credit.adjust.start',
        'course_credit.adjust_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Record", 'adjust_', 'tryton-ok', default=True),
            ])
    adjust_ = StateTransition()

    @classmethod
    def execute(cls, session_id, data, state_name):
        if state_name == 'adjust_':
            cls.check_access()
            data = dict(check_dict(data, 'data'))
            data['start'] = cls.check_start(data.get('start'))
        return super().execute(session_id, data, state_name)

    @classmethod
    def check_start(cls, values):
        """Return the input of the start form as the transition needs it
        (the display fields dropped), refusing a value it cannot take"""
        pool = Pool()
        Company = pool.get('company.company')
        Party = pool.get('party.party')
        User = pool.get('res.user')
        values = check_dict(values, 'start')
        party = check_record(Party, values.get('party'), 'party')
        company = check_record(Company, values.get('company'), 'company')
        if Transaction().user and company.id not in User.get_companies():
            raise AdjustError(gettext(
                    'course_credit.msg_adjust_company',
                    company=company.rec_name))
        ledger = values.get('ledger')
        if not isinstance(ledger, str) or ledger not in ADJUSTMENT_KINDS:
            raise AdjustError(gettext(
                    'course_credit.msg_adjust_ledger', ledger=ledger))
        kind = values.get('kind')
        if not isinstance(kind, str) or kind not in ADJUSTMENT_KINDS[ledger]:
            raise AdjustError(gettext(
                    'course_credit.msg_adjust_kind', kind=kind))
        points = amount = None
        if ledger == 'credit':
            points = check_int(
                values.get('points'), 'points', -MAX_POINTS, MAX_POINTS)
        else:
            amount = check_amount(
                values.get('amount'), 'amount', company.currency,
                minimum=None)
        reason = check_text(
            values.get('reason'), 'reason', max_length=REASON_SIZE).strip()
        if not reason:
            raise AdjustError(gettext('course_credit.msg_adjust_reason'))
        return {
            'party': party.id, 'company': company.id, 'ledger': ledger,
            'kind': kind, 'points': points, 'amount': amount,
            'reason': reason,
            }

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
        Adjustment = Pool().get('course.credit.adjustment')
        start = self.start
        value = start.points if start.ledger == 'credit' else start.amount
        if start.kind == 'expire' and value:
            value = -abs(value)  # the points to expire, taken
        adjustment = Adjustment(
            party=start.party, company=start.company, ledger=start.ledger,
            kind=start.kind, reason=start.reason.strip())
        setattr(adjustment, 'points' if start.ledger == 'credit'
            else 'amount', value)
        adjustment.save()
        Adjustment.create_movements([adjustment])
        return 'end'

"""The mentors' side of degree programs: the mentor-fee ledger, the mentor
assignment, complaints, withdrawals and the daily job of the score rules.

The ledger (course.mentor.movement) is append-only: only the wizards and
the daily job add movements, nobody writes or deletes them.  The balance
of a student's mentor fee is kept on the enrollment (mentor_fee_balance)
and changed with its movements under a lock of the enrollment row; a
mentor's balance and matured amount are sums of the movements in SQL.
"""
import datetime as dt
import logging
from collections import defaultdict
from decimal import Decimal

from sql import Literal, Null
from sql.aggregate import Max, Min, Sum
from sql.conditionals import Case

from trytond import backend
from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, fields
from trytond.modules.course.course import CompanyMixin
from trytond.modules.course.exceptions import InputError
from trytond.modules.course.rpc import RPCInputMixin
from trytond.modules.course.tools import (
    check_amount, check_caller, check_id, company_language, in_group, in_max,
    in_new_transaction, insert_rows, lock_rows, log_transitions, move_state,
    now, round_amount)
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Bool, Eval, Id
from trytond.rpc import RPC
from trytond.tools import grouped_slice, reduce_ids
from trytond.transaction import Transaction, without_check_access
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .enrollment import ADMIN, local_date
from .exceptions import LedgerError, MentorError

logger = logging.getLogger(__name__)

MENTOR = 'course_degree.group_mentor'
KINDS = [
    ('income', "Income"),
    ('penalty', "Penalty"),
    ('withdrawal', "Withdrawal"),
    ('adjust', "Adjustment"),
    ]
# The sign of each kind's amount; an adjustment moves a balance from one
# mentor to another (reassignment): either sign
KIND_SIGNS = {'income': '+', 'penalty': '-', 'withdrawal': '-', 'adjust': '±'}
# The enrollment states in which a mentor may be assigned or a complaint
# recorded: the fee of a graduated or timed-out student is settled
OPEN_STATES = {'not_started', 'studying', 'suspended'}
MAX_REASON = 255  # the description of the movement that keeps it
# How often a batch of the daily job is retried on a lock held or a
# serialization failure before it is left for the next run
BATCH_RETRIES = 5


class MentorMovement(RPCInputMixin, CompanyMixin, ModelSQL, ModelView):
    "Mentor Fee Movement"
    __name__ = 'course.mentor.movement'
    mentor = fields.Many2One(
        'res.user', "Mentor", required=True, readonly=True,
        ondelete='RESTRICT')
    enrollment = fields.Many2One(
        'course.degree.enrollment', "Enrollment", readonly=True,
        ondelete='RESTRICT',
        states={'invisible': ~Eval('enrollment')},
        help="The student whose mentor fee moved (none for a withdrawal).")
    kind = fields.Selection(
        KINDS, "Kind", required=True, readonly=True, sort=False)
    kind_string = kind.translated('kind')
    amount = fields.Numeric(
        "Amount", digits='currency', required=True, readonly=True,
        help="Positive when the mentor gains, negative when it is taken.")
    date = fields.DateTime("Date", required=True, readonly=True)
    description = fields.Char("Description", readonly=True)
    origin = fields.Reference(
        "Origin", selection='get_origins', readonly=True,
        help="What caused the movement.")
    matured = fields.Boolean(
        "Matured", readonly=True,
        help="The mentor may withdraw it: the student graduated (a "
        "withdrawal is matured when made).")
    created_by = fields.Many2One(
        'res.user', "Created by", readonly=True, ondelete='RESTRICT')
    ledger = fields.Function(fields.Many2One(
            'course.mentor.ledger', "Ledger"), 'get_ledger',
        searcher='search_ledger')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.company.readonly = True
        cls._order = [('date', 'DESC'), ('id', 'DESC')]
        cls.__rpc__.update({
                'audit': RPC(readonly=True),
                })
        t = cls.__table__()
        cls._sql_indexes.update({
                Index(t, (t.mentor, Index.Equality()),
                    (t.company, Index.Equality())),
                Index(t, (t.enrollment, Index.Equality()),
                    where=t.enrollment != Null),
                })

    @classmethod
    def default_matured(cls):
        return False

    @classmethod
    def get_origins(cls):
        Model = Pool().get('ir.model')
        models = ['course.degree.submission', 'course.degree.enrollment']
        return [(None, '')] + [
            (m, Model.get_name(m)) for m in models]

    def get_rec_name(self, name):
        return f'{self.mentor.rec_name} {self.kind_string} {self.amount}'

    def get_ledger(self, name):
        Ledger = Pool().get('course.mentor.ledger')
        ledgers = Ledger.search([
                ('mentor', '=', self.mentor.id),
                ('company', '=', self.company.id),
                ], limit=1)
        return ledgers[0].id if ledgers else None

    @classmethod
    def search_ledger(cls, name, clause):
        "The movements of the mentors and companies of the ledgers"
        Ledger = Pool().get('course.mentor.ledger')
        _, operator, value = clause[:3]
        ledgers = Ledger.search([('id', operator, value)])
        return ['OR'] + [[
                ('mentor', '=', l.mentor.id), ('company', '=', l.company.id)]
            for l in ledgers] if ledgers else [('id', '=', -1)]

    # ---- Append-only ----------------------------------------------------

    @classmethod
    def create(cls, vlist):
        # A user's call is refused for every group: the wizards and the
        # daily job record movements (record)
        if Transaction().check_access:
            raise LedgerError(gettext('course_degree.msg_ledger_external'))
        cls._check_rows(vlist)
        return super().create(vlist)

    @classmethod
    def copy(cls, movements, default=None):
        if movements:
            raise LedgerError(gettext('course_degree.msg_ledger_external'))
        return []

    @classmethod
    def check_modification(
            cls, mode, movements, values=None, external=False):
        super().check_modification(
            mode, movements, values=values, external=external)
        if mode in {'write', 'delete'} and movements:
            raise LedgerError(gettext(
                    'course_degree.msg_ledger_immutable',
                    movement=movements[0].rec_name))

    @classmethod
    def _check_rows(cls, rows):
        "The sign follows the kind; only a withdrawal has no enrollment"
        for row in rows:
            kind, amount = row.get('kind'), row.get('amount')
            sign = KIND_SIGNS.get(kind)
            if (sign is None or not amount
                    or (sign == '+' and amount < 0)
                    or (sign == '-' and amount > 0)
                    or (kind != 'withdrawal') != bool(row.get('enrollment'))):
                raise LedgerError(gettext(
                        'course_degree.msg_ledger_invalid',
                        kind=kind, amount=amount))

    @classmethod
    def record(cls, rows):
        """Insert the movements of rows (dicts of mentor, company,
        enrollment, kind, amount, description, origin, matured), dated
        now, created by the transaction's user, after checking them all;
        return the movements.  The callers hold the locks that keep the
        balances they computed true."""
        if not rows:
            return []
        cls._check_rows(rows)
        at, user = now(), Transaction().user
        columns = ['mentor', 'company', 'enrollment', 'kind', 'amount',
            'description', 'origin', 'matured']
        return cls.browse(insert_rows(cls, [
                    dict({c: row.get(c) for c in columns},
                        matured=bool(row.get('matured')),
                        date=at, created_by=user)
                    for row in rows]))

    # ---- Balances ---------------------------------------------------------

    @classmethod
    def mentor_amounts(cls, mentors, company):
        """Return {mentor id: (balance, matured)} of the mentors in
        company, summed by one grouped query per slice of mentors"""
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        currency = company.currency
        ids = [int(m) for m in mentors]
        zero = round_amount(currency, 0)
        result = {i: (zero, zero) for i in ids}
        matured = Case(
            (table.matured == Literal(True), table.amount), else_=0)
        for sub_ids in grouped_slice(ids, in_max()):
            cursor.execute(*table.select(
                    table.mentor, Sum(table.amount), Sum(matured),
                    where=reduce_ids(table.mentor, sub_ids)
                    & (table.company == company.id),
                    group_by=[table.mentor]))
            for mentor, balance, ripe in cursor:
                result[mentor] = (
                    round_amount(currency, Decimal(str(balance or 0))),
                    round_amount(currency, Decimal(str(ripe or 0))))
        return result

    # ---- Withdrawal -------------------------------------------------------

    @classmethod
    def withdraw(cls, amount):
        """The user of the transaction, a mentor, withdraws amount (a
        Decimal of the currency of the context's company, > 0) of their
        matured income; return the movement.  The mentor's user row is
        locked: two withdrawals at once are made one after the other and
        the second sees what the first took."""
        pool = Pool()
        Company = pool.get('company.company')
        User = pool.get('res.user')
        user = Transaction().user
        if not user or not in_group(MENTOR):
            raise MentorError(gettext('course_degree.msg_withdraw_not_mentor'))
        company_id = Transaction().context.get('company')
        if not company_id or company_id not in User.get_companies():
            raise MentorError(gettext('course_degree.msg_withdraw_company'))
        company = Company(company_id)
        amount = cls._check_withdrawal(amount, company.currency)
        with without_check_access():
            lock_rows(User, [User(user)])
            _, matured = cls.mentor_amounts([user], company)[user]
            if amount > matured:
                raise MentorError(gettext(
                        'course_degree.msg_withdraw_too_much',
                        amount=amount, matured=matured))
            movement, = cls.record([{
                        'mentor': user, 'company': company.id,
                        'kind': 'withdrawal', 'amount': -amount,
                        'matured': True,
                        'description': gettext(
                            'course_degree.msg_withdraw_description',
                            company_language(company)),
                        }])
        return movement

    @classmethod
    def _check_withdrawal(cls, amount, currency):
        "amount as a Decimal of currency above zero, or MentorError"
        if isinstance(amount, float):
            # The clients send a Decimal; a float has lost the cents
            raise MentorError(gettext(
                    'course_degree.msg_withdraw_amount_invalid'))
        try:
            amount = check_amount(amount, 'amount', currency, minimum=None)
        except InputError:
            raise MentorError(gettext(
                    'course_degree.msg_withdraw_amount_invalid'))
        if amount <= 0:
            raise MentorError(gettext(
                    'course_degree.msg_withdraw_amount_positive'))
        return amount

    # ---- Audit ------------------------------------------------------------

    @classmethod
    def audit(cls):
        """Return the disagreements of the ledger as texts (empty when
        all agree): an enrollment whose balance is not the sum of its
        current mentor's movements, a former mentor left with a balance,
        a mentor whose matured amount is below zero.

        Over RPC: for the degree and the course administration (the
        audit script, scripts/audit_credit.py, runs it)."""
        check_caller('course.mentor.movement.audit',
            ADMIN + ('course.group_course_admin',))
        pool = Pool()
        Enrollment = pool.get('course.degree.enrollment')
        User = pool.get('res.user')
        movement = cls.__table__()
        enrollment = Enrollment.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*enrollment.join(movement, 'LEFT',
                condition=movement.enrollment == enrollment.id
                ).select(
                enrollment.id, enrollment.mentor,
                enrollment.mentor_fee_balance, movement.mentor,
                Sum(movement.amount),
                group_by=[enrollment.id, enrollment.mentor,
                    enrollment.mentor_fee_balance, movement.mentor],
                order_by=[enrollment.id.asc]))
        messages = []
        for id_, mentor, balance, moved_by, total in cursor.fetchall():
            total = Decimal(str(total or 0))
            balance = Decimal(str(balance or 0))
            if moved_by is None and not balance:
                continue
            expected = balance if moved_by == mentor else Decimal(0)
            if total != expected:
                messages.append(gettext(
                        'course_degree.msg_audit_enrollment',
                        enrollment=Enrollment(id_).rec_name,
                        mentor=User(moved_by).rec_name if moved_by else '',
                        total=total, expected=expected))
        matured = Case(
            (movement.matured == Literal(True), movement.amount), else_=0)
        cursor.execute(*movement.select(
                movement.mentor, Sum(matured),
                group_by=[movement.mentor, movement.company]))
        for mentor, ripe in cursor.fetchall():
            if Decimal(str(ripe or 0)) < 0:
                messages.append(gettext(
                        'course_degree.msg_audit_matured',
                        mentor=User(mentor).rec_name, matured=ripe))
        return messages


class MentorLedger(RPCInputMixin, ModelSQL, ModelView):
    "Mentor Ledger"
    __name__ = 'course.mentor.ledger'
    mentor = fields.Many2One('res.user', "Mentor", readonly=True)
    company = fields.Many2One('company.company', "Company", readonly=True)
    currency = fields.Function(
        fields.Many2One('currency.currency', "Currency"), 'get_currency')
    balance = fields.Function(fields.Numeric(
            "Balance", digits='currency',
            help="All the mentor fee movements of the mentor."),
        'get_amounts')
    matured = fields.Function(fields.Numeric(
            "Matured", digits='currency',
            help="What the mentor may withdraw: the fees of graduated "
            "students less the withdrawals."),
        'get_amounts')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('mentor', 'ASC'), ('id', 'ASC')]

    @classmethod
    def table_query(cls):
        "One row per mentor and company with movements"
        Movement = Pool().get('course.mentor.movement')
        m = Movement.__table__()
        # The first movement's id: stable, the ledger is append-only
        return m.select(
            Min(m.id).as_('id'), m.mentor, m.company,
            Max(m.create_uid).as_('create_uid'),
            Max(m.create_date).as_('create_date'),
            Max(m.write_uid).as_('write_uid'),
            Max(m.write_date).as_('write_date'),
            group_by=[m.mentor, m.company])

    def get_currency(self, name):
        return self.company.currency.id

    @classmethod
    def get_amounts(cls, ledgers, names):
        Movement = Pool().get('course.mentor.movement')
        result = {n: {} for n in names}
        by_company = defaultdict(list)
        for ledger in ledgers:
            by_company[ledger.company].append(ledger)
        for company, rows in by_company.items():
            amounts = Movement.mentor_amounts(
                [r.mentor.id for r in rows], company)
            for ledger in rows:
                balance, matured = amounts[ledger.mentor.id]
                if 'balance' in result:
                    result['balance'][ledger.id] = balance
                if 'matured' in result:
                    result['matured'][ledger.id] = matured
        return result


class Enrollment(metaclass=PoolMeta):
    __name__ = 'course.degree.enrollment'
    movements = fields.One2Many(
        'course.mentor.movement', 'enrollment', "Mentor Fee Movements",
        readonly=True)
    my_student = fields.Function(
        fields.Boolean("My Student"), 'get_my_student',
        searcher='search_my_student')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._buttons.update({
                'assign_mentor_wizard': {
                    'invisible': ~Eval('state').in_(list(OPEN_STATES))
                    | Eval('refunded', False),
                    'icon': 'tryton-launch',
                    'depends': ['state', 'refunded'],
                    },
                'complaint_wizard': {
                    'invisible': ~Eval('state').in_(list(OPEN_STATES))
                    | ~Bool(Eval('mentor')),
                    'icon': 'tryton-warning',
                    'depends': ['state', 'mentor'],
                    },
                })

    def get_my_student(self, name):
        return bool(self.mentor and self.mentor.id == Transaction().user)

    @classmethod
    def search_my_student(cls, name, clause):
        _, operator, value = clause
        mine = (operator == '=') == bool(value)
        user = Transaction().user
        return [('mentor', '=' if mine else '!=', user)]

    @classmethod
    @ModelView.button_action('course_degree.wizard_assign_mentor')
    def assign_mentor_wizard(cls, enrollments):
        pass

    @classmethod
    @ModelView.button_action('course_degree.wizard_complaint')
    def complaint_wizard(cls, enrollments):
        pass

    # ---- Refunds ----------------------------------------------------------

    @classmethod
    def end_refunded(cls, enrollments):
        """A refund also takes back the mentor fee not earned yet: the
        balance left goes back from the mentor (an adjustment) and the
        enrollment's balance is 0.00.  A graduate's fee is earned: it
        stays (and matures)."""
        ending = [e.id for e in enrollments
            if not e.refunded and e.state != 'graduated']
        super().end_refunded(enrollments)
        # super() wrote the rows, so this transaction holds them (a
        # concurrent penalty waits, or fails here and the call restarts):
        # the balances read now stay true until the commit
        cls._take_back_fee(cls.browse(ending))

    @classmethod
    def _take_back_fee(cls, enrollments):
        Movement = Pool().get('course.mentor.movement')
        rows, balances = [], {}
        for enrollment in enrollments:
            balance = enrollment.mentor_fee_balance or Decimal(0)
            if not enrollment.mentor or balance <= 0:
                continue
            rows.append({
                    'mentor': enrollment.mentor.id,
                    'company': enrollment.company.id,
                    'enrollment': enrollment.id, 'kind': 'adjust',
                    'amount': -balance, 'origin': str(enrollment),
                    'description': gettext(
                        'course_degree.msg_movement_refunded',
                        company_language(enrollment.company),
                        enrollment=enrollment.rec_name),
                    })
            balances[enrollment.id] = Decimal(0)
        with without_check_access():
            Movement.record(rows)
            cls._set_balances(balances)

    # ---- Assignment and complaints (staff) --------------------------------

    @classmethod
    def _check_staff(cls):
        if not in_group(ADMIN[0]):
            raise MentorError(gettext('course_degree.msg_mentor_staff_only'))

    @classmethod
    def _locked_open(cls, enrollment_id):
        "The enrollment of enrollment_id locked, refused when settled"
        check_id(enrollment_id, 'enrollment')
        if not cls.search([('id', '=', enrollment_id)], count=True):
            raise MentorError(gettext(
                    'course_degree.msg_mentor_enrollment_unknown'))
        lock_rows(cls, [cls(enrollment_id)])
        enrollment = cls(enrollment_id)
        if enrollment.state not in OPEN_STATES or enrollment.refunded:
            raise MentorError(gettext(
                    'course_degree.msg_mentor_enrollment_settled',
                    enrollment=enrollment.rec_name,
                    state=enrollment.state_string))
        return enrollment

    @classmethod
    def _check_mentor(cls, mentor_id, company):
        "The active user of mentor_id in Course Mentor and in company"
        pool = Pool()
        ModelData = pool.get('ir.model.data')
        User = pool.get('res.user')
        if (isinstance(mentor_id, bool) or not isinstance(mentor_id, int)
                or not User.search([
                        ('id', '=', mentor_id),
                        ('groups', '=', ModelData.get_id(
                                'course_degree', 'group_mentor')),
                        ], count=True)):
            raise MentorError(gettext('course_degree.msg_mentor_not_mentor'))
        mentor = User(mentor_id)
        if company not in mentor.companies:
            raise MentorError(gettext(
                    'course_degree.msg_mentor_other_company',
                    mentor=mentor.rec_name, company=company.rec_name))
        return mentor

    @classmethod
    def assign_mentor(cls, enrollment_id, mentor_id):
        """Staff (Degree Administration) make mentor_id the mentor of the
        enrollment: the first mentor gets the program's mentor fee as
        income and the enrollment's balance is the fee; a new mentor gets
        the balance left (an adjustment taking it from the former one and
        one giving it to the new).  The same mentor again does nothing.
        Return the movements recorded."""
        Movement = Pool().get('course.mentor.movement')
        cls._check_staff()
        with without_check_access():
            enrollment = cls._locked_open(enrollment_id)
            mentor = cls._check_mentor(mentor_id, enrollment.company)
            former = enrollment.mentor
            if former == mentor:
                return []
            language = company_language(enrollment.company)
            base = {'company': enrollment.company.id,
                'enrollment': enrollment.id, 'origin': str(enrollment)}
            if former is None:
                balance = round_amount(
                    enrollment.currency, enrollment.degree.mentor_fee or 0)
                rows = [dict(base, mentor=mentor.id, kind='income',
                        amount=balance, description=gettext(
                            'course_degree.msg_movement_income', language,
                            enrollment=enrollment.rec_name))]
            else:
                balance = enrollment.mentor_fee_balance or Decimal(0)
                rows = [
                    dict(base, mentor=former.id, kind='adjust',
                        amount=-balance, description=gettext(
                            'course_degree.msg_movement_reassigned_from',
                            language, mentor=mentor.rec_name)),
                    dict(base, mentor=mentor.id, kind='adjust',
                        amount=balance, description=gettext(
                            'course_degree.msg_movement_reassigned_to',
                            language, mentor=former.rec_name)),
                    ]
            movements = Movement.record([r for r in rows if r['amount']])
            cls.write([enrollment], {
                    'mentor': mentor.id, 'mentor_fee_balance': balance})
        return movements

    @classmethod
    def complain(cls, enrollment_id, reason):
        """Staff record a student's complaint about the mentor (reason): a
        penalty of the configured amount, capped at the enrollment's
        balance, taken from the mentor; return the movement"""
        pool = Pool()
        Configuration = pool.get('course.degree.configuration')
        Movement = pool.get('course.mentor.movement')
        cls._check_staff()
        if not isinstance(reason, str) or not reason.strip():
            raise MentorError(gettext(
                    'course_degree.msg_complaint_reason_required'))
        reason = reason.strip()
        if len(reason) > MAX_REASON:
            raise MentorError(gettext(
                    'course_degree.msg_complaint_reason_too_long',
                    size=MAX_REASON))
        with without_check_access():
            enrollment = cls._locked_open(enrollment_id)
            if not enrollment.mentor:
                raise MentorError(gettext(
                        'course_degree.msg_complaint_no_mentor',
                        enrollment=enrollment.rec_name))
            balance = enrollment.mentor_fee_balance or Decimal(0)
            penalty = min(balance, round_amount(
                    enrollment.currency,
                    Configuration(1).penalty('complaint')))
            if penalty <= 0:
                raise MentorError(gettext(
                        'course_degree.msg_complaint_no_balance',
                        enrollment=enrollment.rec_name))
            movement, = Movement.record([{
                        'mentor': enrollment.mentor.id,
                        'company': enrollment.company.id,
                        'enrollment': enrollment.id, 'kind': 'penalty',
                        'amount': -penalty, 'origin': str(enrollment),
                        'description': reason,
                        }])
            cls.write([enrollment], {'mentor_fee_balance': balance - penalty})
        return movement

    # ---- The daily job ---------------------------------------------------

    @classmethod
    def run_daily(cls, batch_size=500):
        """The daily job (ir.cron at 02:00): mark the late submissions and
        the late gradings and apply their penalties once, time out the
        enrollments past their end, mature the mentor fees of graduated
        students.  Each batch is committed in a transaction of its own;
        return {step: [ids changed]}."""
        at = now()
        done = {}
        done['late_submission'] = cls._daily_steps(
            cls._late_submission_batch, cls._penalize_late_submissions,
            at, batch_size)
        done['late_grading'] = cls._daily_steps(
            cls._late_grading_batch, cls._penalize_late_gradings,
            at, batch_size)
        done['timed_out'] = cls._daily_steps(
            cls._timeout_batch, cls._time_out, at, batch_size)
        done['matured'] = cls._daily_steps(
            cls._maturing_batch, cls._mature, at, batch_size)
        logger.info("daily job of degree programs: %s", {
                k: len(v) for k, v in done.items()})
        return done

    @classmethod
    def _daily_steps(cls, select, apply, at, size):
        """Run apply(ids, at) on each batch of ids that select(at, after,
        size) finds, each in a committed transaction of its own; a batch
        that fails (a lock held too long) is logged and left for the next
        run"""
        done, after = [], 0
        while True:
            ids = in_new_transaction(select, at, after, size, readonly=True)
            if not ids:
                return done
            after = ids[-1]
            try:
                done += in_new_transaction(
                    apply, ids, at, retries=BATCH_RETRIES)
            except backend.DatabaseOperationalError:
                logger.warning(
                    "%s: %d records left for the next run",
                    apply.__name__, len(ids), exc_info=True)

    @classmethod
    def _submission_batch(cls, where, after, size):
        "The ids of the next submissions of studying enrollments"
        Submission = Pool().get('course.degree.submission')
        submission = Submission.__table__()
        enrollment = cls.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*submission.join(enrollment,
                condition=submission.enrollment == enrollment.id
                ).select(submission.id,
                where=where(submission) & (submission.id > after)
                & (enrollment.state == 'studying'),
                order_by=[submission.id.asc], limit=size))
        return [i for i, in cursor]

    @classmethod
    def _late_submission_batch(cls, at, after, size):
        # The due date is a date of the company: checked per submission
        # when applied; here the submissions due before tomorrow (UTC)
        return cls._submission_batch(
            lambda t: cls._late_submission_where(t, at.date()
                + dt.timedelta(days=1)), after, size)

    @staticmethod
    def _late_submission_where(table, today):
        # Not handed in by the due date, or handed in after it
        return ((table.reward_state == 'none') & (
                ((table.state == 'to_submit') & (table.due != Null)
                    & (table.due < today))
                | (table.late == Literal(True))))

    @classmethod
    def _late_grading_batch(cls, at, after, size):
        return cls._submission_batch(
            lambda t: cls._late_grading_where(t, cls._grading_deadline(at)),
            after, size)

    @staticmethod
    def _grading_deadline(at):
        "Submitted before it, homework to grade is graded late"
        Configuration = Pool().get('course.degree.configuration')
        return at - dt.timedelta(days=Configuration(1).get_grading_days())

    @staticmethod
    def _late_grading_where(table, deadline):
        return ((table.state == 'to_grade')
            & table.reward_state.in_(['none', 'late'])
            & (table.submitted != Null) & (table.submitted < deadline))

    @classmethod
    def _penalize_late_submissions(cls, ids, at):
        """Mark late the submissions of ids not submitted by their due date
        (in their company's time) and take the late submission penalty
        once for each; return the ids marked"""
        pool = Pool()
        Company = pool.get('company.company')
        Submission = pool.get('course.degree.submission')
        rows = cls._submission_rows(ids)
        # Lock first: the call restarts (see lock_rows)
        lock_rows(cls, cls.browse({e for _, e, _ in rows}))
        marked = []
        by_company = defaultdict(list)
        for submission, _, company in rows:
            by_company[company].append(submission)
        for company, sub_ids in by_company.items():
            today = local_date(Company(company), at)
            marked += move_state(
                Submission, sub_ids,
                lambda t: cls._late_submission_where(t, today),
                {'reward_state': 'late'})
        cls._penalize(marked, 'late_submission')
        return marked

    @classmethod
    def _penalize_late_gradings(cls, ids, at):
        """Mark graded late the submissions of ids waiting longer than the
        grading days and take the late grading penalty once for each;
        return the ids marked"""
        Submission = Pool().get('course.degree.submission')
        rows = cls._submission_rows(ids)
        lock_rows(cls, cls.browse({e for _, e, _ in rows}))
        deadline = cls._grading_deadline(at)
        ids = [s for s, _, _ in rows]

        def late(state):
            return lambda t: cls._late_grading_where(t, deadline) & (
                t.reward_state == state)
        # Late twice: both penalties taken (penalized)
        marked = move_state(
            Submission, ids, late('late'), {'reward_state': 'penalized'})
        marked += move_state(
            Submission, ids, late('none'), {'reward_state': 'grading_late'})
        cls._penalize(marked, 'late_grading')
        return marked

    @classmethod
    def _submission_rows(cls, ids):
        "[(submission id, enrollment id, company id)] of the submissions"
        Submission = Pool().get('course.degree.submission')
        submission = Submission.__table__()
        enrollment = cls.__table__()
        cursor = Transaction().connection.cursor()
        rows = []
        for sub_ids in grouped_slice(ids, in_max()):
            cursor.execute(*submission.join(enrollment,
                    condition=submission.enrollment == enrollment.id
                    ).select(submission.id, enrollment.id, enrollment.company,
                    where=reduce_ids(submission.id, sub_ids)))
            rows += cursor.fetchall()
        return sorted(rows)

    @classmethod
    def _penalize(cls, submission_ids, rule):
        """Take the penalty of rule ('late_submission', 'late_grading')
        from the mentor fee of each submission's enrollment (locked by the
        caller), never below zero; without a mentor there is nothing to
        take"""
        pool = Pool()
        Configuration = pool.get('course.degree.configuration')
        Movement = pool.get('course.mentor.movement')
        Submission = pool.get('course.degree.submission')
        if not submission_ids:
            return
        penalty = Configuration(1).penalty(rule)
        balances, movements = {}, []
        with without_check_access():
            for submission in Submission.browse(sorted(submission_ids)):
                enrollment = submission.enrollment
                if not enrollment.mentor:
                    continue
                balance = balances.get(
                    enrollment.id, enrollment.mentor_fee_balance or 0)
                amount = min(balance, round_amount(
                        enrollment.currency, penalty))
                if amount <= 0:
                    continue
                balances[enrollment.id] = balance - amount
                movements.append({
                        'mentor': enrollment.mentor.id,
                        'company': enrollment.company.id,
                        'enrollment': enrollment.id, 'kind': 'penalty',
                        'amount': -amount, 'origin': str(submission),
                        'description': gettext(
                            f'course_degree.msg_movement_{rule}',
                            company_language(enrollment.company),
                            submission=submission.rec_name),
                        })
            Movement.record(movements)
            cls._set_balances(balances)

    @classmethod
    def _set_balances(cls, balances):
        "Store {enrollment id: balance}, one UPDATE per balance"
        by_balance = defaultdict(list)
        for enrollment, balance in balances.items():
            by_balance[balance].append(enrollment)
        for balance, ids in by_balance.items():
            move_state(cls, ids, lambda t: Literal(True),
                {'mentor_fee_balance': balance})

    @classmethod
    def _timeout_batch(cls, at, after, size):
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.select(table.id,
                where=cls._timeout_where(table, at) & (table.id > after),
                order_by=[table.id.asc], limit=size))
        return [i for i, in cursor]

    @staticmethod
    def _timeout_where(table, at):
        return (table.state.in_(['not_started', 'studying'])
            & (table.end != Null) & (table.end < at))

    @classmethod
    def _time_out(cls, ids, at):
        "Time out the enrollments of ids still past their end"
        moved = move_state(
            cls, ids, lambda t: cls._timeout_where(t, at),
            {'state': 'timed_out'})
        log_transitions(cls, moved, 'timed_out')
        return moved

    @classmethod
    def _maturing_batch(cls, at, after, size):
        """The graduated enrollments with movements not matured yet: an
        enrollment's movements (income, transfers, penalties) mature
        together, in one transaction"""
        Movement = Pool().get('course.mentor.movement')
        movement = Movement.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*movement.select(movement.enrollment,
                where=cls._maturing_where(movement)
                & (movement.enrollment > after),
                group_by=[movement.enrollment],
                order_by=[movement.enrollment.asc], limit=size))
        return [i for i, in cursor]

    @classmethod
    def _maturing_where(cls, movement):
        enrollment = cls.__table__()
        return ((movement.matured == Literal(False))
            & movement.enrollment.in_(enrollment.select(
                    enrollment.id, where=enrollment.state == 'graduated')))

    @classmethod
    def _mature(cls, ids, at):
        """Mature the movements of the enrollments of ids (income,
        penalties, transfers of graduated students): the mentors may
        withdraw them"""
        Movement = Pool().get('course.mentor.movement')
        movement = Movement.__table__()
        cursor = Transaction().connection.cursor()
        movement_ids = []
        for sub_ids in grouped_slice(ids):
            cursor.execute(*movement.select(movement.id,
                    where=reduce_ids(movement.enrollment, sub_ids)
                    & cls._maturing_where(movement)))
            movement_ids += [i for i, in cursor]
        return move_state(
            Movement, movement_ids, cls._maturing_where, {'matured': True})


class Submission(metaclass=PoolMeta):
    __name__ = 'course.degree.submission'
    my_student = fields.Function(
        fields.Boolean("My Student"), 'get_my_student',
        searcher='search_my_student')

    def get_my_student(self, name):
        mentor = self.enrollment.mentor
        return bool(mentor and mentor.id == Transaction().user)

    @classmethod
    def search_my_student(cls, name, clause):
        _, operator, value = clause
        mine = (operator == '=') == bool(value)
        return [('enrollment.mentor', '=' if mine else '!=',
                Transaction().user)]


# The models whose record rules name the user (a mentor's own records)
MENTOR_RULE_MODELS = {
    'course.degree.enrollment', 'course.degree.followup',
    'course.mentor.movement', 'course.mentor.ledger'}


class Rule(metaclass=PoolMeta):
    "The rules of the mentors' records evaluate Eval('user_id')"
    __name__ = 'ir.rule'

    @classmethod
    def _get_context(cls, model_name):
        context = super()._get_context(model_name)
        context['user_id'] = Transaction().user
        return context

    @classmethod
    def _get_cache_key(cls, model_names):
        key = super()._get_cache_key(model_names)
        if MENTOR_RULE_MODELS & set(model_names):
            key = (*key, Transaction().user)
        return key


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.append((
                'course.degree.enrollment|run_daily',
                "Degree Programs: Penalties, Timeouts and Mentor Fees"))


# ---- Wizards -----------------------------------------------------------------

class AssignMentorStart(RPCInputMixin, ModelView):
    "Assign Mentor"
    __name__ = 'course.degree.enrollment.assign_mentor.start'
    enrollment = fields.Many2One(
        'course.degree.enrollment', "Enrollment", readonly=True)
    former = fields.Many2One('res.user', "Current Mentor", readonly=True)
    mentor = fields.Many2One(
        'res.user', "Mentor", required=True,
        domain=[('groups', '=', Id('course_degree', 'group_mentor'))],
        help="A user of the group Course Mentor.")
    balance = fields.Numeric(
        "Mentor Fee Balance", digits=(16, 2), readonly=True,
        help="What the new mentor gets: the program's mentor fee for the "
        "first mentor, the balance left otherwise.")


class AssignMentor(RPCInputMixin, Wizard):
    "Assign Mentor"
    __name__ = 'course.degree.enrollment.assign_mentor'
    start = StateView(
        'course.degree.enrollment.assign_mentor.start',
        'course_degree.assign_mentor_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Assign", 'assign', 'tryton-ok', default=True),
            ])
    assign = StateTransition()

    def default_start(self, fields):
        enrollment = self.record
        if enrollment is None:
            return {}
        balance = (enrollment.mentor_fee_balance if enrollment.mentor
            else enrollment.degree.mentor_fee)
        return {
            'enrollment': enrollment.id,
            'former': enrollment.mentor.id if enrollment.mentor else None,
            'mentor': enrollment.mentor.id if enrollment.mentor else None,
            'balance': balance,
            }

    @classmethod
    def execute(cls, session_id, data, state_name):
        # The mentor is checked before the wizard's form reads it as a
        # record: 'x' would fail there
        mentor = _form_value(data, 'mentor')
        if mentor is not None and (
                isinstance(mentor, bool) or not isinstance(mentor, int)):
            raise MentorError(gettext('course_degree.msg_mentor_not_mentor'))
        return super().execute(session_id, data, state_name)

    def transition_assign(self):
        Enrollment = Pool().get('course.degree.enrollment')
        enrollment = _one_record(self)
        mentor = self.start.mentor
        Enrollment.assign_mentor(
            enrollment, mentor.id if mentor is not None else None)
        return 'end'


def _form_value(data, name):
    "The value of field name in the start form of a wizard's data"
    start = data.get('start') if isinstance(data, dict) else None
    return start.get(name) if isinstance(start, dict) else None


def _one_record(wizard):
    "The id of the one record the wizard runs on, or MentorError"
    if len(wizard.records) != 1:
        raise MentorError(gettext('course_degree.msg_mentor_one_enrollment'))
    return wizard.records[0].id


class ComplaintStart(RPCInputMixin, ModelView):
    "Student Complaint"
    __name__ = 'course.degree.enrollment.complaint.start'
    enrollment = fields.Many2One(
        'course.degree.enrollment', "Enrollment", readonly=True)
    mentor = fields.Many2One('res.user', "Mentor", readonly=True)
    penalty = fields.Numeric(
        "Penalty", digits=(16, 2), readonly=True,
        help="The complaint penalty of the configuration, at most the "
        "balance.")
    reason = fields.Text("Reason", required=True)


class Complaint(RPCInputMixin, Wizard):
    "Student Complaint"
    __name__ = 'course.degree.enrollment.complaint'
    start = StateView(
        'course.degree.enrollment.complaint.start',
        'course_degree.complaint_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Record", 'record_', 'tryton-ok', default=True),
            ])
    record_ = StateTransition()

    def default_start(self, fields):
        Configuration = Pool().get('course.degree.configuration')
        enrollment = self.record
        if enrollment is None:
            return {}
        balance = enrollment.mentor_fee_balance or Decimal(0)
        return {
            'enrollment': enrollment.id,
            'mentor': enrollment.mentor.id if enrollment.mentor else None,
            'penalty': min(balance, Configuration(1).penalty('complaint')),
            }

    def transition_record_(self):
        Enrollment = Pool().get('course.degree.enrollment')
        Enrollment.complain(_one_record(self), self.start.reason)
        return 'end'


class WithdrawStart(RPCInputMixin, ModelView):
    "Withdraw Mentor Income"
    __name__ = 'course.mentor.withdraw.start'
    company = fields.Many2One('company.company', "Company", readonly=True)
    currency = fields.Many2One('currency.currency', "Currency", readonly=True)
    matured = fields.Numeric(
        "Matured", digits='currency', readonly=True,
        help="What you may withdraw.")
    amount = fields.Numeric(
        "Amount", digits='currency', required=True,
        domain=[('amount', '>', 0)])


class Withdraw(RPCInputMixin, Wizard):
    "Withdraw Mentor Income"
    __name__ = 'course.mentor.withdraw'
    start = StateView(
        'course.mentor.withdraw.start',
        'course_degree.withdraw_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Withdraw", 'withdraw', 'tryton-ok', default=True),
            ])
    withdraw = StateTransition()

    def default_start(self, fields):
        pool = Pool()
        Company = pool.get('company.company')
        Movement = pool.get('course.mentor.movement')
        User = pool.get('res.user')
        transaction = Transaction()
        company_id = transaction.context.get('company')
        if not company_id or company_id not in User.get_companies():
            return {}
        company = Company(company_id)
        _, matured = Movement.mentor_amounts(
            [transaction.user], company)[transaction.user]
        return {
            'company': company.id, 'currency': company.currency.id,
            'matured': matured,
            }

    @classmethod
    def execute(cls, session_id, data, state_name):
        # The amount is checked before the wizard's form turns it into a
        # Decimal: 'x' would fail there, a float would lose its cents
        amount = _form_value(data, 'amount')
        if amount is not None and (
                isinstance(amount, (float, bool))
                or not isinstance(amount, (int, str, Decimal))):
            raise MentorError(gettext(
                    'course_degree.msg_withdraw_amount_invalid'))
        if isinstance(amount, str):
            try:
                Decimal(amount)
            except ArithmeticError:
                raise MentorError(gettext(
                        'course_degree.msg_withdraw_amount_invalid'))
        return super().execute(session_id, data, state_name)

    def transition_withdraw(self):
        Movement = Pool().get('course.mentor.movement')
        Movement.withdraw(self.start.amount)
        return 'end'

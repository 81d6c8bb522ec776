"""Coupon templates: their terms as three parts (the range of courses they
cover, the condition a cart must meet, the benefit they give), the issue
rules (window, validity, stock) and the RPC doors of the module"""
import datetime as dt
import re
from collections import namedtuple
from decimal import Decimal, InvalidOperation

from sql import Column, Null
from sql.aggregate import Count, Sum
from sql.conditionals import Case

from trytond.i18n import gettext
from trytond.model import (
    Check, DeactivableMixin, ModelSQL, ModelView, fields)
from trytond.model.modelstorage import local_cache
from trytond.modules.course.course import CompanyMixin
from trytond.modules.course.rpc import RPCInputMixin
from trytond.modules.course.tools import (
    check_bool, check_caller, check_company, check_dict, check_ids, check_int,
    check_list, check_record, check_records, check_text, clear_cache, now,
    round_amount)
from trytond.pool import Pool
from trytond.pyson import Bool, Eval, If
from trytond.rpc import RPC
from trytond.transaction import Transaction, without_check_access

from .exceptions import (
    CouponError, CouponInputError, CouponModificationError,
    CouponValidationError)

# Course Administration: the work of the coupons' buttons and wizards
ADMIN = ('course.group_course_admin',)
# Staff who act for a student (claim, redeem, usable coupons)
STAFF = ('course.group_course_admin', 'course.group_course_sales')

FORMULA_REDUCTION = re.compile(r'^-\s*(\d+(?:\.\d+)?)$')
FORMULA_PERCENTAGE = re.compile(r'^\*\s*(\d*\.\d+|\d+)$')

# What a grant would give on a cart: the grant, its coupon, the lines it
# applies to and the discount amount
Usable = namedtuple('Usable', ['grant', 'coupon', 'lines', 'discount'])

# The most (course, option) items a cart may have in usable_grants
MAX_ITEMS = 100
# The longest code text redeem reads (a code is 16 characters, blanks and
# dashes are ignored)
MAX_CODE_TEXT = 64

SCOPES = [
    ('general', "General"),
    ('direction', "Directions"),
    ('category', "Categories"),
    ('course', "Courses"),
    ]

# The fields check_values reads: validate_fields runs it when one changes
CHECKED_FIELDS = {
    'method', 'amount', 'rate', 'condition', 'validity_mode', 'valid_start',
    'valid_end',
    'valid_days', 'claim_start', 'claim_end', 'total', 'per_party_limit'}
SCOPE_FIELDS = {'scope', 'directions', 'categories', 'courses'}
# The terms a grant holds: frozen once the coupon has grants (for users)
TERM_FIELDS = SCOPE_FIELDS | {
    'method', 'amount', 'rate', 'formula', 'condition', 'target', 'company'}


def parse_formula(formula):
    """Return (method, amount, rate) of a formula: `-30` is 30 off, `*0.88`
    is paying 88%; raise CouponValidationError when malformed"""
    text = (formula or '').strip()
    try:
        match = FORMULA_REDUCTION.match(text)
        if match:
            amount = Decimal(match.group(1))
            if amount > 0:
                return 'reduction', amount, None
        match = FORMULA_PERCENTAGE.match(text)
        if match:
            rate = Decimal(match.group(1))
            if 0 < rate < 1:
                return 'percentage', None, rate
    except InvalidOperation:
        pass
    raise CouponValidationError(gettext(
            'course_coupon.msg_coupon_formula_invalid', formula=formula))


def format_decimal(value):
    "A Decimal without trailing zeros: 30.00 → 30, 0.880 → 0.88"
    return format(value.normalize(), 'f')


class Coupon(
        RPCInputMixin, CompanyMixin, DeactivableMixin, ModelSQL, ModelView):
    "Coupon"
    __name__ = 'course.coupon'
    name = fields.Char("Name", required=True, translate=True)
    description = fields.Text("Description", translate=True)
    method = fields.Selection([
            ('reduction', "Reduction"),
            ('percentage', "Percentage"),
            ], "Method", required=True)
    amount = fields.Numeric(
        "Amount", digits='currency',
        states={
            'invisible': Eval('method') != 'reduction',
            'required': Eval('method') == 'reduction',
            },
        help="The amount taken off the eligible courses.")
    rate = fields.Numeric(
        "Rate", digits=(16, 4),
        domain=[If(Eval('method') == 'percentage',
                [('rate', '>', 0), ('rate', '<', 1)], [])],
        states={
            'invisible': Eval('method') != 'percentage',
            'required': Eval('method') == 'percentage',
            },
        help="The share of the price paid: 0.88 is paying 88%.")
    formula = fields.Function(fields.Char(
            "Formula",
            help="-30: 30 off; *0.88: pay 88%. Writing it sets the method "
            "and its value."), 'get_formula', setter='set_formula')
    condition = fields.Numeric(
        "Threshold", digits='currency', required=True,
        help="The eligible subtotal must reach it (0: none).")
    scope = fields.Selection(SCOPES, "Scope", required=True)
    directions = fields.Many2Many(
        'course.coupon-course.direction', 'coupon', 'direction',
        "Directions",
        states={'invisible': Eval('scope') != 'direction'})
    categories = fields.Many2Many(
        'course.coupon-course.category', 'coupon', 'category',
        "Categories",
        states={'invisible': Eval('scope') != 'category'})
    courses = fields.Many2Many(
        'course.coupon-course.course', 'coupon', 'course', "Courses",
        domain=[('company', '=', Eval('company', -1))],
        states={'invisible': Eval('scope') != 'course'})
    target = fields.Selection([
            ('best', "The most expensive eligible course"),
            ('all', "Every eligible course"),
            ], "Target", required=True,
        states={'invisible': Eval('method') != 'percentage'},
        help="Which eligible courses a percentage applies to.")
    issue_mode = fields.Selection([
            ('grant', "Granted by staff"),
            ('claim', "Claimed by students"),
            ], "Issue Mode", required=True)
    claim_start = fields.DateTime(
        "Issue Start", help="Grants and claims are possible from then on.")
    claim_end = fields.DateTime(
        "Issue End",
        domain=[If(Bool(Eval('claim_start')) & Bool(Eval('claim_end')),
                ('claim_end', '>', Eval('claim_start')), ())],
        help="Grants and claims are possible until then.")
    total = fields.Integer(
        "Total",
        domain=['OR', ('total', '=', None), ('total', '>=', 0)],
        help="How many grants (and codes) may be issued; empty: no limit.")
    remaining = fields.Integer("Remaining", readonly=True)
    per_party_limit = fields.Integer(
        "Per Student", required=True,
        domain=[('per_party_limit', '>=', 0)],
        help="How many grants a student may hold (0: no limit).")
    validity_mode = fields.Selection([
            (None, ""),
            ('window', "Fixed Window"),
            ('days', "Days from the Grant"),
            ], "Validity", required=True,
        help="How long the grants are valid: the same window for all, or "
        "a number of days from when each is granted.")
    valid_start = fields.DateTime(
        "Valid From",
        states={
            'invisible': Eval('validity_mode') != 'window',
            'required': Eval('validity_mode') == 'window',
            })
    valid_end = fields.DateTime(
        "Valid To",
        domain=[If(Bool(Eval('valid_start')) & Bool(Eval('valid_end')),
                ('valid_end', '>', Eval('valid_start')), ())],
        states={
            'invisible': Eval('validity_mode') != 'window',
            'required': Eval('validity_mode') == 'window',
            })
    valid_days = fields.Integer(
        "Valid Days",
        domain=['OR', ('valid_days', '=', None), ('valid_days', '>', 0)],
        states={
            'invisible': Eval('validity_mode') != 'days',
            'required': Eval('validity_mode') == 'days',
            },
        help="Days of validity counted from the grant, instead of a fixed "
        "window.")
    grants = fields.One2Many(
        'course.coupon.grant', 'coupon', "Grants", readonly=True)
    granted = fields.Function(
        fields.Integer("Granted"), 'get_figures')
    codes_left = fields.Function(
        fields.Integer("Codes not Redeemed"), 'get_figures')
    used = fields.Function(fields.Integer("Used"), 'get_figures')
    discount_given = fields.Function(
        fields.Numeric("Discount Given", digits='currency'), 'get_figures')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('amount_positive', Check(
                    t, (t.amount == Null) | (t.amount > 0)),
                'course_coupon.msg_coupon_amount_check'),
            ('condition_positive', Check(t, t.condition >= 0),
                'course_coupon.msg_coupon_condition_check'),
            ('remaining_positive', Check(
                    t, (t.remaining == Null) | (t.remaining >= 0)),
                'course_coupon.msg_coupon_remaining_check'),
            ]
        cls._order = [('id', 'DESC')]
        cls._buttons.update({
                'grant_wizard': {
                    'invisible': ~Eval('active', True),
                    'icon': 'tryton-forward',
                    'depends': ['active'],
                    },
                'generate_codes': {
                    'invisible': ~Eval('active', True),
                    'icon': 'tryton-add',
                    'depends': ['active'],
                    },
                })
        # Ids in, ids out: the doors check every parameter themselves
        cls.__rpc__.update({
                'claim': RPC(
                    readonly=False,
                    result=lambda grants: [g.id for g in grants]),
                'redeem': RPC(readonly=False, result=int),
                'usable_grants': RPC(),
                'grant': RPC(
                    readonly=False,
                    result=lambda grants: [g.id for g in grants]),
                'generate': RPC(
                    readonly=False,
                    result=lambda grants: [g.id for g in grants]),
                })

    @classmethod
    def __register__(cls, module):
        table_h = cls.__table_handler__(module)
        cursor = Transaction().connection.cursor()
        table = cls.__table__()
        fill_validity = not table_h.column_exist('validity_mode')
        super().__register__(module)
        # Migration: the choice was implied by which fields were filled
        if fill_validity:
            cursor.execute(*table.update(
                    [table.validity_mode],
                    [Case((table.valid_days != Null, 'days'),
                            else_='window')]))

    @classmethod
    def default_method(cls):
        return 'reduction'

    @classmethod
    def default_condition(cls):
        return Decimal(0)

    @classmethod
    def default_scope(cls):
        return 'general'

    @classmethod
    def default_target(cls):
        return 'best'

    @classmethod
    def default_issue_mode(cls):
        return 'grant'

    @classmethod
    def default_per_party_limit(cls):
        return 1

    def get_formula(self, name):
        if self.method == 'reduction' and self.amount is not None:
            return '-' + format_decimal(self.amount)
        if self.method == 'percentage' and self.rate is not None:
            return '*' + format_decimal(self.rate)

    @classmethod
    def set_formula(cls, coupons, name, value):
        method, amount, rate = parse_formula(value)
        cls.write(coupons, {'method': method, 'amount': amount, 'rate': rate})

    @fields.depends('formula', 'method', 'amount', 'rate')
    def on_change_formula(self):
        try:
            self.method, amount, rate = parse_formula(self.formula)
        except CouponValidationError:
            return  # said by on_change_notify
        self.amount, self.rate = amount, rate

    @fields.depends('formula')
    def on_change_notify(self):
        # At once, in the formula's own words: otherwise the client would
        # first say that the amount (left empty) is required
        notifications = super().on_change_notify()
        if (self.formula or '').strip():
            try:
                parse_formula(self.formula)
            except CouponValidationError as exception:
                notifications.append(('error', exception.message))
        return notifications

    @fields.depends(
        'validity_mode', 'valid_start', 'valid_end', 'valid_days')
    def on_change_validity_mode(self):
        "Keep only the fields of the chosen validity"
        if self.validity_mode != 'window':
            self.valid_start = self.valid_end = None
        if self.validity_mode != 'days':
            self.valid_days = None

    @property
    def display(self):
        "How a student reads the coupon: its name and formula"
        return f'{self.name} ({self.get_formula(None)})'

    @classmethod
    def preprocess_values(cls, mode, values):
        values = super().preprocess_values(mode, values)
        if values.get('formula') is not None:
            method, amount, rate = parse_formula(values.pop('formula'))
            values.update(method=method, amount=amount, rate=rate)
        elif 'formula' in values:
            del values['formula']
        if mode == 'create':
            values['remaining'] = values.get('total')
            # Callers that only fill the window or the days (scripts)
            if not values.get('validity_mode'):
                if values.get('valid_days'):
                    values['validity_mode'] = 'days'
                elif values.get('valid_start') or values.get('valid_end'):
                    values['validity_mode'] = 'window'
        return values

    @classmethod
    def copy(cls, coupons, default=None):
        "A copy is a new coupon: no grants, its whole total in stock"
        default = default.copy() if default is not None else {}
        default.setdefault('grants', None)
        return super().copy(coupons, default=default)

    @classmethod
    def check_modification(cls, mode, coupons, values=None, external=False):
        """Users may edit a coupon's name, description, windows, validity,
        total, per-student limit, issue mode and active; its remaining
        stock never, and its terms only while nobody holds a grant of it"""
        super().check_modification(
            mode, coupons, values=values, external=external)
        if mode == 'delete':
            issued = cls.issued_counts(coupons)
            for coupon in coupons:
                if issued.get(coupon.id):
                    raise CouponModificationError(gettext(
                            'course_coupon.msg_coupon_delete_granted',
                            coupon=coupon.rec_name,
                            count=issued[coupon.id]))
        elif mode == 'write' and external:
            if 'remaining' in values:
                raise CouponModificationError(gettext(
                        'course_coupon.msg_coupon_remaining_external'))
            cls.check_terms_free(coupons, values.keys() & TERM_FIELDS)

    @classmethod
    def check_terms_free(cls, coupons, names):
        "Refuse to change the terms names of coupons that have grants"
        if not names:
            return
        issued = cls.issued_counts(coupons)
        for coupon in coupons:
            if issued.get(coupon.id):
                raise CouponModificationError(gettext(
                        'course_coupon.msg_coupon_terms_granted',
                        coupon=coupon.rec_name, count=issued[coupon.id],
                        fields=', '.join(sorted(
                                cls.__names__(field=n)['field']
                                for n in names))))

    @classmethod
    def on_modification(cls, mode, coupons, field_names=None):
        super().on_modification(mode, coupons, field_names=field_names)
        if mode == 'write' and 'total' in field_names:
            cls._reset_remaining(coupons)

    @classmethod
    def issued_counts(cls, coupons):
        "Return {coupon id: grants issued (codes included)} in one query"
        Grant = Pool().get('course.coupon.grant')
        grant = Grant.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*grant.select(
                grant.coupon, Count(grant.id),
                where=grant.coupon.in_([c.id for c in coupons]),
                group_by=[grant.coupon]))
        return dict(cursor)

    @classmethod
    def _reset_remaining(cls, coupons):
        "remaining = total - the grants issued, refused when below 0"
        pool = Pool()
        Grant = pool.get('course.coupon.grant')
        table = cls.__table__()
        grant = Grant.__table__()
        cursor = Transaction().connection.cursor()
        ids = [c.id for c in coupons]
        issued = cls.issued_counts(coupons)
        for coupon in coupons:
            if (coupon.total is not None
                    and coupon.total < issued.get(coupon.id, 0)):
                raise CouponValidationError(gettext(
                        'course_coupon.msg_coupon_total_below_issued',
                        coupon=coupon.rec_name,
                        issued=issued.get(coupon.id, 0)))
        count = grant.select(
            Count(grant.id), where=grant.coupon == table.id)
        cursor.execute(*table.update(
                [table.remaining],
                [Case((table.total == Null, Null),
                        else_=table.total - count)],
                where=table.id.in_(ids)))
        clear_cache(cls, ids)

    @classmethod
    def validate_fields(cls, coupons, field_names):
        super().validate_fields(coupons, field_names)
        if field_names & CHECKED_FIELDS:
            for coupon in coupons:
                coupon.check_values()
        if field_names & SCOPE_FIELDS:
            for coupon in coupons:
                coupon.check_scope()

    def check_values(self):
        "Refuse terms that contradict each other"
        coupon = self.rec_name
        if self.method == 'reduction':
            if self.amount is None or self.amount <= 0:
                raise CouponValidationError(gettext(
                        'course_coupon.msg_coupon_amount_positive',
                        coupon=coupon))
        elif self.rate is None or not (0 < self.rate < 1):
            raise CouponValidationError(gettext(
                    'course_coupon.msg_coupon_rate_range', coupon=coupon))
        if self.condition is None or self.condition < 0:
            raise CouponValidationError(gettext(
                    'course_coupon.msg_coupon_condition_positive',
                    coupon=coupon))
        fixed = bool(self.valid_start or self.valid_end)
        if (fixed == bool(self.valid_days)
                or fixed != (self.validity_mode == 'window')):
            raise CouponValidationError(gettext(
                    'course_coupon.msg_coupon_validity', coupon=coupon))
        if fixed and (not self.valid_start or not self.valid_end
                or self.valid_end <= self.valid_start):
            raise CouponValidationError(gettext(
                    'course_coupon.msg_coupon_validity_dates',
                    coupon=coupon))
        if (self.claim_start and self.claim_end
                and self.claim_end <= self.claim_start):
            raise CouponValidationError(gettext(
                    'course_coupon.msg_coupon_claim_dates', coupon=coupon))
        if self.total is not None and self.total < 0:
            raise CouponValidationError(gettext(
                    'course_coupon.msg_coupon_total_positive',
                    coupon=coupon))
        if self.per_party_limit is None or self.per_party_limit < 0:
            raise CouponValidationError(gettext(
                    'course_coupon.msg_coupon_limit_positive',
                    coupon=coupon))

    def check_scope(self):
        "A limited scope needs at least one direction, category or course"
        if self.scope != 'general' and not self.scope_ids:
            raise CouponValidationError(gettext(
                    'course_coupon.msg_coupon_scope_empty',
                    coupon=self.rec_name))

    @classmethod
    def get_figures(cls, coupons, names):
        "Usage figures of the coupons in one query"
        pool = Pool()
        Grant = pool.get('course.coupon.grant')
        grant = Grant.__table__()
        cursor = Transaction().connection.cursor()
        result = {n: {c.id: 0 for c in coupons} for n in names}
        if 'discount_given' in result:
            result['discount_given'] = {c.id: Decimal(0) for c in coupons}
        ids = [c.id for c in coupons]
        cursor.execute(*grant.select(
                grant.coupon,
                Count(Case((grant.party != Null, grant.id))),
                Count(Case(((grant.party == Null)
                            & (grant.state == 'available'), grant.id))),
                Count(Case((grant.state == 'used', grant.id))),
                Sum(Case((grant.state == 'used', grant.discount_amount))),
                where=grant.coupon.in_(ids),
                group_by=[grant.coupon]))
        for coupon_id, granted, codes, used, given in cursor:
            values = {
                'granted': granted, 'codes_left': codes, 'used': used,
                'discount_given': given,
                }
            for name in names:
                value = values[name] or 0
                if name == 'discount_given':
                    value = Decimal(str(value))
                result[name][coupon_id] = value
        for coupon in coupons:
            if 'discount_given' in result and coupon.currency:
                result['discount_given'][coupon.id] = round_amount(
                    coupon.currency, result['discount_given'][coupon.id])
        return result

    # ---- Range: the courses the coupon covers ------------------------------

    @property
    def scope_ids(self):
        "The ids of the directions, categories or courses of the scope"
        if self.scope == 'direction':
            return self.relation_ids('directions')
        if self.scope == 'category':
            return self.relation_ids('categories')
        if self.scope == 'course':
            return self.relation_ids('courses')
        return set()

    def relation_ids(self, name):
        """The ids of the Many2Many name's targets.

        A stored coupon's are selected from the relation table: the field's
        getter orders them by their target (a join and a sort for a set
        only asked whether it holds a course).  A coupon not saved, or
        holding unsaved values of name, answers from its values."""
        if (self.id is None or self.id < 0
                or (self._values is not None and name in self._values)):
            return {r.id for r in getattr(self, name)}
        field = self._fields[name]
        table = field.get_relation().__table__()
        origin = Column(table, field.origin)
        target = Column(table, field.target)
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.select(target,
                where=(origin == self.id) & (target != Null)))
        return {i for i, in cursor}

    def covers(self, course, scope_ids=None):
        "Whether the course is in the coupon's scope"
        if self.scope == 'general':
            return True
        if scope_ids is None:
            scope_ids = self.scope_ids
        key = {
            'direction': course.direction.id,
            'category': course.category.id,
            'course': course.id,
            }[self.scope]
        return key in scope_ids

    def eligible_lines(self, lines):
        """The lines the coupon may apply to: lines of a course in its
        scope, without an activity price (no discount on a discount); raise
        CouponError when there is none.  A line selling something else than
        a course is not covered (a module selling it may extend this)."""
        scope_ids = self.scope_ids
        eligible = [
            l for l in lines
            if l.activity is None and l.course
            and self.covers(l.course, scope_ids)]
        if not eligible:
            raise CouponError(gettext(
                    'course_coupon.msg_coupon_no_eligible_course',
                    coupon=self.rec_name))
        return eligible

    # ---- Condition: what the cart must reach -------------------------------

    def check_condition(self, lines, remaining, per_line=False):
        """Return the lines meeting the threshold, compared with what they
        still cost (remaining): each line's price with per_line (a course
        coupon when stacking), else their subtotal; raise CouponError when
        it is not met"""
        condition = self.condition or Decimal(0)
        if per_line:
            lines = [l for l in lines if remaining[l] >= condition]
            if not lines:
                raise CouponError(gettext(
                        'course_coupon.msg_coupon_condition_line',
                        coupon=self.rec_name,
                        condition=format_decimal(condition)))
            return lines
        subtotal = sum((remaining[l] for l in lines), Decimal(0))
        if subtotal < condition:
            raise CouponError(gettext(
                    'course_coupon.msg_coupon_condition',
                    coupon=self.rec_name,
                    condition=format_decimal(condition),
                    subtotal=subtotal))
        return lines

    # ---- Benefit: the discount it gives ------------------------------------

    def compute_benefit(self, lines, remaining, currency):
        """Return (target lines, discount amount) on lines that still cost
        remaining: a reduction is taken off their subtotal (never more), a
        percentage off the most expensive line or off every line"""
        subtotal = sum((remaining[l] for l in lines), Decimal(0))
        if self.method == 'reduction':
            return lines, min(self.amount, subtotal)
        if self.target == 'best':
            # The most expensive one, the first one on a tie
            targets = [max(lines, key=lambda l: remaining[l])]
        else:
            targets = lines
        # On the targets' subtotal: paying 90% of 1995 is 1795.50
        amount = round_amount(
            currency,
            sum((remaining[l] for l in targets), Decimal(0))
            * (1 - self.rate))
        return targets, amount

    def plan(self, lines, remaining, currency, per_line=False):
        """Return (target lines, discount amount) of the coupon on lines,
        whose current prices are in remaining: its range, then its
        condition, then its benefit; raise CouponError when it applies to
        none"""
        lines = self.eligible_lines(lines)
        lines = self.check_condition(lines, remaining, per_line=per_line)
        return self.compute_benefit(lines, remaining, currency)

    def is_course_coupon(self, stacking):
        "Whether the coupon applies per line (course step) when stacking"
        return stacking == 'course_and_order' and self.scope == 'course'

    # ---- Usable grants of a cart -------------------------------------------

    @classmethod
    def usable(cls, party, lines, at=None):
        """Return the Usable grants of party for lines: each grant that is
        available, valid at `at` (default now) and would apply alone to some
        of the lines, with the lines and the discount it would give.

        lines: course.order.line records (saved or not: they need course,
        unit_price and activity) or (course, option) pairs, priced now.
        """
        pool = Pool()
        Grant = pool.get('course.coupon.grant')
        Configuration = pool.get('course.configuration')
        Company = pool.get('company.company')
        lines = cls._as_lines(lines)
        if not lines:
            return []
        company = Company(Transaction().context['company'])
        stacking = Configuration(1).coupon_stacking
        at = at or now()
        # Selected, not searched: a student may hold a thousand grants, and
        # the records of a batch that large cost trytond quadratic time to
        # make (each instance checks the ids of the whole batch)
        grant = Grant.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*grant.select(grant.id, grant.coupon,
                where=grant.id.in_(Grant.search([
                            ('party', '=', party.id),
                            ('state', '=', 'available'),
                            ('company', '=', company.id),
                            Grant.validity_domain(at),
                            ], query=True)),
                order_by=[grant.id.desc]))
        rows = cursor.fetchall()
        coupons = {c.id: c for c in cls.browse(
                sorted({c for _, c in rows}))}
        # A plan depends on the coupon and the lines, not on the grant: one
        # per coupon, however many grants of it the student holds
        plans = {}
        for coupon in coupons.values():
            remaining = {l: l.unit_price for l in lines}
            try:
                plans[coupon.id] = coupon.plan(
                    lines, remaining, company.currency,
                    per_line=coupon.is_course_coupon(stacking))
            except CouponError:
                plans[coupon.id] = None
        result = []
        # One transaction cache and one record cache for all, as browse()
        # gives (each Grant() would look the first up and make the second),
        # without browse's batch of ids (checked by each record)
        transaction = Transaction()
        cache = transaction.get_cache()
        records = local_cache(Grant, transaction)
        for grant_id, coupon_id in rows:
            if plans[coupon_id] is not None:
                targets, amount = plans[coupon_id]
                grant = Grant(grant_id, _transaction=transaction,
                    _transaction_cache=cache, _local_cache=records)
                result.append(Usable(
                        grant, coupons[coupon_id], list(targets), amount))
        return result

    @classmethod
    def _as_lines(cls, lines):
        "Unsaved order lines priced now for (course, option) pairs"
        pool = Pool()
        Course = pool.get('course.course')
        Line = pool.get('course.order.line')
        pairs = [l for l in lines if isinstance(l, (tuple, list))]
        if not pairs:
            return list(lines)
        prices = Course.get_sale_prices(pairs)
        return [
            Line(course=c, option=o, list_price=p.list_price,
                unit_price=p.unit_price, activity=p.activity)
            for (c, o), p in zip(pairs, prices)]

    # ---- Issue rules: window, validity, stock ------------------------------

    def validity(self, at):
        "Return (valid_from, valid_to) of a grant made at `at`"
        if self.valid_days:
            return at, at + dt.timedelta(days=self.valid_days)
        return self.valid_start, self.valid_end

    def check_issue_window(self, at=None):
        "Refuse to issue the coupon at `at` (default now) outside its window"
        at = at or now()
        self.check_active()
        if ((self.claim_start and at < self.claim_start)
                or (self.claim_end and at > self.claim_end)):
            raise CouponError(gettext(
                    'course_coupon.msg_coupon_claim_window',
                    coupon=self.rec_name))
        if self.valid_end and at >= self.valid_end:
            raise CouponError(gettext(
                    'course_coupon.msg_coupon_validity_over',
                    coupon=self.rec_name))

    def check_active(self):
        if not self.active:
            raise CouponError(gettext(
                    'course_coupon.msg_coupon_inactive',
                    coupon=self.rec_name))

    def check_claimable(self):
        if self.issue_mode != 'claim':
            raise CouponError(gettext(
                    'course_coupon.msg_coupon_not_claimable',
                    coupon=self.rec_name))

    @classmethod
    def take_stock(cls, counts):
        """Take counts ({coupon: n}) from the coupons' remaining stock by a
        conditional UPDATE; raise CouponError when a coupon has not enough
        left.  Race-free: two transactions cannot both take the last one."""
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        ids = []
        for coupon, count in counts.items():
            if not count:
                continue
            cursor.execute(*table.update(
                    [table.remaining], [table.remaining - count],
                    where=(table.id == coupon.id)
                    & (table.remaining != Null)
                    & (table.remaining >= count)))
            ids.append(coupon.id)
            if cursor.rowcount != 1:
                clear_cache(cls, [coupon.id])
                cls(coupon.id).check_stock(count)
        clear_cache(cls, ids)

    def check_stock(self, count):
        "Refuse to issue count grants more than the remaining stock"
        if self.remaining is None or self.remaining >= count:
            return
        if not self.remaining:
            raise CouponError(gettext(
                    'course_coupon.msg_coupon_sold_out',
                    coupon=self.rec_name))
        raise CouponError(gettext(
                'course_coupon.msg_coupon_not_enough',
                coupon=self.rec_name, remaining=self.remaining,
                count=count))

    # ---- RPC doors ---------------------------------------------------------
    # Each checks who calls and every parameter, then works without access
    # checks (the writes are the workflow's).  The contract: doc/reference.

    @classmethod
    def _check_coupons(cls, values, company):
        "The coupons of ids values, all of the company"
        coupons = check_records(cls, values, 'coupons')
        for coupon in coupons:
            if coupon.company != company:
                raise CouponError(gettext(
                        'course_coupon.msg_coupon_other_company',
                        id=coupon.id, company=company.rec_name))
        return coupons

    @classmethod
    def claim(cls, coupons, party):
        """The student (party id) claims the coupons (ids; issue mode
        claim) and gets a grant of each, within the claim window, the stock
        and the per-party limit; return the grants"""
        pool = Pool()
        Grant = pool.get('course.coupon.grant')
        Party = pool.get('party.party')
        check_caller('course.coupon.claim', STAFF)
        company = check_company('course.coupon.claim')
        coupons = cls._check_coupons(coupons, company)
        party = check_record(Party, party, 'party')
        with without_check_access():
            for coupon in coupons:
                coupon.check_claimable()
            return Grant.issue(coupons, [party], origin='claim')

    @classmethod
    def grant(cls, coupons, parties, origin='staff', skip_limited=False):
        """Grant each coupon (ids) once to each party (ids); return the
        grants (see Grant.issue)"""
        pool = Pool()
        Grant = pool.get('course.coupon.grant')
        Party = pool.get('party.party')
        check_caller('course.coupon.grant', ADMIN)
        company = check_company('course.coupon.grant')
        coupons = cls._check_coupons(coupons, company)
        parties = check_ids(parties, 'parties')
        Grant.check_issue_size(len(coupons) * len(parties))
        parties = check_records(Party, parties, 'parties')
        if origin not in {'staff', 'script'}:
            raise CouponInputError(gettext(
                    'course_coupon.msg_grant_origin',
                    origin=repr(origin)[:60]))
        skip_limited = check_bool(skip_limited, 'skip_limited')
        with without_check_access():
            return Grant.issue(
                coupons, parties, origin=origin, skip_limited=skip_limited)

    @classmethod
    def generate(cls, coupons, number):
        """Generate number codes per coupon (ids); return them (see
        Grant.create_codes)"""
        Grant = Pool().get('course.coupon.grant')
        check_caller('course.coupon.generate', ADMIN)
        company = check_company('course.coupon.generate')
        coupons = cls._check_coupons(coupons, company)
        number = check_int(number, 'number')
        with without_check_access():
            return Grant.create_codes(coupons, number)

    @classmethod
    def redeem(cls, party, code):
        "The student (party id) redeems a code (text); return the grant"
        pool = Pool()
        Grant = pool.get('course.coupon.grant')
        Party = pool.get('party.party')
        check_caller('course.coupon.redeem', STAFF)
        check_company('course.coupon.redeem')
        party = check_record(Party, party, 'party')
        code = check_text(code, 'code', max_length=MAX_CODE_TEXT)
        with without_check_access():
            return Grant.redeem(party, code)

    @classmethod
    def usable_grants(cls, party, items):
        """usable() for RPC: party an id, items a list of {'course': id,
        'option': id or None}; return [{'grant', 'code', 'coupon', 'name',
        'formula', 'condition', 'valid_to', 'courses', 'discount'}]"""
        Party = Pool().get('party.party')
        check_caller('course.coupon.usable_grants', STAFF)
        company = check_company('course.coupon.usable_grants')
        party = check_record(Party, party, 'party')
        pairs = cls._check_items(items, company)
        Grant = Pool().get('course.coupon.grant')
        with without_check_access():
            usable = cls.usable(party, pairs)
            grants = {g['id']: g for g in Grant.read(
                    [u.grant.id for u in usable], ['code', 'valid_to'])}
            return [{
                    'grant': u.grant.id,
                    'code': grants[u.grant.id]['code'],
                    'coupon': u.coupon.id,
                    'name': u.coupon.name,
                    'formula': u.coupon.formula,
                    'condition': u.coupon.condition,
                    'valid_to': grants[u.grant.id]['valid_to'],
                    'courses': [l.course.id for l in u.lines],
                    'discount': u.discount,
                    } for u in usable]

    @classmethod
    def _check_items(cls, items, company):
        """The (course, option) pairs of items: at most MAX_ITEMS, each a
        dict with an existing course of the company and, when given, one of
        its options"""
        pool = Pool()
        Course = pool.get('course.course')
        Option = pool.get('course.course.option')
        if isinstance(items, (list, tuple)) and len(items) > MAX_ITEMS:
            raise CouponInputError(gettext(
                    'course_coupon.msg_items_too_many',
                    count=len(items), maximum=MAX_ITEMS))
        items = [check_dict(i, 'items') for i in check_list(items, 'items')]
        courses = check_records(
            Course, [i.get('course') for i in items], 'course')
        option_ids = [i.get('option') for i in items]
        options = {o.id: o for o in check_records(
                Option, [o for o in option_ids if o is not None], 'option')}
        options = [options.get(o) for o in option_ids]
        for course, option in zip(courses, options):
            if course.company != company:
                raise CouponInputError(gettext(
                        'course_coupon.msg_course_other_company',
                        course=course.rec_name, company=company.rec_name))
            if option and option.course != course:
                raise CouponInputError(gettext(
                        'course.msg_option_other_course',
                        option=option.rec_name, course=course.rec_name))
        return list(zip(courses, options))

    # ---- Buttons -----------------------------------------------------------

    @classmethod
    @ModelView.button_action('course_coupon.wizard_grant')
    def grant_wizard(cls, coupons):
        pass

    @classmethod
    @ModelView.button_action('course_coupon.wizard_generate_codes')
    def generate_codes(cls, coupons):
        pass


class CouponDirection(RPCInputMixin, ModelSQL):
    "Coupon - Direction"
    __name__ = 'course.coupon-course.direction'
    coupon = fields.Many2One(
        'course.coupon', "Coupon", required=True, ondelete='CASCADE')
    direction = fields.Many2One(
        'course.direction', "Direction", required=True, ondelete='CASCADE')


class CouponCategory(RPCInputMixin, ModelSQL):
    "Coupon - Category"
    __name__ = 'course.coupon-course.category'
    coupon = fields.Many2One(
        'course.coupon', "Coupon", required=True, ondelete='CASCADE')
    category = fields.Many2One(
        'course.category', "Category", required=True, ondelete='CASCADE')


class CouponCourse(RPCInputMixin, ModelSQL):
    "Coupon - Course"
    __name__ = 'course.coupon-course.course'
    coupon = fields.Many2One(
        'course.coupon', "Coupon", required=True, ondelete='CASCADE')
    course = fields.Many2One(
        'course.course', "Course", required=True, ondelete='CASCADE')

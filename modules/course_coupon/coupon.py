"Coupons: templates, grants held by students, codes, claims and scopes"
import datetime as dt
import re
import secrets
from collections import defaultdict, namedtuple
from decimal import Decimal, InvalidOperation

from sql import Null
from sql.aggregate import Count, Sum
from sql.conditionals import Case

from trytond.i18n import gettext
from trytond.model import (
    Check, DeactivableMixin, Index, ModelSQL, ModelView, Unique, Workflow,
    fields)
from trytond.modules.course.course import CompanyMixin
from trytond.modules.course.tools import log_transitions, round_amount
from trytond.pool import Pool
from trytond.pyson import Bool, Eval, If, PYSONEncoder
from trytond.rpc import RPC
from trytond.transaction import Transaction, without_check_access
from trytond.wizard import (
    Button, StateAction, StateTransition, StateView, Wizard)

from .exceptions import (
    CouponError, CouponValidationError, RedeemRateLimitError)

# Codes: 16 characters of an alphabet without 0/O, 1/I/L (80 bits)
CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789'
CODE_LENGTH = 16
REDEEM_WINDOW = dt.timedelta(hours=1)

FORMULA_REDUCTION = re.compile(r'^-\s*(\d+(?:\.\d+)?)$')
FORMULA_PERCENTAGE = re.compile(r'^\*\s*(\d*\.\d+|\d+)$')

SCOPES = [
    ('general', "General"),
    ('direction', "Directions"),
    ('category', "Categories"),
    ('course', "Courses"),
    ]
GRANT_STATES = [
    ('available', "Available"),
    ('reserved', "Reserved"),
    ('used', "Used"),
    ('expired', "Expired"),
    ('revoked', "Revoked"),
    ]

# What a grant would give on a cart: the grant, the lines it applies to and
# the discount amount
Usable = namedtuple('Usable', ['grant', 'lines', 'discount'])


def now():
    """The current UTC datetime (naive, as Tryton stores datetimes), to the
    second: PostgreSQL stores DateTime fields to the second, rounding, so a
    validity starting "now" with microseconds could start in the future"""
    return dt.datetime.now(dt.timezone.utc).replace(
        tzinfo=None, microsecond=0)


def new_code():
    "Return a new random code, hard to guess"
    return ''.join(
        secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(code):
    "The code as stored: no blanks or dashes, upper case"
    return re.sub(r'[\s\-]', '', str(code or '')).upper()


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
    text = format(value.normalize(), 'f')
    return text


class Coupon(CompanyMixin, DeactivableMixin, ModelSQL, ModelView):
    "Coupon"
    __name__ = 'course.coupon'
    name = fields.Char("Name", required=True, translate=True)
    description = fields.Text("Description", translate=True)
    currency = fields.Function(
        fields.Many2One('currency.currency', "Currency"),
        'on_change_with_currency')
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
    valid_start = fields.DateTime(
        "Valid From",
        states={'required': ~Eval('valid_days') & Bool(Eval('valid_end'))})
    valid_end = fields.DateTime(
        "Valid To",
        domain=[If(Bool(Eval('valid_start')) & Bool(Eval('valid_end')),
                ('valid_end', '>', Eval('valid_start')), ())],
        states={'required': ~Eval('valid_days') & Bool(Eval('valid_start'))})
    valid_days = fields.Integer(
        "Valid Days",
        domain=['OR', ('valid_days', '=', None), ('valid_days', '>', 0)],
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
        cls.__rpc__.update({
                'claim': RPC(
                    readonly=False, instantiate=0,
                    result=lambda grants: [g.id for g in grants]),
                'redeem': RPC(readonly=False, result=int),
                'usable_grants': RPC(),
                'grant': RPC(
                    readonly=False, instantiate=0,
                    result=lambda grants: [g.id for g in grants]),
                'generate': RPC(
                    readonly=False, instantiate=0,
                    result=lambda grants: [g.id for g in grants]),
                })

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

    @fields.depends('company')
    def on_change_with_currency(self, name=None):
        return self.company.currency if self.company else None

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
            return
        self.amount, self.rate = amount, rate

    @property
    def display(self):
        "How a student reads the coupon: ¥30, 88折, 满100可用"
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
        return values

    @classmethod
    def on_modification(cls, mode, coupons, field_names=None):
        super().on_modification(mode, coupons, field_names=field_names)
        if mode == 'write' and 'total' in field_names:
            cls._reset_remaining(coupons)

    @classmethod
    def _reset_remaining(cls, coupons):
        "remaining = total - the grants issued, refused when below 0"
        pool = Pool()
        Grant = pool.get('course.coupon.grant')
        table = cls.__table__()
        grant = Grant.__table__()
        cursor = Transaction().connection.cursor()
        ids = [c.id for c in coupons]
        cursor.execute(*grant.select(
                grant.coupon, Count(grant.id),
                where=grant.coupon.in_(ids), group_by=[grant.coupon]))
        issued = dict(cursor)
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
        cls._clear_cache(ids)

    @classmethod
    def validate_fields(cls, coupons, field_names):
        super().validate_fields(coupons, field_names)
        for coupon in coupons:
            coupon.check_values()

    def check_values(self):
        def error(msg, **kwargs):
            raise CouponValidationError(gettext(
                    f'course_coupon.{msg}', coupon=self.rec_name, **kwargs))
        if self.method == 'reduction':
            if self.amount is None or self.amount <= 0:
                error('msg_coupon_amount_positive')
        elif self.rate is None or not (0 < self.rate < 1):
            error('msg_coupon_rate_range')
        if self.condition is None or self.condition < 0:
            error('msg_coupon_condition_positive')
        fixed = bool(self.valid_start or self.valid_end)
        if fixed == bool(self.valid_days):
            error('msg_coupon_validity')
        if fixed and (not self.valid_start or not self.valid_end
                or self.valid_end <= self.valid_start):
            error('msg_coupon_validity_dates')
        if (self.claim_start and self.claim_end
                and self.claim_end <= self.claim_start):
            error('msg_coupon_claim_dates')
        if self.total is not None and self.total < 0:
            error('msg_coupon_total_positive')
        if self.per_party_limit is None or self.per_party_limit < 0:
            error('msg_coupon_limit_positive')

    @classmethod
    def validate(cls, coupons):
        super().validate(coupons)
        for coupon in coupons:
            if coupon.scope != 'general' and not coupon.scope_ids:
                raise CouponValidationError(gettext(
                        'course_coupon.msg_coupon_scope_empty',
                        coupon=coupon.rec_name))

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

    # ---- Scope and discount ---------------------------------------------

    @property
    def scope_ids(self):
        "The ids of the directions, categories or courses of the scope"
        if self.scope == 'direction':
            return {d.id for d in self.directions}
        if self.scope == 'category':
            return {c.id for c in self.categories}
        if self.scope == 'course':
            return {c.id for c in self.courses}
        return set()

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

    def plan(self, lines, remaining, currency, per_line=False):
        """Return (target lines, discount amount) of the coupon on lines,
        whose current prices are in remaining; raise CouponError when it
        applies to none.

        Eligible lines are those in scope without an activity price.  With
        per_line (a course coupon when stacking), the threshold is checked on
        each line's price; else on the eligible subtotal.
        """
        scope_ids = self.scope_ids
        eligible = [
            l for l in lines
            if l.activity is None and self.covers(l.course, scope_ids)]
        if not eligible:
            raise CouponError(gettext(
                    'course_coupon.msg_coupon_no_eligible_course',
                    coupon=self.rec_name))
        condition = self.condition or Decimal(0)
        if per_line:
            eligible = [l for l in eligible if remaining[l] >= condition]
            if not eligible:
                raise CouponError(gettext(
                        'course_coupon.msg_coupon_condition_line',
                        coupon=self.rec_name,
                        condition=format_decimal(condition)))
        subtotal = sum((remaining[l] for l in eligible), Decimal(0))
        if not per_line and subtotal < condition:
            raise CouponError(gettext(
                    'course_coupon.msg_coupon_condition',
                    coupon=self.rec_name,
                    condition=format_decimal(condition),
                    subtotal=subtotal))
        if self.method == 'reduction':
            return eligible, min(self.amount, subtotal)
        if self.target == 'best':
            # The most expensive one, the first one on a tie
            targets = [max(eligible, key=lambda l: remaining[l])]
        else:
            targets = eligible
        # On the targets' subtotal: paying 90% of 1995 is 1795.50
        amount = round_amount(
            currency,
            sum((remaining[l] for l in targets), Decimal(0))
            * (1 - self.rate))
        return targets, amount

    def is_course_coupon(self, stacking):
        "Whether the coupon applies per line (course step) when stacking"
        return stacking == 'course_and_order' and self.scope == 'course'

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
        Party = pool.get('party.party')
        party = Party(int(party))
        lines = cls._as_lines(lines)
        if not lines:
            return []
        company = Company(Transaction().context['company'])
        stacking = Configuration(1).coupon_stacking
        grants = Grant.search([
                ('party', '=', party.id),
                ('state', '=', 'available'),
                ('company', '=', company.id),
                ])
        at = at or now()
        result = []
        for grant in grants:
            if not grant.valid_at(at):
                continue
            remaining = {l: l.unit_price for l in lines}
            try:
                targets, amount = grant.coupon.plan(
                    lines, remaining, company.currency,
                    per_line=grant.coupon.is_course_coupon(stacking))
            except CouponError:
                continue
            result.append(Usable(grant, targets, amount))
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

    @classmethod
    def usable_grants(cls, party, items):
        """usable() for RPC: items are {'course': id, 'option': id}; return
        [{'grant', 'code', 'coupon', 'name', 'formula', 'condition',
        'valid_to', 'courses', 'discount'}]"""
        pool = Pool()
        Course = pool.get('course.course')
        Option = pool.get('course.course.option')
        pairs = [
            (Course(int(i['course'])),
                Option(int(i['option'])) if i.get('option') else None)
            for i in items]
        return [{
                'grant': u.grant.id,
                'code': u.grant.code,
                'coupon': u.grant.coupon.id,
                'name': u.grant.coupon.name,
                'formula': u.grant.coupon.formula,
                'condition': u.grant.coupon.condition,
                'valid_to': u.grant.valid_to,
                'courses': [l.course.id for l in u.lines],
                'discount': u.discount,
                } for u in cls.usable(party, pairs)]

    # ---- Issuing: stock, limits, windows ---------------------------------

    def validity(self, at):
        "Return (valid_from, valid_to) of a grant made at `at`"
        if self.valid_days:
            return at, at + dt.timedelta(days=self.valid_days)
        return self.valid_start, self.valid_end

    def check_issue_window(self, at=None):
        at = at or now()
        if not self.active:
            raise CouponError(gettext(
                    'course_coupon.msg_coupon_inactive',
                    coupon=self.rec_name))
        if ((self.claim_start and at < self.claim_start)
                or (self.claim_end and at > self.claim_end)):
            raise CouponError(gettext(
                    'course_coupon.msg_coupon_claim_window',
                    coupon=self.rec_name))
        if self.valid_end and at >= self.valid_end:
            raise CouponError(gettext(
                    'course_coupon.msg_coupon_validity_over',
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
                cls._clear_cache([coupon.id])
                coupon = cls(coupon.id)
                if coupon.remaining is None:
                    continue
                raise CouponError(gettext(
                        'course_coupon.msg_coupon_sold_out'
                        if not coupon.remaining
                        else 'course_coupon.msg_coupon_not_enough',
                        coupon=coupon.rec_name, remaining=coupon.remaining,
                        count=count))
        cls._clear_cache(ids)

    @classmethod
    def _clear_cache(cls, ids):
        "A raw UPDATE must invalidate the record caches"
        Transaction().counter += 1
        for cache in Transaction().cache.values():
            if cls.__name__ in cache:
                for id_ in ids:
                    cache[cls.__name__].pop(id_, None)

    @classmethod
    def held_counts(cls, coupons, parties):
        "Return {(coupon id, party id): grants held} in one query"
        pool = Pool()
        Grant = pool.get('course.coupon.grant')
        grant = Grant.__table__()
        cursor = Transaction().connection.cursor()
        counts = defaultdict(int)
        coupon_ids = [c.id for c in coupons]
        party_ids = [p.id for p in parties]
        if not coupon_ids or not party_ids:
            return counts
        cursor.execute(*grant.select(
                grant.coupon, grant.party, Count(grant.id),
                where=grant.coupon.in_(coupon_ids)
                & grant.party.in_(party_ids),
                group_by=[grant.coupon, grant.party]))
        for coupon_id, party_id, count in cursor:
            counts[(coupon_id, party_id)] = count
        return counts

    @classmethod
    def check_party_limits(cls, grants):
        """Refuse grants that take a party over the coupon's per-party limit
        (the parties are locked: concurrent claims are counted exactly)"""
        pool = Pool()
        Party = pool.get('party.party')
        held = [g for g in grants if g.party and g.coupon.per_party_limit]
        if not held:
            return
        parties = list({g.party for g in held})
        Party.lock(parties)
        counts = cls.held_counts({g.coupon for g in held}, parties)
        for grant in held:
            if (counts[(grant.coupon.id, grant.party.id)]
                    > grant.coupon.per_party_limit):
                raise CouponError(gettext(
                        'course_coupon.msg_coupon_party_limit',
                        coupon=grant.coupon.rec_name,
                        party=grant.party.rec_name,
                        limit=grant.coupon.per_party_limit))

    # ---- Issuing: the ways in ------------------------------------------

    @classmethod
    def grant(cls, coupons, parties, origin='staff', skip_limited=False):
        """Grant each coupon once to each party; return the grants.

        Respects the issue window, the stock and the per-party limit; with
        skip_limited, parties at their limit are left out instead of
        refused."""
        pool = Pool()
        Party = pool.get('party.party')
        parties = Party.browse([int(p) for p in parties])
        if parties:
            Party.lock(parties)
        at = now()
        to_create = []
        coupons = cls.browse([int(c) for c in coupons])
        counts = cls.held_counts(coupons, parties)
        for coupon in coupons:
            coupon.check_issue_window(at)
            valid_from, valid_to = coupon.validity(at)
            for party in parties:
                if (coupon.per_party_limit
                        and counts[(coupon.id, party.id)]
                        >= coupon.per_party_limit):
                    if skip_limited:
                        continue
                    raise CouponError(gettext(
                            'course_coupon.msg_coupon_party_limit',
                            coupon=coupon.rec_name, party=party.rec_name,
                            limit=coupon.per_party_limit))
                to_create.append((coupon, {
                            'party': party.id, 'origin': origin,
                            'granted_at': at, 'valid_from': valid_from,
                            'valid_to': valid_to}))
        return cls._issue(to_create)

    @classmethod
    def _issue(cls, to_create):
        "Take the stock, then create the grants of [(coupon, values)]"
        pool = Pool()
        Grant = pool.get('course.coupon.grant')
        counts = defaultdict(int)
        for coupon, _ in to_create:
            counts[coupon] += 1
        cls.take_stock(counts)
        with Transaction().set_context(_coupon_stock_taken=True):
            return Grant.create([dict(
                        values, coupon=coupon.id, company=coupon.company.id)
                    for coupon, values in to_create])

    @classmethod
    def claim(cls, coupons, party):
        """The student (party) claims the coupons (issue mode claim) and
        gets a grant of each, within the claim window, the stock and the
        per-party limit; return the grants"""
        pool = Pool()
        Party = pool.get('party.party')
        party = Party(int(party))
        # Lock first: the call restarts once with the lock held
        Party.lock([party])
        for coupon in coupons:
            if coupon.issue_mode != 'claim':
                raise CouponError(gettext(
                        'course_coupon.msg_coupon_not_claimable',
                        coupon=coupon.rec_name))
        return cls.grant(coupons, [party], origin='claim')

    @classmethod
    def generate(cls, coupons, number):
        """Generate number codes per coupon: grants with no party yet,
        counted in the stock; return them"""
        number = int(number)
        if number <= 0:
            raise CouponError(gettext(
                    'course_coupon.msg_coupon_codes_number'))
        to_create = []
        for coupon in coupons:
            if not coupon.active:
                raise CouponError(gettext(
                        'course_coupon.msg_coupon_inactive',
                        coupon=coupon.rec_name))
            valid_from, valid_to = (
                (None, None) if coupon.valid_days
                else (coupon.valid_start, coupon.valid_end))
            for _ in range(number):
                to_create.append((coupon, {
                            'party': None, 'origin': 'code',
                            'valid_from': valid_from, 'valid_to': valid_to}))
        return cls._issue(to_create)

    @classmethod
    def redeem(cls, party, code):
        """The student (party) redeems a code: its grant becomes theirs,
        once; return the grant.

        A wrong or taken code is refused and counted: after too many wrong
        codes within an hour the party is refused until the hour is over.
        """
        pool = Pool()
        Party = pool.get('party.party')
        Grant = pool.get('course.coupon.grant')
        Attempt = pool.get('course.coupon.redeem.attempt')
        Configuration = pool.get('course.configuration')
        party = Party(int(party))
        Party.lock([party])
        limit = Configuration(1).coupon_redeem_attempts or 10
        if Attempt.count(party) >= limit:
            raise RedeemRateLimitError(gettext(
                    'course_coupon.msg_redeem_too_many', limit=limit))
        code = normalize_code(code)
        grants = Grant.search([('code', '=', code)], limit=1) if code else []
        company = Transaction().context.get('company')
        if not grants or (company and grants[0].company.id != company):
            Attempt.add(party)
            raise CouponError(gettext(
                    'course_coupon.msg_redeem_unknown', code=code))
        grant, = grants
        if grant.party or grant.state != 'available':
            Attempt.add(party)
            if grant.party == party:
                raise CouponError(gettext(
                        'course_coupon.msg_redeem_already_yours',
                        code=code))
            elif grant.party:
                raise CouponError(gettext(
                        'course_coupon.msg_redeem_taken', code=code))
            # revoked or expired before anyone redeemed it
            raise CouponError(gettext(
                    'course_coupon.msg_redeem_unknown', code=code))
        coupon = grant.coupon
        coupon.check_issue_window()
        if (coupon.per_party_limit
                and cls.held_counts([coupon], [party])[(coupon.id, party.id)]
                >= coupon.per_party_limit):
            raise CouponError(gettext(
                    'course_coupon.msg_coupon_party_limit',
                    coupon=coupon.rec_name, party=party.rec_name,
                    limit=coupon.per_party_limit))
        at = now()
        valid_from, valid_to = coupon.validity(at)
        table = Grant.__table__()
        cursor = Transaction().connection.cursor()
        # Conditional UPDATE: of two students racing for one code, one gets
        # it (the other waits, then sees it taken)
        cursor.execute(*table.update(
                [table.party, table.granted_at, table.valid_from,
                    table.valid_to, table.write_date, table.write_uid],
                [party.id, at, valid_from, valid_to, at,
                    Transaction().user],
                where=(table.id == grant.id) & (table.party == Null)
                & (table.state == 'available')))
        if cursor.rowcount != 1:
            raise CouponError(gettext(
                    'course_coupon.msg_redeem_taken', code=code))
        Grant._clear_cache([grant.id])
        return Grant(grant.id)

    # ---- Buttons ----------------------------------------------------------

    @classmethod
    @ModelView.button_action('course_coupon.wizard_grant')
    def grant_wizard(cls, coupons):
        pass

    @classmethod
    @ModelView.button_action('course_coupon.wizard_generate_codes')
    def generate_codes(cls, coupons):
        pass


class CouponDirection(ModelSQL):
    "Coupon - Direction"
    __name__ = 'course.coupon-course.direction'
    coupon = fields.Many2One(
        'course.coupon', "Coupon", required=True, ondelete='CASCADE')
    direction = fields.Many2One(
        'course.direction', "Direction", required=True, ondelete='CASCADE')


class CouponCategory(ModelSQL):
    "Coupon - Category"
    __name__ = 'course.coupon-course.category'
    coupon = fields.Many2One(
        'course.coupon', "Coupon", required=True, ondelete='CASCADE')
    category = fields.Many2One(
        'course.category', "Category", required=True, ondelete='CASCADE')


class CouponCourse(ModelSQL):
    "Coupon - Course"
    __name__ = 'course.coupon-course.course'
    coupon = fields.Many2One(
        'course.coupon', "Coupon", required=True, ondelete='CASCADE')
    course = fields.Many2One(
        'course.course', "Course", required=True, ondelete='CASCADE')


class Grant(Workflow, ModelSQL, ModelView):
    "Coupon Grant"
    __name__ = 'course.coupon.grant'
    _rec_name = 'code'
    coupon = fields.Many2One(
        'course.coupon', "Coupon", required=True, ondelete='RESTRICT',
        readonly=True, domain=[('company', '=', Eval('company', -1))])
    company = fields.Many2One(
        'company.company', "Company", required=True, ondelete='RESTRICT',
        readonly=True)
    party = fields.Many2One(
        'party.party', "Student", ondelete='RESTRICT', readonly=True,
        context={'company': Eval('company', -1)}, depends={'company'},
        help="Empty for a code not redeemed yet.")
    code = fields.Char("Code", readonly=True, strip=False)
    state = fields.Selection(
        GRANT_STATES, "State", readonly=True, required=True, sort=False)
    state_string = state.translated('state')
    origin = fields.Selection([
            ('staff', "Staff"),
            ('claim', "Claim"),
            ('script', "Script"),
            ('code', "Code"),
            ], "Origin", required=True, readonly=True)
    granted_at = fields.DateTime("Granted at", readonly=True)
    valid_from = fields.DateTime("Valid From", readonly=True)
    valid_to = fields.DateTime("Valid To", readonly=True)
    order = fields.Many2One(
        'course.order', "Order", ondelete='RESTRICT', readonly=True)
    used_at = fields.DateTime("Used at", readonly=True)
    currency = fields.Function(
        fields.Many2One('currency.currency', "Currency"),
        'on_change_with_currency')
    discount_amount = fields.Numeric(
        "Discount", digits='currency', readonly=True,
        help="The discount the grant gives on its order.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('code_unique', Unique(t, t.code),
                'course_coupon.msg_grant_code_unique'),
            ]
        cls._sql_indexes.update({
                Index(t, (t.party, Index.Equality()),
                    (t.state, Index.Equality(cardinality='low'))),
                Index(t, (t.order, Index.Equality())),
                Index(t, (t.code, Index.Equality(cardinality='high'))),
                Index(
                    t, (t.state, Index.Equality(cardinality='low')),
                    (t.valid_to, Index.Range()),
                    where=t.state == 'available'),
                })
        cls._order = [('id', 'DESC')]
        cls._transitions |= {
            ('available', 'reserved'),
            ('reserved', 'used'),
            ('reserved', 'available'),
            ('reserved', 'expired'),
            ('available', 'expired'),
            ('available', 'revoked'),
            }
        cls._buttons.update({
                'revoke': {
                    'invisible': Eval('state') != 'available',
                    'icon': 'tryton-cancel',
                    'depends': ['state'],
                    },
                })

    @classmethod
    def default_state(cls):
        return 'available'

    @classmethod
    def default_origin(cls):
        return 'script'

    @classmethod
    def default_company(cls):
        return Transaction().context.get('company')

    @fields.depends('company')
    def on_change_with_currency(self, name=None):
        return self.company.currency if self.company else None

    def get_rec_name(self, name):
        return f'{self.code} ({self.coupon.rec_name})'

    @classmethod
    def search_rec_name(cls, name, clause):
        _, operator, value, *extra = clause
        if isinstance(value, str) and operator in {'=', '!='}:
            value = normalize_code(value)
        return ['OR',
            ('code', operator, value, *extra),
            ('coupon.rec_name', operator, value, *extra),
            ]

    @classmethod
    def preprocess_values(cls, mode, values):
        values = super().preprocess_values(mode, values)
        if mode == 'create':
            # Per record: defaults are computed once per batch
            if not values.get('code'):
                values['code'] = new_code()
            else:
                values['code'] = normalize_code(values['code'])
        return values

    @classmethod
    def check_modification(cls, mode, grants, values=None, external=False):
        super().check_modification(
            mode, grants, values=values, external=external)
        if mode == 'delete':
            for grant in grants:
                if grant.state in {'reserved', 'used'}:
                    raise CouponError(gettext(
                            'course_coupon.msg_grant_delete',
                            grant=grant.rec_name))

    @classmethod
    def on_modification(cls, mode, grants, field_names=None):
        pool = Pool()
        Coupon = pool.get('course.coupon')
        super().on_modification(mode, grants, field_names=field_names)
        if mode == 'create':
            # Every way of issuing (staff, claim, codes, scripts) takes the
            # stock and respects the per-party limit here
            Coupon.check_party_limits(grants)
            if not Transaction().context.get('_coupon_stock_taken'):
                counts = defaultdict(int)
                for grant in grants:
                    counts[grant.coupon] += 1
                Coupon.take_stock(counts)

    @classmethod
    def validate_fields(cls, grants, field_names):
        super().validate_fields(grants, field_names)
        if field_names & {'company', 'coupon'}:
            for grant in grants:
                if grant.company != grant.coupon.company:
                    raise CouponValidationError(gettext(
                            'course_coupon.msg_grant_company',
                            grant=grant.rec_name))

    def valid_at(self, at):
        return ((not self.valid_from or self.valid_from <= at)
            and (not self.valid_to or at < self.valid_to))

    def check_usable(self, party, at):
        "Raise CouponError unless the grant may be used by party at `at`"
        if self.party != party:
            raise CouponError(gettext(
                    'course_coupon.msg_grant_not_yours', grant=self.code))
        if self.state != 'available':
            raise CouponError(gettext(
                    f'course_coupon.msg_grant_{self.state}',
                    grant=self.code))
        if self.valid_from and at < self.valid_from:
            raise CouponError(gettext(
                    'course_coupon.msg_grant_not_yet_valid',
                    grant=self.code, start=self.valid_from))
        if self.valid_to and at >= self.valid_to:
            raise CouponError(gettext(
                    'course_coupon.msg_grant_expired', grant=self.code))

    @classmethod
    @ModelView.button
    def revoke(cls, grants):
        "Staff take back available grants (locked: not while reserved)"
        cls.lock(grants)
        for grant in grants:
            if grant.state != 'available':
                raise CouponError(gettext(
                        'course_coupon.msg_grant_revoke_state',
                        grant=grant.rec_name, state=grant.state_string))
        cls._revoke(grants)

    @classmethod
    @Workflow.transition('revoked')
    def _revoke(cls, grants):
        pass

    @classmethod
    def _set_state(cls, where, values):
        "UPDATE the grants matching where; return the ids changed"
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.select(table.id, where=where(table)))
        ids = [i for i, in cursor]
        if ids:
            columns = [getattr(table, k) for k in values] + [
                table.write_date, table.write_uid]
            cursor.execute(*table.update(
                    columns, list(values.values()) + [
                        now(), Transaction().user],
                    where=table.id.in_(ids) & where(table)))
            cls._clear_cache(ids)
        return ids

    @classmethod
    def _clear_cache(cls, ids):
        Transaction().counter += 1
        for cache in Transaction().cache.values():
            if cls.__name__ in cache:
                for id_ in ids:
                    cache[cls.__name__].pop(id_, None)

    @classmethod
    def reserve(cls, grants, order, amounts):
        """Reserve the grants for the order, by a conditional UPDATE: the
        grants still available and the party's, or none (CouponError).
        amounts: {grant: discount given}"""
        if not grants:
            return
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        ids = [g.id for g in grants]
        by_amount = defaultdict(list)
        for grant in grants:
            by_amount[amounts.get(grant)].append(grant.id)
        changed = 0
        at = now()
        for amount, amount_ids in by_amount.items():
            cursor.execute(*table.update(
                    [table.state, table.order, table.discount_amount,
                        table.write_date, table.write_uid],
                    ['reserved', order.id, amount, at, Transaction().user],
                    where=table.id.in_(amount_ids)
                    & (table.state == 'available')
                    & (table.party == order.party.id)))
            changed += cursor.rowcount
        cls._clear_cache(ids)
        if changed != len(ids):
            raise CouponError(gettext(
                    'course_coupon.msg_grant_taken_meanwhile'))
        cls.log(cls.browse(ids), 'transition', 'state:reserved')

    @classmethod
    def use(cls, orders):
        "The orders are paid: their reserved grants are used"
        if not orders:
            return []
        at = now()
        ids = cls._set_state(
            lambda t: t.order.in_([o.id for o in orders])
            & (t.state == 'reserved'),
            {'state': 'used', 'used_at': at})
        if ids:
            cls.log(cls.browse(ids), 'transition', 'state:used')
        return cls.browse(ids)

    @classmethod
    def release(cls, orders):
        """The orders are cancelled or expired: their reserved grants are
        available again, or expired when their validity is over"""
        if not orders:
            return []
        at = now()
        order_ids = [o.id for o in orders]
        expired = cls._set_state(
            lambda t: t.order.in_(order_ids) & (t.state == 'reserved')
            & (t.valid_to != Null) & (t.valid_to <= at),
            {'state': 'expired', 'order': None, 'discount_amount': None})
        available = cls._set_state(
            lambda t: t.order.in_(order_ids) & (t.state == 'reserved'),
            {'state': 'available', 'order': None, 'discount_amount': None})
        # Set-based: the expiry job releases thousands of grants at once
        log_transitions(cls, expired, 'expired')
        log_transitions(cls, available, 'available')
        return cls.browse(expired + available)

    @classmethod
    def expire_grants(cls):
        """Expire the available grants whose validity is over (the cron
        job); reserved ones follow their order"""
        at = now()
        company = Transaction().context.get('company')

        def where(t):
            condition = ((t.state == 'available') & (t.valid_to != Null)
                & (t.valid_to <= at))
            if company:
                condition &= t.company == company
            return condition
        ids = cls._set_state(where, {'state': 'expired'})
        if ids:
            cls.log(cls.browse(ids), 'transition', 'state:expired')
        return cls.browse(ids)


class RedeemAttempt(ModelSQL):
    "Coupon Code Redeem Attempt"
    __name__ = 'course.coupon.redeem.attempt'
    # The party's id, not a Many2One: the foreign key would make the insert
    # (in its own transaction) wait for the redeem's lock on the party
    party = fields.Integer("Student", required=True)
    at = fields.DateTime("At", required=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls.__rpc__ = {}
        cls._sql_indexes.add(
            Index(t, (t.party, Index.Equality()), (t.at, Index.Range())))

    @classmethod
    def count(cls, party):
        "The wrong codes party tried within the last hour"
        with without_check_access():
            return cls.search([
                    ('party', '=', party.id),
                    ('at', '>', now() - REDEEM_WINDOW),
                    ], count=True)

    @classmethod
    def add(cls, party):
        """Record a wrong code of party in a transaction of its own: the
        failed redeem rolls back, the attempt stays"""
        transaction = Transaction()
        table = cls.__table__()
        with transaction.new_transaction() as new, without_check_access():
            cursor = new.connection.cursor()
            at = now()
            # Forget what is older than the window
            cursor.execute(*table.delete(
                    where=(table.party == party.id)
                    & (table.at <= at - REDEEM_WINDOW)))
            cls.create([{'party': party.id, 'at': at}])
            new.commit()


class GrantStart(ModelView):
    "Grant Coupon"
    __name__ = 'course.coupon.grant.start'
    coupon = fields.Many2One(
        'course.coupon', "Coupon", required=True,
        domain=[('active', '=', True)])
    mode = fields.Selection([
            ('parties', "Chosen students"),
            ('all', "All students"),
            ('emails', "A list of e-mails"),
            ], "To", required=True)
    parties = fields.Many2Many(
        'party.party', None, None, "Students",
        states={
            'invisible': Eval('mode') != 'parties',
            'required': Eval('mode') == 'parties',
            })
    emails = fields.Text(
        "E-mails",
        states={
            'invisible': Eval('mode') != 'emails',
            'required': Eval('mode') == 'emails',
            },
        help="One e-mail a line (or separated by commas or blanks).")
    skip_limited = fields.Boolean(
        "Skip Students at their Limit",
        help="Leave out the students who hold as many grants of the coupon "
        "as it allows, instead of refusing.")

    @classmethod
    def default_mode(cls):
        return 'parties'

    @classmethod
    def default_skip_limited(cls):
        return False


class GrantWizard(Wizard):
    "Grant Coupon"
    __name__ = 'course.coupon.grant_wizard'
    start = StateView(
        'course.coupon.grant.start',
        'course_coupon.grant_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Grant", 'grant_', 'tryton-ok', default=True),
            ])
    grant_ = StateTransition()
    open_ = StateAction('course_coupon.act_grant_form')

    def default_start(self, fields):
        defaults = {}
        if (self.model and self.model.__name__ == 'course.coupon'
                and self.record):
            defaults['coupon'] = self.record.id
        return defaults

    def students(self):
        pool = Pool()
        Party = pool.get('party.party')
        Company = pool.get('company.company')
        Mechanism = pool.get('party.contact_mechanism')
        if self.start.mode == 'parties':
            return list(self.start.parties)
        if self.start.mode == 'all':
            companies = Company.search([])
            return Party.search([
                    ('id', 'not in', [c.party.id for c in companies]),
                    ])
        emails = [
            e.lower() for e in re.split(r'[\s,;]+', self.start.emails or '')
            if e]
        if not emails:
            return []
        mechanisms = Mechanism.search([
                ('type', '=', 'email'),
                ['OR'] + [('value', 'ilike', e) for e in emails],
                ])
        found = {m.value.lower(): m.party for m in mechanisms}
        missing = [e for e in emails if e not in found]
        if missing:
            raise CouponError(gettext(
                    'course_coupon.msg_grant_unknown_emails',
                    emails=', '.join(missing)))
        return list({found[e] for e in emails})

    def transition_grant_(self):
        pool = Pool()
        Coupon = pool.get('course.coupon')
        parties = self.students()
        grants = Coupon.grant(
            [self.start.coupon], parties, origin='staff',
            skip_limited=self.start.skip_limited)
        self.grant_ids = [g.id for g in grants]
        return 'open_'

    def do_open_(self, action):
        action['pyson_domain'] = PYSONEncoder().encode(
            [('id', 'in', getattr(self, 'grant_ids', []))])
        return action, {}

    # the ids of the grants made, kept on the wizard session
    grant_ids = []


class GenerateCodesStart(ModelView):
    "Generate Coupon Codes"
    __name__ = 'course.coupon.generate_codes.start'
    coupon = fields.Many2One(
        'course.coupon', "Coupon", required=True,
        domain=[('active', '=', True)])
    number = fields.Integer(
        "Number", required=True, domain=[('number', '>', 0)])

    @classmethod
    def default_number(cls):
        return 10


class GenerateCodes(Wizard):
    "Generate Coupon Codes"
    __name__ = 'course.coupon.generate_codes'
    start = StateView(
        'course.coupon.generate_codes.start',
        'course_coupon.generate_codes_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Generate", 'generate', 'tryton-ok', default=True),
            ])
    generate = StateTransition()
    open_ = StateAction('course_coupon.act_grant_form')

    def default_start(self, fields):
        defaults = {}
        if (self.model and self.model.__name__ == 'course.coupon'
                and self.record):
            defaults['coupon'] = self.record.id
        return defaults

    def transition_generate(self):
        Coupon = Pool().get('course.coupon')
        grants = Coupon.generate([self.start.coupon], self.start.number)
        self.grant_ids = [g.id for g in grants]
        return 'open_'

    def do_open_(self, action):
        action['pyson_domain'] = PYSONEncoder().encode(
            [('id', 'in', getattr(self, 'grant_ids', []))])
        return action, {}

    grant_ids = []

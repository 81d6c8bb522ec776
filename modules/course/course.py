"The course catalog: directions, categories, courses and their options"
import datetime as dt
from collections import namedtuple
from decimal import Decimal

from sql import Null

from trytond.cache import Cache
from trytond.i18n import gettext
from trytond.model import (
    Check, DeactivableMixin, ModelSingleton, ModelSQL, ModelView,
    fields, sequence_ordered)
from trytond.pool import Pool
from trytond.pyson import Eval, If
from trytond.rpc import RPC
from trytond.tools import grouped_slice, reduce_ids
from trytond.transaction import Transaction

from .exceptions import CourseValidationError, EnrollmentError, InputError
from .rpc import RPCInputMixin
from .tools import (
    _input_error, check_id, check_list, company_currency, company_language,
    in_max, lock_rows, now, round_amount, states_said)

# What checkout needs to know of a course's price at a given time
SalePrice = namedtuple(
    'SalePrice', ['list_price', 'unit_price', 'discount_name', 'activity'])


class Configuration(
        RPCInputMixin, ModelSingleton, ModelSQL, ModelView):
    "Course Configuration"
    __name__ = 'course.configuration'
    # The settings are added by the modules that need them (orders,
    # coupons, credit, payments).
    # The id of the one record: ModelSingleton searches it at each read,
    # and a checkout reads the settings twice
    _singleton_id = Cache('course.configuration.singleton', context=False)

    @classmethod
    def get_singleton(cls):
        singleton_id = cls._singleton_id.get(None)
        if singleton_id is not None:
            return cls(singleton_id)
        singleton = super().get_singleton()
        if singleton is not None:
            cls._singleton_id.set(None, singleton.id)
        return singleton

    @classmethod
    def on_modification(cls, mode, records, field_names=None):
        super().on_modification(mode, records, field_names=field_names)
        if mode in {'create', 'delete'}:
            cls._singleton_id.clear()


class Direction(
        RPCInputMixin, DeactivableMixin, sequence_ordered(), ModelSQL,
        ModelView):
    "Learning Direction"
    __name__ = 'course.direction'
    name = fields.Char("Name", required=True, translate=True)
    categories = fields.One2Many(
        'course.category', 'direction', "Categories")


class Category(
        RPCInputMixin, DeactivableMixin, sequence_ordered(), ModelSQL,
        ModelView):
    "Course Category"
    __name__ = 'course.category'
    name = fields.Char("Name", required=True, translate=True)
    direction = fields.Many2One(
        'course.direction', "Direction", required=True, ondelete='RESTRICT')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('direction', 'ASC'))


class CompanyMixin:
    "A company field defaulting to the user's company, and its currency"
    __slots__ = ()
    company = fields.Many2One(
        'company.company', "Company", required=True, ondelete='RESTRICT')
    currency = fields.Function(
        fields.Many2One('currency.currency', "Currency"),
        'on_change_with_currency')

    @classmethod
    def default_company(cls):
        return Transaction().context.get('company')

    @fields.depends('company')
    def on_change_with_currency(self, name=None):
        return self.company.currency if self.company else None


class NonNegativeMixin:
    """Numeric fields that may not be negative: `_not_negative` maps each
    to its message id.  An SQL CHECK constraint `<field>_positive` refuses
    them, and validate_fields too: SQLite cannot add a CHECK constraint to
    an existing table."""
    __slots__ = ()
    _not_negative = {}

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            (f'{name}_positive', Check(t, getattr(t, name) >= 0), message)
            for name, message in cls._not_negative.items()]

    @classmethod
    def validate_fields(cls, records, field_names):
        super().validate_fields(records, field_names)
        for name in field_names & cls._not_negative.keys():
            for record in records:
                value = getattr(record, name)
                if value is not None and value < 0:
                    raise CourseValidationError(gettext(
                            cls._not_negative[name],
                            record=record.rec_name))


class Course(
        RPCInputMixin, CompanyMixin, NonNegativeMixin, DeactivableMixin,
        sequence_ordered(), ModelSQL, ModelView):
    "Course"
    __name__ = 'course.course'
    _not_negative = {
        'price': 'course.msg_course_price_positive',
        'credit': 'course.msg_course_credit_positive',
        }
    name = fields.Char("Name", required=True, translate=True)
    direction = fields.Many2One(
        'course.direction', "Direction", required=True, ondelete='RESTRICT')
    category = fields.Many2One(
        'course.category', "Category", required=True, ondelete='RESTRICT',
        help="Choosing a category sets its direction.")
    price = fields.Numeric(
        "Price", digits='currency', required=True,
        help="The list price of the course when sold without option.")
    credit = fields.Integer(
        "Credit Cap", required=True,
        help="The most credit points a student may spend on this course "
        "(0: none).")
    published = fields.Boolean(
        "Published", help="Shown and sold on the storefront.")
    description = fields.Text("Description", translate=True)
    cover = fields.Binary("Cover", file_id='cover_id')
    cover_id = fields.Char("Cover ID", readonly=True)
    options = fields.One2Many(
        'course.course.option', 'course', "Validity Options",
        help="Durations the course is sold with, each at its own price.\n"
        "Without option the course is permanent at its price.")
    enrollments = fields.One2Many(
        'course.enrollment', 'course', "Enrollments", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__rpc__.update({
                'sale_prices': RPC(),
                })

    @classmethod
    def default_price(cls):
        return Decimal(0)

    @classmethod
    def default_credit(cls):
        return 0

    @classmethod
    def default_published(cls):
        return False

    @fields.depends('direction', 'category')
    def on_change_direction(self):
        if self.category and self.category.direction != self.direction:
            self.category = None

    @fields.depends('category', 'direction')
    def on_change_category(self):
        if self.category:
            self.direction = self.category.direction

    @classmethod
    def validate_fields(cls, courses, field_names):
        super().validate_fields(courses, field_names)
        if field_names & {'direction', 'category'}:
            cls.check_category_direction(courses)

    @classmethod
    def check_category_direction(cls, courses):
        for course in courses:
            if course.category.direction != course.direction:
                raise CourseValidationError(gettext(
                        'course.msg_course_category_direction',
                        course=course.rec_name,
                        category=course.category.rec_name,
                        direction=course.direction.rec_name))

    def get_sale_price(self, option=None, at=None):
        "Return the SalePrice of the course (with option) at a datetime"
        return self.get_sale_prices([(self, option)], at=at)[0]

    @classmethod
    def sale_prices(cls, items):
        """Return the sale price of [(course id, option id or None)] now,
        as dicts (for RPC: proteus scripts, the storefront)

        The courses are those the caller may read (record rules: the
        user's companies); anything else is refused with an InputError.
        """
        pool = Pool()
        Option = pool.get('course.course.option')
        pairs = [cls._sale_prices_item(i) for i in check_list(items, 'items')]
        courses = cls._existing(cls, {c for c, _ in pairs}, 'course')
        options = cls._existing(
            Option, {o for _, o in pairs if o is not None}, 'option')
        prices = cls.get_sale_prices([
                (courses[c], options[o] if o is not None else None)
                for c, o in pairs])
        return [{
                'list_price': p.list_price,
                'unit_price': p.unit_price,
                'discount_name': p.discount_name,
                'activity': p.activity.id if p.activity else None,
                } for p in prices]

    @staticmethod
    def _sale_prices_item(item):
        "Return (course id, option id or None) of an item of sale_prices"
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise InputError(gettext(
                    'course.msg_sale_prices_item', value=repr(item)[:60]))
        course, option = item
        return (check_id(course, 'course'),
            check_id(option, 'option') if option is not None else None)

    @staticmethod
    def _existing(Model, ids, name):
        """Return {id: record} of the records of Model with ids that the
        caller may read, in one query; refuse any other id"""
        with Transaction().set_context(active_test=False):
            records = {
                r.id: r for r in Model.search([('id', 'in', list(ids))])}
        missing = ids - records.keys()
        if missing:
            raise _input_error(name, min(missing), 'course.msg_input_kind_id')
        return records

    @classmethod
    def get_sale_prices(cls, items, at=None):
        """Return the SalePrice of each (course, option) item at a datetime

        The activities running at `at` (default now) are read in one query
        whatever the number of items; the lowest activity price wins.
        """
        pool = Pool()
        ActivityLine = pool.get('course.activity.line')
        for course, option in items:
            if option and option.course != course:
                raise CourseValidationError(gettext(
                        'course.msg_option_other_course',
                        option=option.rec_name, course=course.rec_name))
        rules = ActivityLine.running_by_course(
            {c for c, _ in items}, at=at)
        companies = {c.company.id: c.company for c, _ in items}
        languages = {
            i: company_language(company) for i, company in companies.items()}
        # One currency record per company, its digits known (the courses'
        # currency, a Function field, gives a new record at each access)
        currencies = {i: company_currency(i) for i in companies}
        prices = []
        for course, option in items:
            language = languages[course.company.id]
            currency = currencies[course.company.id]
            list_price = round_amount(
                currency, option.price if option else course.price)
            best = None
            for rule in rules.get(course.id, []):
                price = rule.compute_price(list_price, currency)
                if best is None or price < best[0]:
                    best = (price, rule)
            if best is None:
                prices.append(SalePrice(
                        list_price, list_price,
                        cls._price_name(language), None))
            else:
                price, rule = best
                prices.append(SalePrice(
                        list_price, price,
                        cls._price_name(language, rule.activity),
                        rule.activity))
        return prices

    @staticmethod
    def _price_name(language, activity=None):
        """The name of a price (the activity's, else the regular price's)
        in language, the company's: order lines keep it"""
        Activity = Pool().get('course.activity')
        if activity is None:
            return gettext('course.msg_regular_price_name', language)
        with Transaction().set_context(language=language):
            return Activity(activity.id).name


class CourseOption(
        RPCInputMixin, NonNegativeMixin, sequence_ordered(), ModelSQL,
        ModelView):
    "Course Validity Option"
    __name__ = 'course.course.option'
    _not_negative = {
        'days': 'course.msg_option_days_positive',
        'price': 'course.msg_option_price_positive',
        }
    course = fields.Many2One(
        'course.course', "Course", required=True, ondelete='CASCADE')
    name = fields.Char("Name", required=True, translate=True)
    days = fields.Integer(
        "Days", required=True, help="Days of access (0: permanent).")
    currency = fields.Function(
        fields.Many2One('currency.currency', "Currency"),
        'on_change_with_currency')
    price = fields.Numeric("Price", digits='currency', required=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('course')

    @classmethod
    def default_days(cls):
        return 0

    @fields.depends('course', '_parent_course.company')
    def on_change_with_currency(self, name=None):
        if self.course and self.course.company:
            return self.course.company.currency

    @property
    def permanent(self):
        return not self.days


class Enrollment(RPCInputMixin, CompanyMixin, ModelSQL, ModelView):
    "Course Enrollment"
    __name__ = 'course.enrollment'
    # Every field is the workflow's: paid orders, refunds, the Give Course
    # wizard and the End Access button write them, never a user's call
    party = fields.Many2One(
        'party.party', "Student", required=True, ondelete='RESTRICT',
        readonly=True,
        context={'company': Eval('company', -1)}, depends={'company'})
    course = fields.Many2One(
        'course.course', "Course", required=True, ondelete='RESTRICT',
        readonly=True,
        domain=[('company', '=', Eval('company', -1))])
    source = fields.Selection([
            ('purchase', "Purchase"),
            ('free', "Free"),
            ('gift', "Gift"),
            ('system', "System"),
            ], "Source", required=True, readonly=True)
    source_string = source.translated('source')
    start = fields.DateTime("Start", required=True, readonly=True)
    end = fields.DateTime(
        "End", readonly=True,
        domain=[If(Eval('end'), ('end', '>=', Eval('start')), ())],
        help="Empty for a permanent enrollment.")
    state = fields.Function(fields.Selection([
                ('live', "Live"),
                ('ended', "Ended"),
                ], "State"), 'get_state', searcher='search_state')
    state_string = state.translated('state')
    gift_reason = fields.Text(
        "Gift Reason", readonly=True,
        states={'invisible': Eval('source') != 'gift'})
    given_by = fields.Many2One(
        'res.user', "Given by", readonly=True, ondelete='RESTRICT',
        states={'invisible': Eval('source') != 'gift'},
        help="The user who gave the course.")
    ended_by = fields.Many2One(
        'res.user', "Ended by", readonly=True, ondelete='RESTRICT',
        states={'invisible': ~Eval('ended_by')},
        help="The user who ended the access early.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.company.readonly = True
        cls._order = [('start', 'DESC'), ('id', 'DESC')]
        cls._buttons.update({
                'end_access': {
                    'invisible': Eval('state') != 'live',
                    'icon': 'tryton-cancel',
                    'depends': ['state'],
                    },
                })

    def get_rec_name(self, name):
        return f'{self.party.rec_name} - {self.course.rec_name}'

    @classmethod
    def search_rec_name(cls, name, clause):
        _, operator, *_ = clause
        bool_op = 'AND' if operator.startswith('!') or operator.startswith(
            'not ') else 'OR'
        return [bool_op,
            ('party.rec_name',) + tuple(clause[1:]),
            ('course.rec_name',) + tuple(clause[1:]),
            ]

    @classmethod
    def create(cls, vlist):
        # A user's create is refused here, before the values are validated:
        # check_modification would come after the validation, which tells
        # the clients (they send no read-only field) to fill in the student
        if Transaction().check_access:
            raise EnrollmentError(gettext(
                    'course.msg_enrollment_create_external'))
        return super().create(vlist)

    @classmethod
    def check_modification(
            cls, mode, enrollments, values=None, external=False):
        """Refuse every change from a user's call (RPC), whatever the group:
        enrollments are given by paid orders and the Give Course wizard,
        and ended by refunds and the End Access button"""
        super().check_modification(
            mode, enrollments, values=values, external=external)
        if external and enrollments and (mode == 'delete' or values):
            raise EnrollmentError(gettext(
                    'course.msg_enrollment_modify_external',
                    enrollment=enrollments[0].rec_name))

    @classmethod
    def default_source(cls):
        return 'system'

    @classmethod
    def default_start(cls):
        return now()

    def get_state(self, name):
        return 'live' if self.end is None or self.end > now() else 'ended'

    @classmethod
    def search_state(cls, name, clause):
        _, operator, value = clause
        live = ['OR', ('end', '=', None), ('end', '>', now())]
        ended = [('end', '!=', None), ('end', '<=', now())]
        values = {value} if isinstance(value, str) else set(value or [])
        if operator in {'not in', '!='}:
            values = {'live', 'ended'} - values
        domain = ['OR']
        if 'live' in values:
            domain.append(live)
        if 'ended' in values:
            domain.append(ended)
        return domain if len(domain) > 1 else [('id', '=', -1)]

    @classmethod
    def validate(cls, enrollments):
        super().validate(enrollments)
        cls.check_one_live(enrollments)

    @classmethod
    def check_one_live(cls, enrollments):
        """Refuse a second live enrollment of a student in a course.

        The students are locked first, so two transactions enrolling the
        same student cannot both see no other live enrollment.  Read from
        the rows (validate runs once they are written), one query for the
        students and one for the others whatever the number of enrollments:
        a paid order validates each enrollment it creates.
        """
        pool = Pool()
        Party = pool.get('party.party')
        cursor = Transaction().connection.cursor()
        table, other = cls.__table__(), cls.__table__()
        at = now()

        def live(t):
            return (t.end == Null) | (t.end > at)
        ids = sorted({e.id for e in enrollments})
        parties = set()
        for sub_ids in grouped_slice(ids, in_max()):
            cursor.execute(*table.select(table.party,
                    where=reduce_ids(table.id, list(sub_ids)) & live(table),
                    group_by=[table.party]))
            parties.update(p for p, in cursor)
        if not parties:
            return
        lock_rows(Party, Party.browse(sorted(parties)))
        for sub_ids in grouped_slice(ids, in_max()):
            cursor.execute(*table.join(other, condition=(
                        (other.party == table.party)
                        & (other.course == table.course)
                        & (other.id != table.id))).select(other.id,
                    where=(reduce_ids(table.id, list(sub_ids))
                        & live(table) & live(other)),
                    limit=1))
            found = cursor.fetchone()
            if found:
                other_enrollment = cls(found[0])
                raise CourseValidationError(gettext(
                        'course.msg_enrollment_live_unique',
                        student=other_enrollment.party.rec_name,
                        course=other_enrollment.course.rec_name))

    @classmethod
    def end_now(cls, enrollments):
        "End the live enrollments now"
        live = [e for e in enrollments if e.state == 'live']
        if live:
            cls.write(live, {'end': now()})

    @classmethod
    @states_said()
    @ModelView.button
    def end_access(cls, enrollments):
        "Staff end the access now (a gift given by mistake, an abuse)"
        live = [e for e in enrollments if e.state == 'live']
        if live:
            cls.write(live, {
                    'end': now(),
                    'ended_by': Transaction().user or None,
                    })

    @classmethod
    def give(cls, party, course, days, reason):
        """Give the course to the party for days (0: permanent) because of
        reason, as a gift of the user of the transaction; return it"""
        start = now()
        enrollment, = cls.create([{
                    'party': party.id, 'course': course.id,
                    'company': course.company.id, 'source': 'gift',
                    'start': start,
                    'end': start + dt.timedelta(days=days) if days else None,
                    'gift_reason': reason,
                    'given_by': Transaction().user or None,
                    }])
        return enrollment


"Degree programs: their validity options, modules and homework"
from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import (
    DeactivableMixin, ModelSQL, ModelView, Unique, fields, sequence_ordered)
from trytond.modules.course.course import CompanyMixin, NonNegativeMixin
from trytond.modules.course.rpc import RPCInputMixin
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import without_check_access

from .exceptions import DegreeValidationError


class Degree(
        RPCInputMixin, CompanyMixin, NonNegativeMixin, DeactivableMixin,
        ModelSQL, ModelView):
    "Degree Program"
    __name__ = 'course.degree'
    _not_negative = {
        'price': 'course_degree.msg_degree_price_positive',
        'mentor_fee': 'course_degree.msg_degree_mentor_fee_positive',
        }
    name = fields.Char("Name", required=True, translate=True)
    description = fields.Text("Description", translate=True)
    price = fields.Numeric(
        "Price", digits='currency', required=True,
        help="The list price of the program when sold without option.")
    options = fields.One2Many(
        'course.degree.option', 'degree', "Validity Options",
        help="Validities the program is sold with, each at its own price.\n"
        "Without option the program is valid for its validity days.")
    modules = fields.One2Many(
        'course.degree.module', 'degree', "Modules",
        help="The courses of the program, studied one after the other.")
    mentor_fee = fields.Numeric(
        "Mentor Fee", digits='currency', required=True,
        help="What the program pays the mentor of each student.")
    validity_days = fields.Integer(
        "Validity Days", required=True,
        help="Days of study from the opening of the first module, when the "
        "program is sold without option.")
    published = fields.Boolean(
        "Published", help="Shown and sold on the storefront.")
    enrollments = fields.One2Many(
        'course.degree.enrollment', 'degree', "Enrollments", readonly=True)

    @classmethod
    def default_price(cls):
        return Decimal(0)

    @classmethod
    def default_mentor_fee(cls):
        return Decimal('1500.00')

    @classmethod
    def default_validity_days(cls):
        return 730

    @classmethod
    def default_published(cls):
        return False

    @classmethod
    def validate_fields(cls, degrees, field_names):
        super().validate_fields(degrees, field_names)
        if 'validity_days' in field_names:
            for degree in degrees:
                if degree.validity_days is not None and (
                        degree.validity_days <= 0):
                    raise DegreeValidationError(gettext(
                            'course_degree.msg_degree_validity_positive',
                            degree=degree.rec_name))

    @property
    def ordered_modules(self):
        "The modules in their order of study"
        return sorted(self.modules, key=lambda m: (m.sequence or 0, m.id))


class DegreeOption(
        RPCInputMixin, NonNegativeMixin, sequence_ordered(), ModelSQL,
        ModelView):
    "Degree Program Validity Option"
    __name__ = 'course.degree.option'
    _not_negative = {
        'price': 'course_degree.msg_option_price_positive',
        }
    degree = fields.Many2One(
        'course.degree', "Program", required=True, ondelete='CASCADE')
    name = fields.Char("Name", required=True, translate=True)
    days = fields.Integer(
        "Days", required=True,
        help="Days of study from the opening of the first module.")
    currency = fields.Function(
        fields.Many2One('currency.currency', "Currency"),
        'on_change_with_currency')
    price = fields.Numeric("Price", digits='currency', required=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('degree')

    @fields.depends('degree', '_parent_degree.company')
    def on_change_with_currency(self, name=None):
        if self.degree and self.degree.company:
            return self.degree.company.currency

    @classmethod
    def validate_fields(cls, options, field_names):
        super().validate_fields(options, field_names)
        if 'days' in field_names:
            for option in options:
                if option.days is not None and option.days <= 0:
                    raise DegreeValidationError(gettext(
                            'course_degree.msg_option_days_positive',
                            option=option.rec_name))


class DegreeModule(
        RPCInputMixin, sequence_ordered(), ModelSQL, ModelView):
    "Degree Program Module"
    __name__ = 'course.degree.module'
    degree = fields.Many2One(
        'course.degree', "Program", required=True, ondelete='CASCADE')
    course = fields.Many2One(
        'course.course', "Course", required=True, ondelete='RESTRICT',
        domain=[('company', '=', Eval('company', -1))],
        help="The course studied in this module.  A course becomes a "
        "module not sold alone, unless staff tick Sold Alone on it.")
    company = fields.Function(
        fields.Many2One('company.company', "Company"),
        'on_change_with_company')
    homeworks = fields.One2Many(
        'course.degree.homework', 'module', "Homework")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('degree')
        t = cls.__table__()
        cls._sql_constraints += [
            ('degree_course_unique', Unique(t, t.degree, t.course),
                'course_degree.msg_module_course_unique'),
            ]

    @fields.depends('degree', '_parent_degree.company')
    def on_change_with_company(self, name=None):
        return self.degree.company if self.degree else None

    def get_rec_name(self, name):
        return self.course.rec_name if self.course else str(self.id)

    @classmethod
    def search_rec_name(cls, name, clause):
        return [('course.rec_name',) + tuple(clause[1:])]

    @classmethod
    def on_modification(cls, mode, modules, field_names=None):
        super().on_modification(mode, modules, field_names=field_names)
        if mode == 'create' or (
                mode == 'write' and 'course' in (field_names or ())):
            cls.stop_selling_alone(modules)

    @classmethod
    def stop_selling_alone(cls, modules):
        """A course that becomes a module is no longer sold alone: the
        program sells it (staff may tick Sold Alone again afterwards)"""
        Course = Pool().get('course.course')
        courses = [m.course for m in modules if m.course.sold_alone]
        if courses:
            # The program's staff need no write access on the catalog
            with without_check_access():
                Course.write(courses, {'sold_alone': False})


class DegreeHomework(
        RPCInputMixin, sequence_ordered(), ModelSQL, ModelView):
    "Degree Program Homework"
    __name__ = 'course.degree.homework'
    module = fields.Many2One(
        'course.degree.module', "Module", required=True, ondelete='CASCADE')
    name = fields.Char("Name", required=True, translate=True)
    description = fields.Text("Description", translate=True)
    days = fields.Integer(
        "Days", required=True,
        help="Days after the module opens when the homework is due, for a "
        "study plan of 2-3 hours a day (scaled for the other plans).")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('module')

    @classmethod
    def default_days(cls):
        return 7

    @classmethod
    def validate_fields(cls, homeworks, field_names):
        super().validate_fields(homeworks, field_names)
        if 'days' in field_names:
            for homework in homeworks:
                if homework.days is not None and homework.days < 0:
                    raise DegreeValidationError(gettext(
                            'course_degree.msg_homework_days_positive',
                            homework=homework.rec_name))


class Course(metaclass=PoolMeta):
    __name__ = 'course.course'
    sold_alone = fields.Boolean(
        "Sold Alone",
        help="Whether the course is sold on its own when it is a module of "
        "a degree program (a course that is no module is always sold).")
    degree_modules = fields.One2Many(
        'course.degree.module', 'course', "Degree Modules", readonly=True)

    @classmethod
    def default_sold_alone(cls):
        return True

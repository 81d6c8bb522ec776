"""Credit points on degree programs (course_credit): a program has a
credit cap as a course has"""
from trytond.i18n import gettext
from trytond.model import fields
from trytond.pool import PoolMeta

from .exceptions import DegreeValidationError


class Degree(metaclass=PoolMeta):
    __name__ = 'course.degree'
    credit = fields.Integer(
        "Credit Cap", required=True,
        help="The most credit points a student may spend on this program "
        "(0: none).")

    @classmethod
    def default_credit(cls):
        return 0

    @classmethod
    def validate_fields(cls, degrees, field_names):
        super().validate_fields(degrees, field_names)
        if 'credit' in field_names:
            for degree in degrees:
                if degree.credit is not None and degree.credit < 0:
                    raise DegreeValidationError(gettext(
                            'course_degree.msg_degree_credit_positive',
                            degree=degree.rec_name))


class Order(metaclass=PoolMeta):
    __name__ = 'course.order'

    @classmethod
    def _credit_cap(cls, line):
        if getattr(line, 'is_degree', False):
            return line.product.credit or 0
        return super()._credit_cap(line)

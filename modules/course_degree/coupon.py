"""Coupons with a degree scope (course_coupon): a coupon may name degree
programs; a general coupon covers program lines too"""
from trytond.model import ModelSQL, fields
from trytond.modules.course.rpc import RPCInputMixin
from trytond.modules.course_coupon.exceptions import CouponError
from trytond.pool import PoolMeta
from trytond.pyson import Eval


class Coupon(metaclass=PoolMeta):
    __name__ = 'course.coupon'
    degrees = fields.Many2Many(
        'course.coupon-course.degree', 'coupon', 'degree',
        "Degree Programs",
        states={'invisible': Eval('scope') != 'degree'})

    @classmethod
    def __setup__(cls):
        super().__setup__()
        if 'degree' not in dict(cls.scope.selection):
            cls.scope.selection.append(('degree', "Degree Programs"))

    @classmethod
    def validate_fields(cls, coupons, field_names):
        super().validate_fields(coupons, field_names)
        if 'degrees' in field_names:
            for coupon in coupons:
                coupon.check_scope()

    @property
    def scope_ids(self):
        if self.scope == 'degree':
            return self.relation_ids('degrees')
        return super().scope_ids

    def covers(self, course, scope_ids=None):
        # A program scope names programs, never a course
        if self.scope == 'degree':
            return False
        return super().covers(course, scope_ids=scope_ids)

    def covers_degree(self, degree, scope_ids=None):
        "Whether the program is in the coupon's scope"
        if self.scope == 'general':
            return True
        if self.scope != 'degree':
            return False
        if scope_ids is None:
            scope_ids = self.scope_ids
        return degree.id in scope_ids

    def eligible_lines(self, lines):
        """The course lines of super() and the lines of programs in the
        scope, in the order of lines; raise CouponError when none"""
        scope_ids = self.scope_ids
        degree_lines = {
            l for l in lines
            if l.activity is None and getattr(l, 'is_degree', False)
            and self.covers_degree(l.product, scope_ids)}
        try:
            course_lines = set(super().eligible_lines(lines))
        except CouponError:
            if not degree_lines:
                raise
            course_lines = set()
        return [l for l in lines if l in course_lines or l in degree_lines]

    def is_course_coupon(self, stacking):
        # With course_and_order stacking a program coupon applies to its
        # line, as a course coupon does
        return super().is_course_coupon(stacking) or (
            stacking == 'course_and_order' and self.scope == 'degree')


class CouponDegree(RPCInputMixin, ModelSQL):
    "Coupon - Degree Program"
    __name__ = 'course.coupon-course.degree'
    coupon = fields.Many2One(
        'course.coupon', "Coupon", required=True, ondelete='CASCADE')
    degree = fields.Many2One(
        'course.degree', "Degree Program", required=True,
        ondelete='CASCADE')


"Enrollments know the order (line) that gave them"
from trytond.model import fields
from trytond.pool import PoolMeta


class Enrollment(metaclass=PoolMeta):
    __name__ = 'course.enrollment'
    order_line = fields.Many2One(
        'course.order.line', "Order Line", readonly=True,
        ondelete='RESTRICT')
    order = fields.Many2One(
        'course.order', "Order", readonly=True, ondelete='RESTRICT')

"A student's orders"
from trytond.model import fields
from trytond.pool import Pool, PoolMeta


class Party(metaclass=PoolMeta):
    __name__ = 'party.party'
    course_orders = fields.One2Many(
        'course.order', 'party', "Orders", readonly=True)

    @classmethod
    def _student_queries(cls, company):
        "Who ordered is a student too, paid or not"
        Order = Pool().get('course.order')
        order = Order.__table__()
        where = order.company == company if company else None
        return super()._student_queries(company) + [
            order.select(order.party, where=where)]

    @classmethod
    def copy(cls, parties, default=None):
        default = default.copy() if default is not None else {}
        default.setdefault('course_orders', None)
        return super().copy(parties, default=default)

from trytond.model import fields
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval, Id

DEFAULT_ORDER_TIMEOUT = 900


class Configuration(metaclass=PoolMeta):
    __name__ = 'course.configuration'
    order_timeout = fields.Integer(
        "Order Timeout", required=True,
        domain=[('order_timeout', '>', 0)],
        help="Seconds a student has to pay an order before it expires.")
    order_sequence = fields.Many2One(
        'ir.sequence', "Order Sequence", required=True,
        domain=[
            ('sequence_type', '=',
                Id('course_order', 'sequence_type_order')),
            ('company', 'in', [Eval('context', {}).get('company', -1), None]),
            ],
        help="Numbers the orders; its prefix ${year}${month}${day} starts "
        "every number with the local date.")
    discounts_combinable = fields.Boolean(
        "Combine Discount Kinds",
        help="Allow a coupon and credit points on the same order.")

    @classmethod
    def default_order_timeout(cls):
        return DEFAULT_ORDER_TIMEOUT

    @classmethod
    def default_order_sequence(cls):
        ModelData = Pool().get('ir.model.data')
        try:
            return ModelData.get_id('course_order', 'sequence_order')
        except KeyError:
            return None

    @classmethod
    def default_discounts_combinable(cls):
        return False

    def get_order_timeout(self):
        return self.order_timeout or DEFAULT_ORDER_TIMEOUT

    def get_order_number(self):
        return self.order_sequence.get()

from trytond.model import ModelSQL, fields
from trytond.modules.company.model import (
    CompanyMultiValueMixin, CompanyValueMixin)
from trytond.modules.course.rpc import RPCInputMixin
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval, Id

DEFAULT_ORDER_TIMEOUT = 900
DEFAULT_EXPIRY_QUERY_ATTEMPTS = 5


def order_sequence_field(company_domain):
    return fields.Many2One(
        'ir.sequence', "Order Sequence", required=True,
        domain=[
            ('sequence_type', '=',
                Id('course_order', 'sequence_type_order')),
            ('company', 'in', [company_domain, None]),
            ],
        help="Numbers the orders; its prefix ${year}${month}${day} starts "
        "every number with the local date.")


class Configuration(CompanyMultiValueMixin, metaclass=PoolMeta):
    __name__ = 'course.configuration'
    order_timeout = fields.Integer(
        "Order Timeout", required=True,
        domain=[('order_timeout', '>', 0)],
        help="Seconds a student has to pay an order before it expires.")
    # One per company (the value without company serves the others)
    order_sequence = fields.MultiValue(order_sequence_field(
            Eval('context', {}).get('company', -1)))
    discounts_combinable = fields.Boolean(
        "Combine Discount Kinds",
        help="Allow a coupon and credit points on the same order.")
    expiry_query_attempts = fields.Integer(
        "Payment Query Attempts", required=True,
        domain=[('expiry_query_attempts', '>', 0)],
        help="How many runs of the expiry job may fail to learn from the "
        "payment method whether an overdue order is paid before the order "
        "is shown to staff as Payment Unknown (it is never expired while "
        "unknown).")

    @classmethod
    def default_order_timeout(cls):
        return DEFAULT_ORDER_TIMEOUT

    @classmethod
    def multivalue_model(cls, field):
        if field == 'order_sequence':
            return Pool().get('course.configuration.order_sequence')
        return super().multivalue_model(field)

    @classmethod
    def default_order_sequence(cls, **pattern):
        return cls.multivalue_model(
            'order_sequence').default_order_sequence()

    @classmethod
    def default_discounts_combinable(cls):
        return False

    @classmethod
    def default_expiry_query_attempts(cls):
        return DEFAULT_EXPIRY_QUERY_ATTEMPTS

    def get_order_timeout(self):
        return self.order_timeout or DEFAULT_ORDER_TIMEOUT

    def get_expiry_query_attempts(self):
        return self.expiry_query_attempts or DEFAULT_EXPIRY_QUERY_ATTEMPTS

    def get_order_number(self, company):
        "The next order number of company"
        sequence = self.get_multivalue('order_sequence', company=company.id)
        return sequence.get()


class ConfigurationOrderSequence(
        RPCInputMixin, CompanyValueMixin, ModelSQL):
    "Course Configuration Order Sequence"
    __name__ = 'course.configuration.order_sequence'
    order_sequence = order_sequence_field(Eval('company', -1))

    @classmethod
    def default_order_sequence(cls):
        ModelData = Pool().get('ir.model.data')
        try:
            return ModelData.get_id('course_order', 'sequence_order')
        except KeyError:
            return None

"""Demo data of the module course_payment: an open refund request, so
staff find one to approve or reject under Courses > Payments > Refund
Requests.

wang.fang asks for the refund of her paid order of "深度学习与 PyTorch"
(made by course_order's demo data), entered by staff through
``request_refund`` (the RPC the storefront will call).  Idempotent: made
only when that order is paid and has no request yet.
"""
from proteus import Model
from proteus.config import get_config

from .course import get_students

REQUEST = ('wang.fang@example.com', "深度学习与 PyTorch",
    "课程内容与预期不符，申请退款 (demo refund request)")


def load():
    config = get_config()
    email, course_name, reason = REQUEST
    party = get_students({email})[email]
    Order = Model.get('course.order')
    Request = Model.get('course.payment.refund.request')
    orders = Order.find([
            ('party', '=', party.id),
            ('lines.course.name', '=', course_name),
            ('state', '=', 'paid'),
            ], limit=1)
    if not orders or Request.find([('order', '=', orders[0].id)], limit=1):
        return
    Request.request_refund(orders[0].id, reason, config.context)

"""The routes Alipay and the student's browser call, served by trytond:

    POST /<database>/alipay/notify   Alipay's asynchronous notify
    GET  /<database>/alipay/return   the browser back from the page pay

Nothing a client sends gives a server error: what does not verify is
answered `failure` (notify) or 400 (return) and changes nothing."""
import logging
from functools import wraps
from http import HTTPStatus

from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from trytond import backend
from trytond.exceptions import UserError, UserWarning
from trytond.modules.course_payment.notify import with_notify_transaction
from trytond.protocols.wrappers import with_pool, with_transaction
from trytond.wsgi import app

logger = logging.getLogger(__name__)


def text(body, status=HTTPStatus.OK):
    return Response(body, status=status, content_type='text/plain')


def guard(failure):
    """Answer failure() for what the transaction could not do: a lock still
    held after the retries, or a refusal of the workflow (rolled back)"""
    def decorator(func):
        @wraps(func)
        def wrapper(request, pool, *args, **kwargs):
            try:
                return func(request, pool, *args, **kwargs)
            except backend.DatabaseOperationalError:
                logger.warning("alipay %s: database busy", request.path,
                    exc_info=True)
                return failure(HTTPStatus.SERVICE_UNAVAILABLE)
            except (UserError, UserWarning) as error:
                logger.warning("alipay %s refused: %s", request.path, error)
                return failure(HTTPStatus.OK)
        return wrapper
    return decorator


def params_of(values):
    "A flat {name: text} of the request's form or query"
    return {k: v for k, v in values.items(multi=False)
        if isinstance(k, str) and isinstance(v, str)}


def payment_model(pool):
    "course.payment with Alipay in this database, or None"
    try:
        Payment = pool.get('course.payment')
    except KeyError:
        return None
    return Payment if hasattr(Payment, 'alipay_notify') else None


def notify_order(request, pool):
    "The verified order of a notify: its locks are taken first"
    Payment = payment_model(pool)
    if Payment is None:
        return None
    return Payment.alipay_notify_order(params_of(request.form))


@app.route('/<database_name>/alipay/notify', methods=['POST'])
@with_pool
@guard(lambda status: text('failure', status))
@with_notify_transaction(notify_order, context={'_skip_warnings': True})
def notify(request, pool):
    Payment = payment_model(pool)
    if Payment is None:
        return text('failure', HTTPStatus.NOT_FOUND)
    ok = Payment.alipay_notify(params_of(request.form))
    return text('success' if ok else 'failure')


@app.route('/<database_name>/alipay/return', methods=['GET'])
@with_pool
@guard(lambda status: text('invalid', HTTPStatus.BAD_REQUEST))
@with_transaction(readonly=False, context={'_skip_warnings': True})
def return_(request, pool):
    Payment = payment_model(pool)
    if Payment is None:
        return text('not found', HTTPStatus.NOT_FOUND)
    url = Payment.alipay_return(params_of(request.args))
    if url is None:
        return text('invalid', HTTPStatus.BAD_REQUEST)
    return redirect(url, code=HTTPStatus.FOUND)

"""The route WeChat Pay calls, served by trytond:

    POST /<database>/wechat/notify   payment and refund notifications

Answers: 200 {"code": "SUCCESS"} when handled (replays included); 4xx
{"code": "FAIL", "message": …} when refused (WeChat Pay sends it again);
503 when the database is busy.  Nothing a client sends gives a server
error: what does not verify changes nothing."""
import json
import logging
from functools import wraps
from http import HTTPStatus

from werkzeug.wrappers import Response

from trytond import backend
from trytond.exceptions import UserError, UserWarning
from trytond.modules.course_payment.notify import with_notify_transaction
from trytond.protocols.wrappers import with_pool
from trytond.wsgi import app

from .wechat import MAX_NOTIFY, NotifyRefused

logger = logging.getLogger(__name__)


def answer(status, message=None):
    "The JSON answer WeChat Pay reads"
    if status == HTTPStatus.OK:
        body = {'code': 'SUCCESS'}
    else:
        body = {'code': 'FAIL', 'message': message or 'FAIL'}
    return Response(json.dumps(body), status=status,
        content_type='application/json')


def guard(func):
    """Answer FAIL for what was refused or what the transaction could not
    do: a lock still held after the retries (503), a refusal of the
    workflow (rolled back, 400), an unexpected error (500)"""
    @wraps(func)
    def wrapper(request, pool, *args, **kwargs):
        try:
            return func(request, pool, *args, **kwargs)
        except NotifyRefused as refused:
            logger.warning("wechat notify refused: %s", refused.reason)
            return answer(refused.status, refused.reason)
        except backend.DatabaseOperationalError:
            logger.warning("wechat notify: database busy", exc_info=True)
            return answer(HTTPStatus.SERVICE_UNAVAILABLE, 'busy')
        except (UserError, UserWarning) as error:
            logger.warning("wechat notify refused: %s", error)
            return answer(HTTPStatus.BAD_REQUEST, 'refused')
    return wrapper


def payment_model(pool):
    "course.payment with WeChat Pay in this database, or None"
    try:
        Payment = pool.get('course.payment')
    except KeyError:
        return None
    return Payment if hasattr(Payment, 'wechat_notify') else None


def notify_order(request, pool):
    "The verified order of a payment notification: its locks are taken first"
    Payment = payment_model(pool)
    if Payment is None or (request.content_length or 0) > MAX_NOTIFY:
        return None
    return Payment.wechat_notify_order(
        request.headers, request.get_data(cache=True))


@app.route('/<database_name>/wechat/notify', methods=['POST'])
@with_pool
@guard
@with_notify_transaction(notify_order, context={'_skip_warnings': True})
def notify(request, pool):
    Payment = payment_model(pool)
    if Payment is None:
        return answer(HTTPStatus.NOT_FOUND, 'not found')
    if (request.content_length or 0) > MAX_NOTIFY:
        raise NotifyRefused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, 'too large')
    # The raw body: the signature is over the bytes WeChat Pay sent
    body = request.get_data(cache=True)
    refused = Payment.wechat_notify(request.headers, body)
    if refused is not None:
        logger.warning("wechat notify refused: %s", refused.reason)
        return answer(refused.status, refused.reason)
    return answer(HTTPStatus.OK)

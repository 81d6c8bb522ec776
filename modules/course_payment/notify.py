"""The transaction of a provider's notify route (Alipay, WeChat Pay).

A confirmation (course.payment.succeed) locks the order, then its student.
trytond's Model.lock restarts the whole call for a lock not taken when the
transaction started, so a notify handled by trytond's `with_transaction`
ran twice.  `with_notify_transaction` finds the order first, in a short
read-only transaction that verifies the message as the handler will, and
starts the handler's transaction with those rows locked: one attempt.

The lookup is a hint, never a right: the handler verifies everything again
in its own transaction, and a message the lookup cannot verify starts the
handler without locks (it refuses it, or restarts as before)."""
import logging
import time
from functools import wraps

from trytond import backend
from trytond.config import config
from trytond.pool import Pool
from trytond.transaction import Transaction, TransactionError

logger = logging.getLogger(__name__)


def order_locks(order):
    "The `_lock_records` of what succeed locks for order: it and its student"
    pool = Pool()
    Order = pool.get('course.order')
    Party = pool.get('party.party')
    return {Order._table: [order.id], Party._table: [order.party.id]}


def lookup_locks(request, pool, find_order, context):
    """{table: ids} to lock for the request: find_order(request, pool)
    returns its verified order or None, in a read-only transaction"""
    with Transaction().start(
            pool.database_name, 0, readonly=True, context=context):
        try:
            order = find_order(request, pool)
        except backend.DatabaseOperationalError:
            raise
        except Exception:
            # The handler says what is wrong, in its transaction
            logger.debug("notify lookup failed", exc_info=True)
            return {}
        return order_locks(order) if order is not None else {}


def with_notify_transaction(find_order, context=None):
    """trytond's with_transaction (read-write, user 0, retries, queued
    tasks run after the commit) with the locks of find_order's order taken
    when the transaction starts"""
    from trytond.worker import run_task

    def decorator(func):
        @wraps(func)
        def wrapper(request, pool, *args, **kwargs):
            context_ = dict(context or {}, _request=request.context)
            locks = lookup_locks(request, pool, find_order, context_)
            extras = {'_lock_records': locks} if locks else {}
            retry = config.getint('database', 'retry')
            count = 0
            while True:
                if count:
                    time.sleep(0.02 * count)
                with Transaction().start(
                        pool.database_name, 0, readonly=False,
                        context=context_, **extras) as transaction:
                    try:
                        result = func(request, pool, *args, **kwargs)
                    except TransactionError as error:
                        transaction.rollback()
                        transaction.tasks.clear()
                        error.fix(extras)
                        continue
                    except backend.DatabaseOperationalError:
                        if count < retry:
                            transaction.rollback()
                            transaction.tasks.clear()
                            count += 1
                            continue
                        raise
                    transaction.commit()
                while transaction.tasks:
                    run_task(pool, transaction.tasks.pop())
                return result
        return wrapper
    return decorator

"""JSON-RPC 2.0 over one POST: parse, check, dispatch each call of a batch
in a transaction of its own, answer results and errors.

Nothing a client sends gives an HTTP 500 or a traceback: what is not
understood is a JSON-RPC error; an unexpected exception is logged and
answered -32603 without details."""
import json
import logging
import time
from contextvars import ContextVar
from decimal import Decimal

import pydantic

from trytond import backend
from trytond.config import config
from trytond.exceptions import UserError, UserWarning
from trytond.i18n import gettext
from trytond.transaction import Transaction, TransactionError

from . import errors
from .api import METHODS, Call
from .errors import StorefrontError
from .prelocks import known_order, known_party, remember_party
from .slugs import slug_of

logger = logging.getLogger(__name__)

# The messages gettext produced during the current call, newest last, as
# (module.message_id, text): the slug of a refusal is found from its text
MESSAGES = ContextVar('course_storefront_messages', default=None)

LANGUAGES = ('en', 'zh_CN')
# The answer when the database cannot be reached (stopped, restarting):
# its messages cannot be read then, so the texts are here
UNAVAILABLE = {
    'en': "The service is unavailable for a moment; try again shortly.",
    'zh_CN': "服务暂时不可用，请稍后再试。",
    }
MAX_BATCH = 50
MAX_ID_LENGTH = 100


def negotiate_language(header):
    "The language of Accept-Language among ours (en by default)"
    best, best_q = 'en', -1.0
    for position, part in enumerate((header or '').split(',')):
        tag, _, params = part.strip().partition(';')
        tag = tag.strip().replace('_', '-').lower()
        q = 1.0
        if params.strip().startswith('q='):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        if tag.startswith('zh'):
            language = 'zh_CN'
        elif tag.startswith('en') or tag == '*':
            language = 'en'
        else:
            continue
        if q > best_q:
            best, best_q = language, q
    return best


def handle(request, pool):
    """Answer the body of a storefront POST: (JSON text or None, status).
    None: only notifications, nothing to answer."""
    language = negotiate_language(request.headers.get('Accept-Language'))
    dispatcher = Dispatcher(request, pool, language)
    try:
        payload = json.loads(
            request.get_data(cache=False), parse_float=Decimal)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return dispatcher.dump(dispatcher.transport_error(
                errors.PARSE_ERROR, 'parse_error', None))
    if isinstance(payload, list):
        if not payload or len(payload) > MAX_BATCH:
            return dispatcher.dump(dispatcher.transport_error(
                    errors.INVALID_REQUEST, 'invalid_request', None,
                    maximum=MAX_BATCH))
        answers = [dispatcher.call(c) for c in payload]
        answers = [a for a in answers if a is not None]
        return dispatcher.dump(answers or None)
    return dispatcher.dump(dispatcher.call(payload))


def valid_id(value):
    if value is None or isinstance(value, str):
        return value is None or len(value) <= MAX_ID_LENGTH
    return isinstance(value, int) and not isinstance(value, bool)


class Dispatcher:

    def __init__(self, request, pool, language):
        self.request = request
        self.pool = pool
        self.language = language
        self.token = bearer_token(request)

    def dump(self, answer):
        if answer is None:
            return None
        text = json.dumps(answer, ensure_ascii=False, default=str)
        try:
            text.encode('utf-8')
        except UnicodeEncodeError:
            # A lone surrogate the client sent ("\\ud800" as method or id)
            # is echoed escaped: the raw one can not be encoded
            text = json.dumps(answer, default=str)
        return text

    def message(self, name, **variables):
        "A storefront message in the request's language (own transaction)"
        with Transaction().start(
                self.pool.database_name, 0, readonly=True,
                context={'language': self.language}):
            return gettext(f'course_storefront.msg_{name}', **variables)

    def transport_error(self, code, name, id_, **data):
        error = StorefrontError(
            code, name, self.message(name, **data), **data)
        return answer_error(id_, error)

    def call(self, payload):
        "The answer to one call, None for a notification"
        if (not isinstance(payload, dict) or payload.get('jsonrpc') != '2.0'
                or not isinstance(payload.get('method'), str)
                or not valid_id(payload.get('id'))
                or payload.keys() - {'jsonrpc', 'method', 'params', 'id'}):
            id_ = payload.get('id') if isinstance(payload, dict) else None
            return self.transport_error(
                errors.INVALID_REQUEST, 'invalid_request',
                id_ if valid_id(id_) else None, maximum=MAX_BATCH)
        notification = 'id' not in payload
        id_ = payload.get('id')
        try:
            result = self.run(payload['method'], payload.get('params', {}))
        except StorefrontError as error:
            return None if notification else answer_error(id_, error)
        except Exception:
            logger.exception("storefront %s failed", payload['method'])
            try:
                error = StorefrontError(
                    errors.INTERNAL_ERROR, 'internal',
                    self.message('internal'))
            except backend.DatabaseOperationalError:
                error = self.unavailable()
            return None if notification else answer_error(id_, error)
        if notification:
            return None
        return {'jsonrpc': '2.0', 'result': result, 'id': id_}

    def unavailable(self):
        "The error of a call when the database cannot be reached"
        return StorefrontError(
            errors.INTERNAL_ERROR, 'unavailable',
            UNAVAILABLE.get(self.language, UNAVAILABLE['en']))

    def busy(self, in_transaction=True):
        """The error of a call that could not have its locks (its message
        read in the call's transaction or in one of its own)"""
        try:
            text = (gettext('course_storefront.msg_busy') if in_transaction
                else self.message('busy'))
        except backend.DatabaseOperationalError:
            # The connection was lost, not a lock
            return self.unavailable()
        return StorefrontError(errors.BUSINESS_RULE, 'busy', text)

    def run(self, name, raw):
        method = METHODS.get(name)
        if method is None or not method.available(self.pool):
            raise StorefrontError(
                errors.METHOD_NOT_FOUND, 'method_not_found',
                self.message('method_not_found', method=name[:100]))
        params = self.validate(method, raw)
        return self.in_transaction(method, params)

    def validate(self, method, raw):
        if not isinstance(raw, dict):
            raise StorefrontError(
                errors.INVALID_PARAMS, 'params.by_name',
                self.message('params_by_name'))
        try:
            return method.params.model_validate(raw)
        except pydantic.ValidationError as error:
            details = [{
                    'field': '.'.join(map(str, e['loc'])),
                    'type': e['type'],
                    } for e in error.errors(include_url=False)][:20]
            raise StorefrontError(
                errors.INVALID_PARAMS, 'params.invalid',
                self.message('params_invalid', fields=', '.join(
                        d['field'] or '-' for d in details)),
                errors=details)

    def context(self):
        return {
            'language': self.language,
            '_request': self.request.context,
            '_skip_warnings': True,
            'course_storefront': True,
            }

    def in_transaction(self, method, params):
        """Run the method in a transaction of its own, as trytond's
        dispatcher does: a lock to take first restarts it, a database
        error (lock not had, serialization) is retried, then `busy`."""
        retry = config.getint('database', 'retry')
        count, extras = 0, self.prelocks(method, params)
        while True:
            if count:
                time.sleep(0.02 * count)
            call = Call(
                request=self.request, database=self.pool.database_name,
                language=self.language, token=self.token)
            messages = MESSAGES.set([])
            try:
                try:
                    transaction = Transaction().start(
                        self.pool.database_name, 0,
                        readonly=method.readonly, context=self.context(),
                        **extras)
                except backend.DatabaseOperationalError as error:
                    if lock_not_available(error):
                        # The locks to take first are held by others
                        if count < retry and not method.readonly:
                            count += 1
                            continue
                        raise self.busy(in_transaction=False) from error
                    # No connection: the database is down or restarting
                    logger.warning(
                        "storefront: database unreachable: %s", error)
                    raise self.unavailable() from error
                with transaction:
                    try:
                        result = self.execute(method, call, params)
                        # In the try: a serialization failure at commit is
                        # retried like one before it
                        transaction.commit()
                    except TransactionError as error:
                        transaction.rollback()
                        transaction.tasks.clear()
                        error.fix(extras)
                        continue
                    except backend.DatabaseOperationalError:
                        transaction.rollback()
                        transaction.tasks.clear()
                        if count < retry and not method.readonly:
                            count += 1
                            continue
                        raise self.busy()
                    except (UserError, UserWarning) as error:
                        transaction.rollback()
                        raise self.refusal(error) from error
                    for func in call.after_response:
                        func()
                    return result
            finally:
                MESSAGES.reset(messages)

    def prelocks(self, method, params):
        """The locks to take when the transaction starts: the party of the
        token for a method that locks it, the student's order of the number
        for a method that locks that.  A token or an order this process
        does not know yet, or a party that changed, costs the restart it
        would anyway; a wrong hint only locks rows for the call."""
        database = self.pool.database_name
        party = known_party(database, self.token)
        if party is None:
            return {}
        locks = {}
        if method.locks_party:
            locks[self.pool.get('party.party')._table] = [party]
        if method.locks_order:
            order = known_order(database, party, params.number)
            if order is not None:
                locks[self.pool.get('course.order')._table] = [order]
        return {'_lock_records': locks} if locks else {}

    def execute(self, method, call, params):
        from .session import authenticate, storefront_company
        company = storefront_company()
        with Transaction().set_context(company=company.id):
            # Made in the call's context: the records the call reads share
            # its cache (a company made outside would read it again)
            call.company = type(company)(company.id)
            if call.token or method.auth:
                authenticate(call, required=method.auth)
                if call.party is not None:
                    remember_party(
                        self.pool.database_name, call.token, call.party.id)
            return method.func(call, params)

    def refusal(self, error):
        "The JSON-RPC error of a refusal by the business modules"
        message = error.message
        message_id = None
        for id_, text in reversed(MESSAGES.get() or []):
            if text == message or text in message:
                message_id = id_
                break
        code, type_ = slug_of(message_id, error)
        return StorefrontError(code, type_, message)


def lock_not_available(error):
    "Whether a database error is a NOWAIT lock held by another transaction"
    # PostgreSQL's lock_not_available; SQLite does not lock rows or tables
    return getattr(error, 'sqlstate', None) == '55P03'


def answer_error(id_, error):
    return {'jsonrpc': '2.0', 'error': error.as_json(), 'id': id_}


def bearer_token(request):
    header = request.headers.get('Authorization') or ''
    scheme, _, token = header.partition(' ')
    if scheme.lower() != 'bearer':
        return None
    token = token.strip()
    # NUL can not be searched in PostgreSQL: no such token
    if not 0 < len(token) <= 200 or '\x00' in token:
        return None
    return token


def record_message(message_id, text):
    "Called by ir.message's gettext: remember the message of the call"
    messages = MESSAGES.get()
    if messages is not None:
        messages.append((message_id, text))
        del messages[:-50]

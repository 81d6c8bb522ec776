"Helpers shared by the course modules: money, time, locks, raw updates"
import datetime as dt
import logging
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from contextlib import contextmanager
from functools import wraps

from trytond.cache import Cache
from trytond.transaction import TransactionError

logger = logging.getLogger(__name__)

# The spec rounds money half up to the currency's digits (CNY: 0.01).
ROUNDING = ROUND_HALF_UP


def round_amount(currency, amount):
    "Return amount quantized to the currency, rounding half up"
    return currency.round(Decimal(amount), rounding=ROUNDING)


def allocate(weights, total, currency):
    """Split total among weights in proportion to them, in currency units.

    Largest remainder method: each share is the exact proportional part
    rounded down to the currency, then the units left over go one by one to
    the shares that lost the most by rounding (the later line on a tie).  So
    the shares add up to total exactly and, when total <= sum(weights) with
    weights in currency units, no share exceeds its weight.
    """
    weights = [Decimal(w) for w in weights]
    total = round_amount(currency, total)
    base = sum(weights, Decimal(0))
    if not weights or not total:
        return [Decimal(0) * total for _ in weights]
    if not base:
        return [Decimal(0)] * (len(weights) - 1) + [total]
    unit = currency.rounding
    exact = [total * w / base for w in weights]
    shares = [currency.round(e, rounding=ROUND_DOWN) for e in exact]
    left = int(((total - sum(shares)) / unit).to_integral_value())
    by_loss = sorted(
        range(len(weights)), key=lambda i: (exact[i] - shares[i], i),
        reverse=True)
    for i in by_loss[:left]:
        shares[i] += unit
    return shares


class _AfterCommit:
    """A data manager running callbacks once the transaction has committed.

    Nothing runs on rollback (unlike Transaction().atexit), so side effects
    outside the database (Redis, notifications) follow the data.
    """

    def __init__(self):
        self.callbacks = []

    def __eq__(self, other):
        return type(other) is _AfterCommit

    def __hash__(self):
        return hash(_AfterCommit)

    def abort(self, trans):
        self.callbacks.clear()

    def tpc_begin(self, trans):
        pass

    def commit(self, trans):
        pass

    def tpc_vote(self, trans):
        pass

    def tpc_finish(self, trans):
        callbacks, self.callbacks = self.callbacks, []
        for func, args, kwargs in callbacks:
            try:
                func(*args, **kwargs)
            except Exception:
                # The data is committed: a failing side effect is logged,
                # never turned into an error of the committed call.
                logger.exception("after-commit callback %r failed", func)

    def tpc_abort(self, trans):
        self.callbacks.clear()


class _WrittenRows:
    """A data manager holding the rows lock_rows wrote in the database
    transaction, {table: ids}: forgotten at its commit or rollback (the
    next database transaction must write them again)"""

    def __init__(self):
        self.tables = {}

    def __eq__(self, other):
        return type(other) is _WrittenRows

    def __hash__(self):
        return hash(_WrittenRows)

    def forget(self, trans=None):
        self.tables.clear()

    abort = tpc_finish = tpc_abort = forget

    def tpc_begin(self, trans):
        pass

    def commit(self, trans):
        pass

    def tpc_vote(self, trans):
        pass


def after_commit(func, *args, **kwargs):
    "Run func(*args, **kwargs) only once the current transaction commits"
    from trytond.transaction import Transaction
    manager = Transaction().join(_AfterCommit())
    manager.callbacks.append((func, args, kwargs))


def now():
    """The current UTC datetime to the second, naive as Tryton stores it.

    To the second: PostgreSQL stores DateTime fields to the second
    (rounding), so a validity starting "now" with microseconds could start
    in the future once stored.
    """
    return dt.datetime.now(dt.timezone.utc).replace(
        tzinfo=None, microsecond=0)


def in_max():
    "How many ids to put in one query on the current backend"
    from trytond import backend
    return backend.MAX_QUERY_PARAMS


def clear_cache(Model, ids):
    "Forget the cached values of Model's ids: a raw UPDATE changed them"
    from trytond.transaction import Transaction
    transaction = Transaction()
    transaction.counter += 1
    for cache in transaction.cache.values():
        if Model.__name__ in cache:
            for id_ in ids:
                cache[Model.__name__].pop(id_, None)


def move_state(Model, ids, where, values):
    """Set values on the rows of ids that still match where(table), by a
    conditional UPDATE; return the ids it changed.

    The row count decides races: of two transactions moving the same row,
    the second one waits for the first and then no longer matches.
    write_date and write_uid are set too; the record caches are cleared.
    """
    from trytond.tools import grouped_slice, reduce_ids
    moved = []
    for sub_ids in grouped_slice(sorted({int(i) for i in ids}), in_max()):
        sub_ids = list(sub_ids)  # where(table) may be built twice
        moved += _update_returning(
            Model, lambda t: reduce_ids(t.id, sub_ids) & where(t), values)
    clear_cache(Model, moved)
    return moved


def move_where(Model, where, values):
    """Set values on the rows matching where(table), as move_state does,
    without knowing their ids first; return the ids it changed"""
    moved = _update_returning(Model, where, values)
    clear_cache(Model, moved)
    return moved


def _update_returning(Model, where, values):
    "UPDATE the rows matching where(table) with values; return their ids"
    from trytond.tools import reduce_ids
    from trytond.transaction import Transaction
    transaction = Transaction()
    cursor = transaction.connection.cursor()
    table = Model.__table__()
    columns = [getattr(table, k) for k in values] + [
        table.write_date, table.write_uid]
    row = list(values.values()) + [now(), transaction.user]
    if transaction.database.has_returning():
        cursor.execute(*table.update(
                columns, row, where=where(table), returning=[table.id]))
        return [i for i, in cursor]
    # SQLite: one writer at a time, the rows cannot move between
    cursor.execute(*table.select(table.id, where=where(table)))
    found = [i for i, in cursor]
    if found:
        cursor.execute(*table.update(
                columns, row,
                where=reduce_ids(table.id, found) & where(table)))
    return found


def insert_rows(Model, rows, stamp=True):
    """Insert rows (dicts of the same column names, checked by the caller)
    into Model's table by multi-row INSERTs; return the new ids in order.

    For server code that creates many records the ORM would only check
    again (one validation and one read per record): the caller checks them
    set-based.  stamp adds create_uid and create_date.
    """
    from sql import Column

    from trytond import backend
    from trytond.transaction import Transaction
    if not rows:
        return []
    transaction = Transaction()
    database = transaction.database
    cursor = transaction.connection.cursor()
    table = Model.__table__()
    names = [n for n in rows[0] if n != 'id']
    values = [[r[n] for n in names] for r in rows]
    if stamp:
        names += ['create_uid', 'create_date']
        for row in values:
            row += [transaction.user, now()]
    if backend.name == 'postgresql':
        return _insert_returning(cursor, table, names, values)
    # SQLite: no sequences, one row at a time
    columns = [Column(table, n) for n in names]
    ids = []
    for row in values:
        cursor.execute(*table.insert(columns, [row]))
        ids.append(database.lastid(cursor))
    return ids


def _insert_returning(cursor, table, names, values):
    """Insert values by multi-row INSERTs that take their ids from the
    table's sequence and return them: one statement per chunk, not a
    nextval query first.  The sequence numbers the rows of a VALUES list in
    order, so the ids sorted are those of the rows in order whatever order
    RETURNING lists them in."""
    from sql import Column

    from trytond import backend
    from trytond.tools import grouped_slice
    columns = [Column(table, n) for n in names]
    size = backend.MAX_QUERY_PARAMS // len(columns)
    ids = []
    for chunk in grouped_slice(values, size):
        cursor.execute(*table.insert(
                columns, list(chunk), returning=[table.id]))
        ids.extend(sorted(i for i, in cursor))
    return ids


def save_checked(Model, records):
    """Save new records of Model (unsaved instances) as ModelStorage.save
    does, without the checks of each field create() makes after the INSERT
    (required, domains, digits, selections: they read every record back).

    For server code that built the values from records it checked already
    (the checkout's lines and discounts, the enrollments of a paid order).
    The values go through preprocess_values and the model's defaults,
    Many2Many values add the rows of their relation; the model's own
    validate and validate_fields (its rules; a violation of its SQL
    constraints gives the constraint's message, see constraint_errors),
    check_modification and on_modification are called and each record gets
    its id.  A model with
    create triggers, or values only create() knows how to store
    (translations, other relation commands), is saved by save().
    """
    from trytond.model.modelstorage import local_cache
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    records = list(records)
    if not records:
        return
    pool = Pool()
    Trigger = pool.get('ir.trigger')
    rows = _checked_rows(Model, records)
    if rows is None or Trigger.get_triggers(Model.__name__, 'create'):
        Model.save(records)
        return
    transaction = Transaction()
    transaction.counter += 1
    # As create() does: the estimated count, once known, counts them
    count = Model._count_cache.get(Model.__name__)
    if count is not None:
        Model._count_cache.set(Model.__name__, count + len(records))
    with constraint_errors(Model):
        ids = insert_rows(Model, [row for row, _ in rows])
    for fname in rows[0][1]:
        field = Model._fields[fname]
        insert_rows(pool.get(field.relation_name), [
                {field.origin: id_, field.target: target}
                for (_, relations), id_ in zip(rows, ids)
                for target in relations[fname]])
    new_ids, new_cache = [], local_cache(Model, transaction)
    for record, id_ in zip(records, ids):
        # As save() does: the records read their values from the database
        record._values = record._init_values = None
        record._ids.remove(record.id)
        record._id = id_
        if not record._ids:
            record._ids = new_ids
            record._local_cache = new_cache
        record._ids.append(id_)
    transaction.create_records[Model.__name__].extend(ids)
    saved = Model.browse(ids)
    Model.validate(saved)
    Model.validate_fields(saved, set(Model._fields))
    Model.check_modification('create', saved, external=False)
    Model.on_modification('create', saved)


def _checked_rows(Model, records):
    """[(column values, {many2many field: target ids})] of new records for
    save_checked (the same columns and relations in each), or None when
    only save() can store them"""
    from trytond.model import fields
    stored = {n: f for n, f in Model._fields.items()
        if not isinstance(f, fields.Function)
        and n not in {'id', 'create_uid', 'create_date', 'write_uid',
            'write_date'}}
    relation_types = {'one2many', 'many2many'}
    result = []
    for record in records:
        if record.id is not None and record.id >= 0:
            return None
        values = Model.preprocess_values('create', record._save_values())
        row, relations = {}, {}
        for fname, value in values.items():
            field = stored.get(fname)
            if field is None or getattr(field, 'translate', False):
                return None
            if field._type == 'many2many':
                relations[fname] = targets = []
                for action, *args in value or []:
                    if action != 'add':
                        return None
                    targets.extend(args[0])
            elif field._type == 'one2many' or hasattr(field, 'set'):
                if value:
                    return None
            else:
                row[fname] = value
        result.append((row, relations))
    names = {n for n, f in stored.items()
        if f._type not in relation_types and not hasattr(f, 'set')}
    missing = [n for n in names if any(n not in r for r, _ in result)]
    defaults = Model._clean_defaults(
        Model.default_get(missing, with_rec_name=False)) if missing else {}
    used = set().union(*(r.keys() for r, _ in result)) | defaults.keys()
    relation_names = set().union(*(rel.keys() for _, rel in result))
    for row, relations in result:
        for name in used - row.keys():
            row[name] = defaults.get(name)
        for name in row:
            row[name] = stored[name].sql_format(row[name])
        for name in relation_names - relations.keys():
            relations[name] = []
    return result


def write_checked(Model, records, values):
    """Write values on records as ModelStorage.write does, by one UPDATE
    per slice, without the checks of each field write() makes by reading
    the records before and after (domain rules, required, domains).

    For server code writing values it decided (a workflow's state and
    dates).  preprocess_values, check_modification, on_write, the model's
    validate and validate_fields and on_modification are called and the
    caches cleared.  A user's call (access checked), records whose client
    timestamp is still to check (the context's _timestamp), a model with
    write triggers or history, or a value only write() knows how to store
    (translated, function or relation fields) is written by write().  A
    violation of a SQL constraint gives the constraint's message
    (constraint_errors).
    """
    from sql import Literal

    from trytond.pool import Pool
    from trytond.transaction import Transaction
    records = list(records)
    if not records:
        return
    transaction = Transaction()
    Trigger = Pool().get('ir.trigger')
    values = Model.preprocess_values('write', values)
    # A client's timestamp of a record is checked (and used up) by write()
    timestamped = transaction.timestamp and any(
        f'{Model.__name__},{r.id}' in transaction.timestamp for r in records)
    if (transaction.check_access or Model._history or timestamped
            or transaction.context.get('_log')
            or not _plain_columns(Model, values)
            or Trigger.get_triggers(Model.__name__, 'write')):
        Model.write(records, values)
        return
    Model.check_modification('write', records, values, external=False)
    on_write = Model.on_write(records, values)
    ids = [r.id for r in records]
    with constraint_errors(Model):
        move_state(Model, ids, lambda t: Literal(True), {
                n: Model._fields[n].sql_format(v) for n, v in values.items()})
    for record in records:
        record._local_cache.pop(record.id, None)
    saved = Model.browse(ids)
    Model.validate(saved)
    Model.validate_fields(saved, set(values))
    Model.on_modification('write', saved, set(values))
    for meth in on_write:
        meth()


def _plain_columns(Model, values):
    """values are of stored, untranslated, non-relational fields
    (write_checked can UPDATE them)"""
    from trytond.model import fields
    for name in values:
        field = Model._fields.get(name)
        if (field is None or isinstance(field, fields.Function)
                or hasattr(field, 'set') or getattr(field, 'translate', False)
                or field._type in {'one2many', 'many2many'}):
            return False
    return True


@contextmanager
def constraint_errors(Model):
    """Turn a violation of one of Model's SQL constraints by the raw
    statements inside into the constraint's message, as create() and
    write() do (PostgreSQL names the constraint, SQLite its columns)"""
    from sql import Column

    from trytond import backend
    from trytond.i18n import gettext
    from trytond.model.exceptions import SQLConstraintError
    from trytond.model.modelsql import Exclude, Unique
    from trytond.transaction import Transaction
    try:
        yield
    except backend.DatabaseIntegrityError as exception:
        text = str(exception)
        for name, constraint, error in Model._sql_constraints:
            name = backend.TableHandler.convert_name(f'{Model._table}_{name}')
            columns = getattr(constraint, 'columns', [])
            if name in text or (
                    isinstance(constraint, (Unique, Exclude)) and columns
                    and all(isinstance(c, Column) and c.name in text
                        for c in columns)):
                # The transaction failed: the message is read in another
                with Transaction().new_transaction():
                    raise SQLConstraintError(gettext(error)) from exception
        raise


def checked_transition(state, field='state'):
    """Workflow.transition(state) for server code: the records that may go
    to state are passed to the decorated method, then moved by
    write_checked and their transitions logged by one INSERT
    (log_transitions) instead of the ORM's write and a log record each."""
    def decorator(func):
        @wraps(func)
        def wrapper(cls, records, *args, **kwargs):
            assert len(records) == len(set(records)), "Duplicate records"
            filtered, before = [], {}
            for record in records:
                current = getattr(record, field)
                if (current, state) in cls._transitions:
                    filtered.append(record)
                    if current != state:
                        before[record] = current
            result = func(cls, filtered, *args, **kwargs)
            # Those the method moved elsewhere already are left alone
            to_update = [r for r, current in before.items()
                if getattr(r, field) == current]
            if to_update:
                write_checked(cls, to_update, {field: state})
                log_transitions(cls, to_update, state, field=field)
            return result
        return wrapper
    return decorator


def guarded(*from_states, error, message, field='state'):
    """Decorate a classmethod acting on records: lock them, then refuse any
    whose state is not in from_states, raising error(gettext(message,
    record=…, state=…)).

    The lock makes two racing callers serial: the second one sees the state
    the first one left and gets a clear error instead of a second
    transition.
    """
    def decorator(func):
        @wraps(func)
        def wrapper(cls, records, *args, **kwargs):
            cls.lock(records)
            for record in records:
                if getattr(record, field) not in from_states:
                    raise error(gettext_state(message, record, field))
            return func(cls, records, *args, **kwargs)
        return wrapper
    return decorator


def guarded_button(*from_states, error, message, field='state'):
    """ModelView.button for a workflow step: guarded (lock, then states)
    behind states_said (the message of a user who clicks on a record that
    another user has just moved on)"""
    from trytond.model import ModelView

    def decorator(func):
        return states_said(error=error, message=message, field=field)(
            ModelView.button(guarded(
                    *from_states, error=error, message=message,
                    field=field)(func)))
    return decorator


def states_said(
        error=None, message='course.msg_record_state', field='state'):
    """Decorate a ModelView.button (or button_action): before trytond's own
    check of the button's states, whose "You can not call …" names neither
    the record nor its state, make the same check and raise error(message)
    (default StateError) naming the first record refused, its model and
    its state"""
    def decorator(button):
        @wraps(button)
        def wrapper(cls, records, *args, **kwargs):
            from .exceptions import StateError
            refused = button_refused(cls, button.__name__, records)
            if refused:
                raise (error or StateError)(
                    gettext_state(message, refused, field))
            return button(cls, records, *args, **kwargs)
        return wrapper
    return decorator


def gettext_state(message, record, field='state'):
    "The message naming the record, its model and its state"
    from trytond.i18n import gettext
    return gettext(
        message, record=record.rec_name,
        state=getattr(record, f'{field}_string'),
        model=record.__names__()['model'])


def button_refused(Model, name, records):
    """The first record whose state the states of button name refuse, for
    a user's call that trytond would let press the button otherwise (the
    checks of ModelView.button: read access, groups or write access);
    None for code (root or no access check)"""
    from trytond.model.modelstorage import _record_eval_pyson
    from trytond.pool import Pool
    from trytond.pyson import PYSONEncoder
    from trytond.transaction import Transaction
    pool = Pool()
    Button = pool.get('ir.model.button')
    ModelAccess = pool.get('ir.model.access')
    User = pool.get('res.user')
    transaction = Transaction()
    if not transaction.user or not transaction.check_access:
        return None
    # Refused by access or record rules: trytond's error, not a state
    Model.read([r.id for r in records if r.id is not None and r.id >= 0],
        ['id'])
    groups = set(User.get_groups())
    button_groups = Button.get_groups(Model.__name__, name)
    if button_groups and not groups & button_groups:
        return None
    if not button_groups and not ModelAccess.check(
            Model.__name__, 'write', raise_exception=False):
        return None
    states = Model._buttons.get(name, {})
    encoded = [PYSONEncoder().encode(states[s])
        for s in ('invisible', 'readonly') if s in states]
    with transaction.set_context(groups=User.get_groups()):
        for record in records:
            if any(_record_eval_pyson(record, s, encoded=True)
                    for s in encoded):
                return record
    return None


def lock_rows(Model, records):
    """Lock the rows of records for the transaction and write them.

    Model.lock alone is not enough on PostgreSQL: the transaction runs in
    repeatable read with the snapshot of its first statement, the lock
    statement itself, which can come just before the previous holder's
    commit is visible; the lock is granted and that commit is not seen.
    Writing the rows (write_date = write_date) turns such a stale
    transaction into a serialization failure, which the dispatcher, cron,
    worker and tests retry with a fresh snapshot.  Lock first: the call
    restarts (see Model.lock), so do nothing irreversible before it.
    """
    from trytond.transaction import Transaction
    records = list(records)
    if not records:
        return
    Model.lock(records)
    _write_locked(Transaction(), Model, {int(r) for r in records})


class _LocksError(TransactionError):
    "The restarts of several Model.lock calls asked for at once"

    def __init__(self, errors):
        super().__init__()
        self.errors = errors

    def fix(self, extras):
        for error in self.errors:
            error.fix(extras)


def lock_all_rows(pairs):
    """lock_rows of each (Model, records) of pairs with one restart of the
    call for all of them, not one restart per Model.lock"""
    from trytond.transaction import Transaction
    pairs = [(Model, list(records)) for Model, records in pairs]
    errors = []
    for Model, records in pairs:
        if records:
            try:
                Model.lock(records)
            except TransactionError as error:
                errors.append(error)
    if errors:
        raise _LocksError(errors)
    for Model, records in pairs:
        if records:
            _write_locked(
                Transaction(), Model, {int(r) for r in records})


def _write_locked(transaction, Model, ids):
    """Write the locked rows of ids (write_date = write_date), once per
    transaction: a second write would find nothing new"""
    from trytond.tools import grouped_slice, reduce_ids
    written = transaction.join(_WrittenRows())
    done = written.tables.setdefault(Model._table, set())
    table = Model.__table__()
    cursor = transaction.connection.cursor()
    for sub_ids in grouped_slice(sorted(set(ids) - done), in_max()):
        cursor.execute(*table.update(
                [table.write_date], [table.write_date],
                where=reduce_ids(table.id, sub_ids)))
    done.update(ids)


def try_lock_rows(Model, ids):
    """Lock the rows of ids that no other transaction holds now and write
    them as lock_rows does; return the set of ids locked.

    For jobs that must yield to users: a row another transaction holds is
    skipped (SELECT … FOR UPDATE SKIP LOCKED), never waited for.  The rows
    locked are registered in the transaction as Transaction.start does for
    the locks a restart asks for, so Model.lock and lock_rows on them pass
    without restarting the call.  SQLite has no row locks (the database
    file is locked per write transaction): every existing id is returned.
    """
    from trytond.tools import grouped_slice, reduce_ids
    from trytond.transaction import Transaction
    transaction = Transaction()
    database = transaction.database
    cursor = transaction.connection.cursor()
    table = Model.__table__()
    locked = set()
    for sub_ids in grouped_slice(sorted({int(i) for i in ids}), in_max()):
        query = table.select(table.id, where=reduce_ids(table.id, sub_ids))
        if database.has_select_for():
            For = database.get_select_for_skip_locked()
            query.for_ = For('UPDATE')
        cursor.execute(*query)
        locked.update(i for i, in cursor)
    # The write turns a stale snapshot into a serialization failure
    _write_locked(transaction, Model, locked)
    transaction._locked_records[Model._table].update(locked)
    return locked


def log_transitions(Model, ids, state, field='state'):
    """Record in ir.model.log that the records ids of Model moved to state.

    The rows trytond writes for a Workflow transition (event 'transition',
    target '<field>:<state>', user and create_uid the transaction's user,
    create_date the transaction's timestamp), inserted by one
    INSERT … SELECT per slice of ids instead of the per-record save
    ModelStorage.log defers to the commit.
    """
    from sql import Literal
    from sql.functions import CurrentTimestamp
    from sql.operators import Concat
    from trytond.pool import Pool
    from trytond.tools import grouped_slice, reduce_ids
    from trytond.transaction import Transaction
    if not Model._log or not ids:
        return
    Log = Pool().get('ir.model.log')
    transaction = Transaction()
    cursor = transaction.connection.cursor()
    log = Log.__table__()
    table = Model.__table__()
    user = transaction.user
    for sub_ids in grouped_slice(sorted({int(i) for i in ids}), in_max()):
        cursor.execute(*log.insert(
                [log.create_uid, log.create_date, log.resource, log.event,
                    log.target, log.user],
                table.select(
                    Literal(user), CurrentTimestamp(),
                    Concat(f'{Model.__name__},',
                        Log.resource.sql_cast(table.id)),
                    Literal('transition'), Literal(f'{field}:{state}'),
                    Literal(user),
                    where=reduce_ids(table.id, sub_ids))))


def in_new_transaction(func, *args, readonly=False, retries=0, **kwargs):
    """Run func(*args, **kwargs) in a transaction of its own (the current
    one's database, user and context) and commit it; return its result.

    As the dispatcher and the cron do: a TransactionError (a lock to take
    first) restarts it with the lock taken, a DatabaseOperationalError
    (lock held, serialization failure) is retried `retries` times, then
    raised.  Any other error rolls it back and is raised.
    """
    import time

    from trytond import backend
    from trytond.transaction import Transaction, TransactionError
    extras, count = {}, 0
    while True:
        try:
            with Transaction().new_transaction(
                    readonly=readonly, **extras) as transaction:
                try:
                    return func(*args, **kwargs)
                except TransactionError as error:
                    transaction.rollback()
                    error.fix(extras)
                    continue
        except backend.DatabaseOperationalError:
            if count >= retries:
                raise
            count += 1
            time.sleep(0.02 * count)

# ---- Input of RPC methods --------------------------------------------------
# A method exposed in __rpc__ receives whatever JSON or XML-RPC carries:
# these turn each parameter into what the method needs or raise InputError
# (a UserError with a translated message naming the parameter).

MAX_ID = 2 ** 31 - 1  # ids are 32-bit integers in the database


def _input_error(name, value, kind):
    """Return the InputError of a parameter; kind is the message id of
    what the parameter must be"""
    from trytond.i18n import gettext

    from .exceptions import InputError
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + '...'
    return InputError(gettext(
            'course.msg_input_invalid', name=name, value=text,
            kind=gettext(kind)))


def check_int(value, name, minimum=None, maximum=None):
    """Return value as an int when it is an integer (not a bool, not a
    float) within [minimum, maximum]; raise InputError otherwise"""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _input_error(name, value, 'course.msg_input_kind_integer')
    if minimum is not None and value < minimum:
        raise _input_error(name, value, 'course.msg_input_kind_integer')
    if maximum is not None and value > maximum:
        raise _input_error(name, value, 'course.msg_input_kind_integer')
    return value


def check_id(value, name):
    "Return value as a record id (a positive int); raise InputError"
    if isinstance(value, bool) or not isinstance(value, int) or not (
            0 < value <= MAX_ID):
        raise _input_error(name, value, 'course.msg_input_kind_id')
    return value


def check_ids(values, name):
    "Return values (a list or tuple) as a list of record ids"
    if not isinstance(values, (list, tuple)):
        raise _input_error(name, values, 'course.msg_input_kind_list')
    return [check_id(v, name) for v in values]


def check_list(value, name):
    "Return value (a list or tuple) as a list"
    if not isinstance(value, (list, tuple)):
        raise _input_error(name, value, 'course.msg_input_kind_list')
    return list(value)


def check_record(Model, value, name):
    """Return the record of Model with id value, which must exist (read
    without access rules: the caller checks rights); raise InputError"""
    from trytond.transaction import Transaction, without_check_access
    id_ = check_id(value, name)
    with without_check_access(), Transaction().set_context(
            active_test=False):
        if not Model.search([('id', '=', id_)], count=True):
            raise _input_error(name, value, 'course.msg_input_kind_id')
    return Model(id_)


def check_records(Model, values, name):
    """Return the records of Model with the ids of values (a list), which
    must all exist (inactive ones too), read in one query per slice"""
    from trytond.tools import grouped_slice
    from trytond.transaction import Transaction, without_check_access
    ids = check_ids(values, name)
    found = set()
    with without_check_access(), Transaction().set_context(
            active_test=False):
        for sub_ids in grouped_slice(ids, in_max()):
            found.update(r.id for r in Model.search(
                    [('id', 'in', list(sub_ids))]))
    for id_ in ids:
        if id_ not in found:
            raise _input_error(name, id_, 'course.msg_input_kind_id')
    return Model.browse(ids)


def check_bool(value, name):
    "Return value when it is a boolean"
    if not isinstance(value, bool):
        raise _input_error(name, value, 'course.msg_input_kind_boolean')
    return value


def check_text(value, name, max_length=200):
    "Return value as a str of at most max_length characters"
    if not isinstance(value, str) or len(value) > max_length:
        raise _input_error(name, value, 'course.msg_input_kind_text')
    return value


def check_dict(value, name):
    "Return value as a dict (None is an empty one)"
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _input_error(name, value, 'course.msg_input_kind_dict')
    return value


def check_amount(value, name, currency, minimum=0):
    """Return value as a Decimal amount of currency (at most its digits,
    finite, not below minimum); int, str and Decimal are accepted"""
    from decimal import InvalidOperation
    if isinstance(value, bool) or not isinstance(
            value, (int, str, Decimal)):
        raise _input_error(name, value, 'course.msg_input_kind_amount')
    try:
        amount = Decimal(value)
    except (InvalidOperation, ValueError):
        raise _input_error(name, value, 'course.msg_input_kind_amount')
    if (not amount.is_finite() or amount != currency.round(amount)
            or (minimum is not None and amount < minimum)
            or abs(amount) >= Decimal(10) ** 12):
        raise _input_error(name, value, 'course.msg_input_kind_amount')
    return currency.round(amount)


# ---- Language of a company --------------------------------------------------

def company_lang(company):
    """The ir.lang of company: the language of its party, as the company
    sees it (party languages may differ per company); None when not set"""
    if not company:
        return None
    return company.party.get_multivalue('lang', company=company.id)


# {company id: code of its party's language, '' when not set}; cleared when
# a party's language changes (course: party.party.lang)
_company_languages = Cache('course.company_language', context=False)


def company_language(company):
    """The code of the language the texts stored for company are written
    in (price names, discount descriptions, ledger notes, refund reasons):
    the company's, else the database's default language.  Not the language
    of whoever caused them: a student's storefront or a staff member's
    client would leave a mix of languages in one school's records."""
    from trytond.pool import Pool
    Configuration = Pool().get('ir.configuration')
    code = _company_languages.get(company.id) if company else ''
    if code is None:
        lang = company_lang(company)
        code = lang.code if lang else ''
        _company_languages.set(company.id, code)
    return code or Configuration.get_language()


def clear_company_languages():
    _company_languages.clear()


# {company id: (currency id, digits, rounding)}; cleared when a company's
# currency or a currency changes (course: company.company, currency.currency)
_company_currencies = Cache('course.company_currency', context=False)


def company_currency(company):
    """The currency of company as a record whose digits and rounding are
    known (kept per process): pricing and the storefront round with it at
    each call, and reading the company and the currency again each time
    cost two queries"""
    from trytond.pool import Pool
    pool = Pool()
    Company = pool.get('company.company')
    Currency = pool.get('currency.currency')
    company_id = int(company)
    found = _company_currencies.get(company_id)
    if found is None:
        currency = Company(company_id).currency
        found = (currency.id, currency.digits, currency.rounding)
        _company_currencies.set(company_id, found)
    currency_id, digits, rounding = found
    return Currency(currency_id, digits=digits, rounding=rounding)


def clear_company_currencies():
    _company_currencies.clear()


# ---- Rights of the caller ---------------------------------------------------

def in_group(xml_id):
    """Is the user of the transaction in the group of xml_id ('module.id')?
    Root (user 0, code and scheduler) is in every group."""
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    if not Transaction().user:
        return True
    pool = Pool()
    ModelData = pool.get('ir.model.data')
    User = pool.get('res.user')
    module, fs_id = xml_id.split('.')
    return ModelData.get_id(module, fs_id) in User.get_groups()


def check_caller(method, groups):
    """Refuse a user's call (access checked: over RPC) to method unless the
    user is in one of groups (XML ids 'module.id'); code, buttons and
    wizards, which run without access check, pass"""
    from trytond.i18n import gettext
    from trytond.pool import Pool
    from trytond.transaction import Transaction, without_check_access

    from .exceptions import CallerError
    pool = Pool()
    Group = pool.get('res.group')
    ModelData = pool.get('ir.model.data')
    transaction = Transaction()
    if not transaction.check_access or any(in_group(g) for g in groups):
        return
    allowed = [ModelData.get_id(*g.split('.')) for g in groups]
    with without_check_access():
        names = ', '.join(f'"{g.rec_name}"' for g in Group.browse(allowed))
    raise CallerError(gettext(
            'course.msg_call_forbidden', method=method, groups=names))


def check_company(method):
    """Return the company method works in: the context's, which a user's
    call must have among the user's companies"""
    from trytond.i18n import gettext
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    from .exceptions import CallerError
    pool = Pool()
    User = pool.get('res.user')
    Company = pool.get('company.company')
    transaction = Transaction()
    company = transaction.context.get('company')
    external = transaction.user and transaction.check_access
    if not company or (external and company not in User.get_companies()):
        raise CallerError(gettext('course.msg_call_company', method=method))
    return Company(company)

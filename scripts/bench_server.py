"""trytond, counting what each HTTP request costs the server.

scripts/bench_checkout.py starts its server processes with this script
instead of the `trytond` script (same arguments).  Before trytond starts it
wraps:

- psycopg's `Cursor.execute`: the SQL statements run, per thread (trytond's
  werkzeug server answers each request in a thread of its own);
- `Transaction.start`: the transactions started; a storefront call or the
  Alipay notify that runs in one attempt starts one read-write transaction
  (a read-only call one read-only), each restart (a lock to take first) or
  retry (a lock held by another) starts one more; the read-only lookup the
  notify runs before (to lock its order first) is counted apart;
- the lock errors: the table of each restart to take a lock first, and the
  locks found held by another transaction (`busy`: NOWAIT failed, the
  transaction or the call retried);
- the WSGI application: after each request one JSON line is appended to
  `$BENCH_CHECKOUT_CALLS/calls-<pid>.jsonl`: the time it was answered, the
  path, the JSON-RPC method, the statements, the attempts, the restarts'
  tables, the busy locks and the milliseconds spent in the server.

With `BENCH_CHECKOUT_PROFILE=1` (and one client: the profile of a method is
shared by its requests) each method's requests are also profiled with
cProfile into `$BENCH_CHECKOUT_CALLS/profile-<pid>-<method>.pstats`.
With `BENCH_CHECKOUT_SQL=1` each line also holds the request's statements
(`sql`: their first 300 characters), to see what a call runs.

It changes nothing else; it is not used in production.
"""
import cProfile
import json
import os
import sys
import threading
import time

COUNTS = threading.local()
KEEP_SQL = bool(os.environ.get('BENCH_CHECKOUT_SQL'))


def reset():
    COUNTS.statements = 0
    COUNTS.writes = 0
    COUNTS.reads = 0
    COUNTS.busy = 0
    COUNTS.restarts = []
    COUNTS.sql = []


def count(name):
    setattr(COUNTS, name, getattr(COUNTS, name, 0) + 1)


def patch_psycopg():
    import psycopg
    execute = psycopg.Cursor.execute

    def counted_execute(cursor, *args, **kwargs):
        count('statements')
        sql = getattr(COUNTS, 'sql', None)
        if KEEP_SQL and args and sql is not None:
            sql.append(str(args[0])[:300])
        return execute(cursor, *args, **kwargs)
    psycopg.Cursor.execute = counted_execute


def patch_transaction():
    from trytond.transaction import Transaction
    start = Transaction.start

    def counted_start(self, database_name, user, readonly=False, *args,
            **kwargs):
        count('reads' if readonly else 'writes')
        return start(self, database_name, user, readonly, *args, **kwargs)
    Transaction.start = counted_start


def patch_locks():
    """Record the table of each restart to take a lock first, and count
    the locks found held by another transaction (NOWAIT failed)"""
    from trytond import backend
    from trytond.transaction import (
        _TransactionLockError, _TransactionLockRecordsError)
    for cls in [_TransactionLockError, _TransactionLockRecordsError]:
        def fix(self, extras, fix=cls.fix):
            COUNTS.restarts.append(self._table)
            return fix(self, extras)
        cls.fix = fix
    Database = backend.Database
    lock, lock_records = Database.lock, Database.lock_records

    def busy(func, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except backend.DatabaseOperationalError:
            count('busy')
            raise
    Database.lock = lambda self, *a, **k: busy(lock, self, *a, **k)
    # A class method: lock_records is bound to the class already
    Database.lock_records = classmethod(
        lambda cls, *a, **k: busy(lock_records, *a, **k))


def rpc_method(environ):
    """The JSON-RPC method of a storefront POST (the body is read and put
    back for trytond)"""
    import io
    if not environ.get('PATH_INFO', '').endswith('/storefront'):
        return None
    length = int(environ.get('CONTENT_LENGTH') or 0)
    body = environ['wsgi.input'].read(length)
    environ['wsgi.input'] = io.BytesIO(body)
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    return payload.get('method') if isinstance(payload, dict) else 'batch'


def patch_app(folder):
    from trytond.wsgi import app
    path = os.path.join(folder, f'calls-{os.getpid()}.jsonl')
    out = open(path, 'a', buffering=1)
    lock = threading.Lock()
    wsgi_app = app.wsgi_app
    profiles = {} if os.environ.get('BENCH_CHECKOUT_PROFILE') else None

    def recorded_app(environ, start_response):
        method = rpc_method(environ)
        reset()
        profile = None
        if profiles is not None:
            profile = profiles.setdefault(
                method or environ.get('PATH_INFO', '').rsplit('/', 1)[-1],
                cProfile.Profile())
            profile.enable()
        started = time.perf_counter()
        try:
            return wsgi_app(environ, start_response)
        finally:
            if profile is not None:
                profile.disable()
                profile.dump_stats(os.path.join(folder,
                        f'profile-{os.getpid()}-{method or "notify"}.pstats'))
            record = {
                    't': time.time(),
                    'path': environ.get('PATH_INFO'),
                    'method': method,
                    'statements': COUNTS.statements,
                    # A read-only call runs in one read-only transaction;
                    # a read-only lookup before a read-write call (the
                    # notify's) is not an attempt
                    'attempts': COUNTS.writes or COUNTS.reads,
                    'lookups': COUNTS.reads if COUNTS.writes else 0,
                    'restarts': COUNTS.restarts,
                    'busy': COUNTS.busy,
                    'ms': (time.perf_counter() - started) * 1000,
                    }
            if KEEP_SQL:
                record['sql'] = COUNTS.sql
            line = json.dumps(record)
            with lock:
                out.write(line + '\n')
    app.wsgi_app = recorded_app


def main():
    folder = os.environ['BENCH_CHECKOUT_CALLS']
    from trytond.cli import main as trytond_main
    import trytond.commandline
    import trytond.config as config

    # trytond.wsgi reads the configuration when imported: parse it first as
    # trytond's main does, then wrap, then let it run
    options = trytond.commandline.get_parser_daemon().parse_args()
    config.update_etc(options.configfile)
    patch_psycopg()
    patch_transaction()
    patch_locks()
    patch_app(folder)
    sys.exit(trytond_main())


if __name__ == '__main__':
    sys.argv[0] = 'trytond'
    main()

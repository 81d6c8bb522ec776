"""What the admin scripts share (grant_coupon.py, adjust_credit.py,
export_orders.py, audit_credit.py): where they connect, how they read a
CSV and report its bad rows, how they show progress and apply a change.

Where: ``-d <database> [-c <trytond.conf>] [-u <login>]`` opens the
database in the script's process (proteus ``set_trytond``), ``--url
http://<login>:<password>@<host>:<port>/<database>/rpc/`` talks to a
running server over XML-RPC (proteus ``set_xmlrpc``: proteus 8.0 has no
JSON-RPC; the user and password travel as HTTP basic authentication on
every call, so use https beyond localhost).

Exit codes: 0 done, 1 bad rows (nothing changed), a change refused or
disagreements, 2 bad command line, no connection or a read refused (e.g.
the user lacks a right).
"""
import argparse
import csv
import functools
import sys
import time
import urllib.parse
import xmlrpc.client
from decimal import Decimal, InvalidOperation

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
# Ids per search or read call: keeps each request small
CHUNK = 500

URL_HELP = ("XML-RPC URL of a running server with the login and password: "
    "http://<login>:<password>@<host>:<port>/<db>/rpc/")


class ScriptError(Exception):
    "A problem that stops the script before it changes anything"


def parser(doc):
    """An argument parser whose description is the script's docstring,
    with the connection options"""
    first, _, rest = doc.lstrip().partition('\n')
    result = argparse.ArgumentParser(
        description=first, epilog=rest.strip('\n'),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    target = result.add_argument_group(
        "where (one of -d and --url)").add_mutually_exclusive_group(
        required=True)
    target.add_argument('-d', '--database', help="database name, opened "
        "in this process (trytond's configuration: -c or TRYTOND_CONFIG)")
    target.add_argument('--url', help=URL_HELP)
    result.add_argument('-c', '--config', help="trytond configuration file "
        "(with -d)")
    result.add_argument('-u', '--user', default='admin',
        help="login of the user the script acts as, with -d (default "
        "admin); with --url the login of the URL")
    return result


def connect(args):
    """The Target of the parsed arguments; ScriptError when it cannot be
    reached"""
    from proteus import config
    try:
        if args.url:
            return Target(config.set_xmlrpc(args.url), local=False)
        return Target(config.set_trytond(database=args.database,
                user=args.user, config_file=args.config), local=True)
    except IndexError:  # proteus looks the login up with [0]
        raise ScriptError(f"Cannot connect: no user {args.user!r}")
    except Exception as error:
        text = error_text(error)
        password = args.url and urllib.parse.urlsplit(args.url).password
        if password:  # the error may quote the URL
            text = text.replace(f':{password}@', ':***@')
        raise ScriptError(f"Cannot connect: {text}")


def error_text(error):
    "The message of a Tryton error, raised locally or over XML-RPC"
    if isinstance(error, xmlrpc.client.Fault):
        text = error.faultString
        if isinstance(text, (list, tuple)):
            text = ' '.join(str(t) for t in text if t)
        return str(text).removesuffix(' - ').strip()
    message = getattr(error, 'message', None)
    if isinstance(message, str):
        description = getattr(error, 'description', '')
        return f'{message} {description}'.strip()
    return str(error) or error.__class__.__name__


def is_refusal(error):
    "Whether error is the server's (or trytond's) refusal of a call"
    if isinstance(error, xmlrpc.client.Fault):
        return True
    try:
        from trytond.exceptions import TrytonException
    except ImportError:
        return False
    return isinstance(error, TrytonException)


def command(main):
    """main(argv) as a command: a ScriptError or a refusal of the server
    (e.g. the user lacks a right) is printed, exit 2"""
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except ScriptError as error:
            print(error, file=sys.stderr)
        except Exception as error:
            if not is_refusal(error):
                raise
            print(f"Refused: {error_text(error)}", file=sys.stderr)
        return EXIT_USAGE
    return wrapper


class Target:
    """The database the script works on, through proteus: call() makes an
    RPC call (model or wizard) as the user, with the user's context.

    apply(func) runs func(target), the changing part of a script: on a
    local database in one transaction (every call of func in it, committed
    at the end, rolled back when func fails); over a server each call of
    func is a transaction of the server's."""

    def __init__(self, config, local):
        self.config = config
        self.local = local
        self._transaction = None

    @property
    def context(self):
        return self.config.context

    def call(self, name, method, *args, type='model'):
        if self._transaction is not None:
            return self._call_in_transaction(name, method, args, type)
        proxy = self.config.get_proxy(name, type=type)
        return getattr(proxy, method)(*args, self.context)

    def _call_in_transaction(self, name, method, args, type):
        "What the RPC dispatcher does, in the transaction of apply()"
        from trytond.transaction import Transaction
        Model = self.config.pool.get(name, type=type)
        rpc = Model.__rpc__[method]
        assert rpc.instantiate is None, method
        c_args, c_kwargs, context, _ = rpc.convert(
            Model, *args, self.context)
        with Transaction().set_context(context):
            return rpc.result(getattr(Model, method)(*c_args, **c_kwargs))

    def wizard(self, name, state, data):
        """Run the wizard name through the transition state with data
        ({state view: values}), as the clients do; return its result"""
        session, _, _ = self.call(name, 'create', type='wizard')
        try:
            return self.call(
                name, 'execute', session, data, state, type='wizard')
        finally:
            self.call(name, 'delete', session, type='wizard')

    def apply(self, func):
        if not self.local:
            return func(self)
        from trytond import backend
        from trytond.config import config
        from trytond.transaction import Transaction, TransactionError
        extras, count = {}, 0
        retries = config.getint('database', 'retry')
        while True:
            try:
                with Transaction().start(
                        self.config.database_name, self.config.user,
                        context=self.context, **extras) as transaction:
                    self._transaction = transaction
                    try:
                        result = func(self)
                    except TransactionError as error:
                        # A lock to take first: the whole unit again
                        transaction.rollback()
                        error.fix(extras)
                        continue
                    except BaseException:
                        transaction.rollback()
                        raise
                    transaction.commit()
                    return result
            except backend.DatabaseOperationalError:
                if count >= retries:
                    raise
                count += 1
                time.sleep(0.02 * count)
            finally:
                self._transaction = None

    # ---- Reading -----------------------------------------------------------

    def search_read(self, name, domain, fields, order=None):
        "Every record of domain, read in chunks"
        ids = self.call(name, 'search', domain, 0, None, order)
        return self.read(name, ids, fields)

    def read(self, name, ids, fields):
        "The records of ids (in that order), read in chunks"
        result = []
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start:start + CHUNK]
            by_id = {r['id']: r for r in self.call(
                    name, 'read', chunk, fields)}
            result.extend(by_id[i] for i in chunk)
        return result

    def has_model(self, name):
        return bool(self.call(
                'ir.model', 'search', [('name', '=', name)], 0, 1, None))

    def company(self):
        "{id, name, currency, digits, timezone} of the user's company"
        company_id = self.context.get('company')
        if not company_id:
            raise ScriptError(
                "The user has no current company: set one in its "
                "preferences.")
        company, = self.call('company.company', 'read', [company_id],
            ['rec_name', 'timezone', 'currency', 'currency.code',
                'currency.digits'])
        return {
            'id': company['id'], 'name': company['rec_name'],
            'currency': company['currency'],
            'currency_code': company['currency.']['code'],
            'digits': company['currency.']['digits'],
            'timezone': company['timezone'],
            }


# ---- CSV files and their problems ------------------------------------------

class Problems:
    "The bad rows of a file: (row, column, reason), reported together"

    def __init__(self):
        self.items = []

    def add(self, row, column, reason):
        self.items.append((row, column, reason))

    def __bool__(self):
        return bool(self.items)

    def report(self, out=None):
        "Print every problem, then a count; return EXIT_PROBLEMS"
        out = out or sys.stderr
        for row, column, reason in sorted(
                self.items, key=lambda p: (p[0] or 0, p[1] or '')):
            where = [f"row {row}" if row else "file"]
            if column:
                where.append(f"column {column}")
            print(f"{', '.join(where)}: {reason}", file=out)
        rows = {row for row, _, _ in self.items}
        print(f"{len(self.items)} problem(s) in {len(rows)} row(s); "
            "nothing was changed.", file=out)
        return EXIT_PROBLEMS


def read_csv(path, required, optional=()):
    """[(row number, {column: stripped text})] of the CSV file at path
    ('-': standard input), UTF-8 (with or without BOM), a header line
    first; row numbers are line numbers of the file (the header is 1).
    ScriptError for a file that cannot be used at all."""
    try:
        if path == '-':
            return _read_rows(sys.stdin, path, required, optional)
        with open(path, newline='', encoding='utf-8-sig') as fp:
            return _read_rows(fp, path, required, optional)
    except OSError as error:
        raise ScriptError(f"Cannot read {path}: {error.strerror}")
    except UnicodeDecodeError:
        raise ScriptError(f"{path} is not UTF-8 text")
    except csv.Error as error:
        raise ScriptError(f"{path} is not a CSV file: {error}")


def _read_rows(fp, path, required, optional):
    reader = csv.reader(fp)
    header = next(reader, None)
    if not header:
        raise ScriptError(f"{path} is empty: a header line is expected "
            f"({', '.join(required)})")
    header = [h.strip().lower() for h in header]
    missing = [c for c in required if c not in header]
    unknown = [c for c in header if c not in required and c not in optional]
    if missing or unknown or len(set(header)) != len(header):
        raise ScriptError(f"{path}: the header must name the columns "
            f"{', '.join(required)}"
            + (f" (optional: {', '.join(optional)})" if optional else "")
            + f" once each; it has {', '.join(header)}")
    rows = []
    line = reader.line_num
    for values in reader:
        number, line = line + 1, reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) > len(header):
            rows.append((number, None))
            continue
        values = values + [''] * (len(header) - len(values))
        rows.append((number, {
                    c: v.strip() for c, v in zip(header, values)}))
    return rows


def check_columns(rows, problems, columns):
    "Report the rows with too many fields; return the others"
    good = []
    for number, values in rows:
        if values is None:
            problems.add(number, None,
                f"more fields than the {len(columns)} columns of the header")
        else:
            good.append((number, values))
    return good


def parse_amount(text, digits):
    """The Decimal of text with at most digits decimals, or raise
    ValueError with the reason"""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number")
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a number")
    if value != value.quantize(Decimal(1).scaleb(-digits)):
        raise ValueError(
            f"{text} has more than the currency's {digits} decimals")
    if abs(value) >= 10 ** 12:
        raise ValueError(f"{text} is too large")
    return value.quantize(Decimal(1).scaleb(-digits))


# ---- Students --------------------------------------------------------------

def is_email(text):
    return '@' in text


def find_students(target, keys):
    """{key: [(party id, party name)]} for each key (an e-mail: the parties
    with that e-mail as a contact mechanism or as their web user's login;
    else a party code); an unknown key maps to []"""
    keys = set(keys)
    emails = {k.lower() for k in keys if is_email(k)}
    codes = [k for k in keys if not is_email(k)]
    owners = {}  # e-mail or code: {party id}
    for start in range(0, len(codes), CHUNK):
        for party in target.search_read('party.party',
                [('code', 'in', codes[start:start + CHUNK])], ['code']):
            owners.setdefault(party['code'], set()).add(party['id'])
    sources = [('party.contact_mechanism', 'value', [('type', '=', 'email')])]
    if emails and target.has_model('web.user'):
        sources.append(('web.user', 'email', []))
    ordered = sorted(emails)
    for model, field, domain in sources if emails else []:
        for start in range(0, len(ordered), CHUNK):
            chunk = ordered[start:start + CHUNK]
            # ilike for the case; the exact match is checked below ('_' is a
            # wildcard of like)
            found = target.search_read(model, domain + [
                    ['OR'] + [(field, 'ilike', e) for e in chunk],
                    ('party', '!=', None)], [field, 'party'])
            for record in found:
                email = (record[field] or '').lower()
                if email in emails:
                    owners.setdefault(email, set()).add(record['party'])
    party_ids = sorted({p for ps in owners.values() for p in ps})
    names = {p['id']: p['rec_name'] for p in target.read(
            'party.party', party_ids, ['rec_name'])}
    result = {}
    for key in keys:
        ids = owners.get(key.lower() if is_email(key) else key, set())
        result[key] = sorted((i, names[i]) for i in ids if i in names)
    return result


def resolve_students(target, rows, problems, column='student'):
    """{row number: (party id, name)} of the rows whose column names one
    student; the others reported"""
    found = find_students(target, {v[column] for _, v in rows if v[column]})
    result = {}
    for number, values in rows:
        key = values[column]
        if not key:
            problems.add(number, column,
                "empty: an e-mail or a student (party) code expected")
            continue
        students = found[key]
        if not students:
            what = "e-mail" if is_email(key) else "code"
            problems.add(number, column, f"no student with the {what} {key}")
        elif len(students) > 1:
            problems.add(number, column, f"{key} belongs to several "
                f"students: {', '.join(n for _, n in students)}")
        else:
            result[number] = students[0]
    return result


# ---- Progress --------------------------------------------------------------

class Progress:
    """'<label>: done/total' on standard error, at most once a second (and
    at the end); on a terminal it rewrites one line"""

    def __init__(self, label, total, out=None, interval=1.0):
        self.label = label
        self.total = total
        self.out = out or sys.stderr
        self.interval = interval
        self.done = 0
        self.shown = None
        self.tty = getattr(self.out, 'isatty', lambda: False)()

    def step(self, count=1):
        self.done += count
        now = time.monotonic()
        if (self.done >= self.total or self.shown is None
                or now - self.shown >= self.interval):
            self.shown = now
            percent = 100 * self.done // self.total if self.total else 100
            text = f"{self.label}: {self.done}/{self.total} ({percent}%)"
            if self.tty:
                end = '\n' if self.done >= self.total else ''
                print('\r' + text, end=end, file=self.out, flush=True)
            else:
                print(text, file=self.out, flush=True)


def run(main):
    """Run main(argv) as a command: in the project's venv, its return value
    the exit code"""
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bootstrap import ensure_venv
    ensure_venv()  # re-runs the script with the project's venv
    sys.exit(main())

#!/usr/bin/env python3
"""Write or check the Storefront API reference,
modules/course_storefront/doc/api.rst.

    python3 scripts/storefront_examples.py           # check: exit 1 if stale
    python3 scripts/storefront_examples.py --write   # write the file

Builds a fresh SQLite database in a temporary folder with the modules
course_storefront needs and their demo data (scripts/demo_data/), then walks
through every method of the API in process (trytond's WSGI app, the tests'
StorefrontClient) as the demo student and a newcomer, and renders for each
method of ``api/registry.py`` METHODS: its summary, its params (from its
pydantic model), its result fields, its error types and the request and
response of the walk.  A method the walk does not call is an error: a new
method needs its example here.

What changes from run to run is masked so the file is stable: tokens and
coupon codes, datetimes (moved to a fixed day, at the hour, keeping their
distance from now) and the date in order numbers.
"""
import argparse
import datetime as dt
import difflib
import inspect
import json
import os
import re
import shutil
import sys
import tempfile
import textwrap

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SCRIPTS)
from bootstrap import ROOT, ensure_venv, in_venv  # noqa: E402

DOC = os.path.join(ROOT, 'modules', 'course_storefront', 'doc', 'api.rst')
DATABASE = 'storefront_examples'
STUDENT = 'zhang.wei@example.com'
NEWCOMER = 'new.student@example.com'

# The masked "now" of the examples: 2026-01-15 10:00 in Shanghai
FIXED_NOW = dt.datetime(2026, 1, 15, 2, 0, tzinfo=dt.timezone.utc)
ISO_DATETIME = re.compile(
    r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)?$')
# A date (a homework's due date, in the demo company's zone, Shanghai)
ISO_DATE = re.compile(r'^\d{4}-\d{2}-\d{2}$')
SHANGHAI = dt.timezone(dt.timedelta(hours=8))

# What the params mean, beyond their type and bounds (by name; a method's
# own entry first)
PARAM_NOTES = {
    'email': "the student's e-mail (trimmed, lower-cased)",
    'name': "the student's name",
    'direction': "a direction id (catalog.directions)",
    'category': "a category id (catalog.categories)",
    'search': "text the course name contains",
    'page': "page number, from 1",
    'size': "items per page",
    'id': "a course id",
    'course': "a course id",
    'option': "an option id of the course (null: the course's own price)",
    'selected': "selected for the next order or not",
    'state': "only the items of this state",
    'coupon': "a coupon id (coupon.claimable)",
    'code': "the printed code",
    'coupons': "grant ids of the student's coupons (coupon.mine, "
    "checkout.preview's usable_coupons)",
    'credit': "points to spend",
    'pay_method': "manual, wallet, free, or a payment provider such as "
    "alipay or wechat",
    'expect_payable': "the payable the student saw (checkout.preview): "
    "another payable creates nothing (order.payable_changed)",
    'number': "an order number",
    'reason': "why the student wants the refund",
    'degree': "a degree program id (degree.programs): the order is of "
    "that program alone, the cart is not used",
    'degree_option': "an option id of the program (null: its own price)",
    'enrollment': "a degree enrollment id of the student (degree.mine)",
    'company_name': "the student's current company",
    'position': "the student's position",
    'salary': "the monthly salary, at most 2 decimals",
    'experience': "years of work: graduate, 1 to 10, more10",
    'study_plan': "hours a day: the homework's due dates follow it",
    'why_course': "why this program",
    'why_us': "why this school",
    'expectations': "what the student expects",
    'open_first_module': "open module 1 now (default true)",
    'preferred_mentor': "a mentor the student would like",
    'memo': "anything else",
    'homework': "a homework id (degree.homework.list)",
    'text': "the answer as text (exactly one of text, attachment)",
    'attachment': "a file: {name, data: base64}, at most 1 MiB",
    }


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument('--write', action='store_true',
        help="write the file instead of checking it")
    return parser.parse_args()


# --- The database ------------------------------------------------------

def setup_database(folder):
    """A new SQLite database in folder with course_storefront (and what it
    depends on) activated and the demo data loaded"""
    os.environ.update({
            'TRYTOND_DATABASE_URI': 'sqlite://',
            'TRYTOND_DATABASE__PATH': folder,
            'DB_NAME': DATABASE,
            })
    for name in ['DB_CACHE', 'TRYTOND_CONFIG', 'TRYTOND_COURSE__REDIS']:
        os.environ.pop(name, None)
    use_modules_of_this_checkout()
    # Also when trytond's configuration was read before the environment
    # was set
    from trytond.config import config
    config.set('database', 'uri', 'sqlite://')
    config.set('database', 'path', folder)
    from trytond.tests.test_tryton import activate_module
    # With the optional module whose degree.* methods are documented
    activate_module(['course_storefront', 'course_degree'])

    from proteus import Model, config
    config.set_trytond(database=DATABASE, user='admin')
    Module = Model.get('ir.module')
    import demo_data
    demo_data.load(
        [m.name for m in Module.find([('state', '=', 'activated')])])


def use_modules_of_this_checkout():
    """Document the modules next to this script, whichever checkout the
    virtualenv was installed from"""
    import trytond.modules
    path = os.path.join(ROOT, 'modules')
    if path not in trytond.modules.__path__:
        trytond.modules.__path__.insert(0, path)


def lookup():
    "{name: id} of the demo records the walk uses"
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    with Transaction().start(DATABASE, 0, readonly=True):
        pool = Pool()
        Course = pool.get('course.course')
        Direction = pool.get('course.direction')
        Coupon = pool.get('course.coupon')
        Grant = pool.get('course.coupon.grant')
        Order = pool.get('course.order')
        Party = pool.get('party.party')

        def course(name):
            record, = Course.search([('name', '=', name)])
            return record

        def option(course_name, name):
            record, = [o for o in course(course_name).options
                if o.name == name]
            return record.id

        def coupon(name):
            record, = Coupon.search([('name', '=', name)])
            return record.id
        student, = Party.search([
                ('contact_mechanisms.value', '=', STUDENT)])
        code_grant = Grant.search([
                ('coupon', '=', coupon("30元通用优惠券")),
                ('origin', '=', 'code'), ('party', '=', None)],
            order=[('id', 'ASC')], limit=1)[0]
        claimed, = Grant.search([
                ('coupon', '=', coupon("python七夕专用券")),
                ('party', '=', student.id)])
        unpaid, = Order.search([
                ('party', '=', student.id), ('state', '=', 'unpaid'),
                ('pay_method', '=', 'manual'),
                ('lines.course.name', '=', "机器学习入门")])
        direction, = Direction.search([('name', '=', "Python 开发")])
        Degree = pool.get('course.degree')
        program, = Degree.search([('published', '=', True)], limit=1)
        front, = Direction.search([('name', '=', "前端开发")])
        return {
            'linux': course("Linux 自动化运维").id,
            'linux_quarter': option("Linux 自动化运维", "三个月有效"),
            'linux_forever': option("Linux 自动化运维", "永久有效"),
            'docker': course("Docker 与 Kubernetes 实战").id,
            'data': course("数据分析与可视化").id,
            'django': course("Django 企业级项目实战").id,
            'python': direction.id,
            'front': front.id,
            'qixi': coupon("python七夕专用券"),
            'qixi_grant': claimed.id,
            'code': code_grant.code,
            'unpaid': unpaid.number,
            'program': program.id,
            'program_option': program.options[0].id,
            }


# --- The walk ----------------------------------------------------------

def check_result(method, result):
    "Stop when a result is not what its method declares"
    from pydantic import TypeAdapter, ValidationError

    from trytond.modules.course_storefront.api.registry import METHODS
    declared = METHODS[method].result
    if declared is None:
        return
    try:
        TypeAdapter(declared).validate_python(result)
    except ValidationError as error:
        raise SystemExit(f"{method}: the result is not its declared one: "
            f"{error}")


class Recorder:
    "The example of each method: its request and the answer"

    def __init__(self):
        self.examples = {}
        self.transport = []

    def call(self, client, method, params=None, document=True):
        "Call method; keep its first documented call as its example"
        request = {'jsonrpc': '2.0', 'method': method}
        if params is not None:
            request['params'] = params
        request['id'] = 1
        status, answer = client.post(request)
        if status != 200 or answer is None:
            raise SystemExit(f"{method}: HTTP {status} {answer}")
        if document and method not in self.examples:
            self.examples[method] = {
                'request': request, 'response': answer,
                'token': bool(client.token)}
        return answer

    def result(self, client, method, params=None, document=True):
        answer = self.call(client, method, params, document)
        if 'error' in answer:
            raise SystemExit(f"{method} failed in the walk: {answer}")
        check_result(method, answer['result'])
        return answer['result']

    def error(self, client, method, params, type_, title=None):
        """An error example of method, whose data.type must be type_; with
        a title, shown among the transport examples too"""
        request = {'jsonrpc': '2.0', 'method': method, 'params': params,
            'id': 1}
        status, answer = client.post(request)
        if answer.get('error', {}).get('data', {}).get('type') != type_:
            raise SystemExit(f"{method}: expected {type_}, got {answer}")
        self.examples.setdefault(method, {
                'request': request, 'response': answer,
                'token': bool(client.token)})
        if title:
            self.transport.append(
                (title, request, answer, bool(client.token)))

    def batch(self, client, calls, title):
        status, answer = client.post(calls)
        if status != 200:
            raise SystemExit(f"batch: HTTP {status} {answer}")
        self.transport.append((title, calls, answer, bool(client.token)))


def walk():
    "Call every method; return the Recorder"
    from trytond.modules.course_storefront.tests.tools import (
        StorefrontClient)
    from demo_data import STUDENT_LOGINS
    ids = lookup()
    rec = Recorder()
    guest = StorefrontClient(DATABASE)
    student = StorefrontClient(DATABASE)
    newcomer = StorefrontClient(DATABASE)

    rec.result(guest, 'rpc.discover')
    rec.result(guest, 'catalog.directions')
    rec.result(guest, 'catalog.categories', {'direction': ids['front']})
    rec.result(guest, 'catalog.courses', {
            'direction': ids['python'], 'page': 1, 'size': 2})
    rec.result(guest, 'catalog.course', {'id': ids['linux']})
    rec.result(guest, 'degree.programs')

    newcomer.token = rec.result(newcomer, 'auth.register', {
            'email': NEWCOMER, 'password': 'newcomer-pass', 'name': "赵敏"}
        )['token']
    student.token = rec.result(student, 'auth.login', {
            'email': STUDENT, 'password': STUDENT_LOGINS[STUDENT][0]}
        )['token']
    rec.result(student, 'account.me')

    rec.result(student, 'cart.add', {
            'course': ids['linux'], 'option': ids['linux_quarter']})
    rec.result(student, 'cart.add', {'course': ids['docker']},
        document=False)
    rec.result(student, 'cart.add', {'course': ids['data']}, document=False)
    rec.error(student, 'cart.add', {'course': ids['django']},
        'cart.course_owned', "A refusal: a course the student owns")
    rec.result(student, 'cart.remove', {'course': ids['data']})
    rec.result(student, 'cart.set_option', {
            'course': ids['linux'], 'option': ids['linux_forever']})
    rec.result(student, 'cart.select', {
            'course': ids['docker'], 'selected': False})
    rec.result(student, 'cart.select_all', {'selected': True})
    rec.result(student, 'cart.get')

    rec.result(student, 'coupon.mine', {'state': 'available'})
    rec.result(student, 'coupon.claimable')
    # A coupon and points on one order need the order configuration's
    # discounts_combinable, off in the demo
    preview = rec.result(student, 'checkout.preview', {
            'coupons': [ids['qixi_grant']]})
    order = rec.result(student, 'order.create', {
            'coupons': [ids['qixi_grant']],
            'pay_method': 'wallet', 'expect_payable': preview['payable']})
    rec.result(student, 'order.list', {'page': 1, 'size': 2})
    rec.result(student, 'order.get', {'number': order['number']})
    rec.result(student, 'order.refund_request', {
            'number': order['number'],
            'reason': "课程内容与预期不符 (changed my mind)"})
    rec.result(student, 'order.sync', {'number': ids['unpaid']})
    # A manual order is paid by hand: the answer an Alipay order gets is
    # its cashier page {"url": ...}
    rec.error(student, 'order.pay', {'number': ids['unpaid']},
        'order.pay_method')
    rec.result(student, 'order.cancel', {'number': ids['unpaid']})
    rec.result(student, 'enrollment.list')

    # The demo student has paid the degree program, without form yet
    enrollment = rec.result(student, 'degree.mine')[0]['enrollment']
    rec.result(student, 'degree.form.submit', {
            'enrollment': enrollment, 'company_name': "上海某科技公司",
            'position': "运维工程师", 'salary': '15000', 'experience': '3',
            'study_plan': '2-3', 'open_first_module': True,
            'why_course': "想系统学习全栈开发。", 'why_us': "有导师批改作业。",
            'expectations': "一年内转岗为全栈工程师。"})
    homework = rec.result(student, 'degree.homework.list',
        {'enrollment': enrollment})
    rec.result(student, 'degree.homework.submit', {
            'homework': homework[0]['homework'],
            'text': "仓库地址：https://git.example.com/zhang.wei/ledger"})
    rec.result(student, 'degree.homework.submit', {
            'homework': homework[1]['homework'],
            'attachment': {'name': "测试报告.txt",
                'data': "5rWL6K+V6KaG55uW546HIDkxJQ=="}}, document=False)

    # A program is bought on its own (not through the cart)
    rec.result(newcomer, 'checkout.preview', {
            'degree': ids['program'], 'degree_option': ids['program_option']},
        document=False)
    rec.result(newcomer, 'order.create', {
            'degree': ids['program'], 'degree_option': ids['program_option'],
            'pay_method': 'manual'}, document=False)
    rec.result(newcomer, 'coupon.claim', {'coupon': ids['qixi']})
    rec.result(newcomer, 'coupon.redeem', {'code': ids['code']})
    rec.result(newcomer, 'auth.logout')

    rec.batch(guest, [
            {'jsonrpc': '2.0', 'method': 'catalog.directions', 'id': 1},
            {'jsonrpc': '2.0', 'method': 'catalog.course',
                'params': {'id': 999999}, 'id': 2},
            {'jsonrpc': '2.0', 'method': 'catalog.course',
                'params': {'id': '7'}, 'id': 3},
            {'jsonrpc': '2.0', 'method': 'cart.get', 'id': 4},
            {'jsonrpc': '2.0', 'method': 'catalog.directions'},
            ], "A batch: a result, not found, invalid params, not "
        "authenticated, and a notification (no answer)")
    return rec, ids


# --- Masking -----------------------------------------------------------

class Masker:
    """Replace what changes from run to run by stable values: secrets by
    placeholders, datetimes moved to FIXED_NOW keeping their distance from
    the run's now (rounded to the hour), order numbers' date"""

    def __init__(self, now, secrets):
        self.now = now
        self.secrets = {s: m for s, m in secrets.items() if s}
        self.dates = {d.strftime('%Y%m%d'): FIXED_NOW.strftime('%Y%m%d')
            for d in [now, now.astimezone(
                    dt.timezone(dt.timedelta(hours=8)))]}

    def __call__(self, value, key=None):
        if isinstance(value, dict):
            return {k: self(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v, key) for v in value]
        if key == 'token' and isinstance(value, str):
            return '<token>'
        if key == 'timeout_seconds' and isinstance(value, int):
            return round(value / 3600) * 3600
        if isinstance(value, str):
            return self.text(value)
        return value

    def text(self, value):
        if ISO_DATETIME.match(value):
            return self.datetime(value)
        if ISO_DATE.match(value):
            return self.date(value)
        for secret, mask in self.secrets.items():
            value = value.replace(secret, mask)
        for actual, fixed in self.dates.items():
            value = re.sub(rf'\b{actual}(\d+)', rf'{fixed}\1', value)
        return value

    def date(self, value):
        "The date moved as far from FIXED_NOW's day as from today"
        days = (dt.date.fromisoformat(value)
            - self.now.astimezone(SHANGHAI).date()).days
        return (FIXED_NOW.astimezone(SHANGHAI).date()
            + dt.timedelta(days=days)).isoformat()

    def datetime(self, value):
        moment = dt.datetime.fromisoformat(value.replace('Z', '+00:00'))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.timezone.utc)
        hours = round((moment - self.now).total_seconds() / 3600)
        masked = (FIXED_NOW + dt.timedelta(hours=hours)).astimezone(
            moment.tzinfo)
        return masked.isoformat()


# --- Rendering ---------------------------------------------------------

def schema_type(schema, defs):
    "A short name of the JSON schema's type"
    if '$ref' in schema:
        return schema['$ref'].rsplit('/', 1)[-1]
    if 'anyOf' in schema:
        kinds = [schema_type(s, defs) for s in schema['anyOf']]
        nullable = 'null' in kinds
        kinds = [k for k in kinds if k != 'null']
        return ' or '.join(kinds) + (' or null' if nullable else '')
    if 'enum' in schema:
        return 'string: ' + ', '.join(map(str, schema['enum']))
    if 'const' in schema:
        return json.dumps(schema['const'])
    kind = schema.get('type', 'any')
    if kind == 'array':
        return f"list of {schema_type(schema.get('items', {}), defs)}"
    return kind


def bounds(schema):
    "The constraints of a param's schema, in words"
    if 'anyOf' in schema:
        return '; '.join(filter(None, (bounds(s) for s in schema['anyOf'])))
    words = []
    if 'minimum' in schema or 'maximum' in schema:
        words.append(
            f"{schema.get('minimum', '')}..{schema.get('maximum', '')}")
    if 'minLength' in schema or 'maxLength' in schema:
        words.append(f"{schema.get('minLength', 0)} to "
            f"{schema.get('maxLength', '')} characters")
    if 'maxItems' in schema:
        words.append(f"at most {schema['maxItems']} items")
    if 'pattern' in schema and schema.get('type') == 'string' and (
            'minLength' not in schema):
        words.append(f"matches ``{schema['pattern']}``")
    if 'items' in schema:
        inner = bounds(schema['items'])
        if inner:
            words.append(f"each {inner}")
    return '; '.join(words)


def params_rows(declared):
    from pydantic import TypeAdapter
    schema = TypeAdapter(declared.params).json_schema()
    defs = schema.get('$defs', {})
    required = set(schema.get('required', []))
    rows = []
    for name, prop in schema.get('properties', {}).items():
        notes = [PARAM_NOTES.get(f'{declared.name}:{name}')
            or PARAM_NOTES.get(name, '')]
        notes.append(bounds(prop))
        if 'default' in prop and prop['default'] is not None:
            notes.append(f"default {json.dumps(prop['default'])}")
        notes = [n for i, n in enumerate(notes) if n and n not in notes[:i]]
        rows.append([f'``{name}``', schema_type(prop, defs),
                'yes' if name in required else 'no', '; '.join(notes)])
    return rows


def result_rows(declared):
    "(path, type) of each field of the result, nested models flattened"
    from pydantic import TypeAdapter
    if declared.result is None:
        return []
    schema = TypeAdapter(declared.result).json_schema()
    defs = schema.get('$defs', {})
    rows = []

    def models_of(prop):
        if '$ref' in prop:
            return [prop['$ref'].rsplit('/', 1)[-1]], ''
        if prop.get('type') == 'array':
            names, suffix = models_of(prop.get('items', {}))
            return names, '[]' + suffix
        for option in prop.get('anyOf', []):
            names, suffix = models_of(option)
            if names:
                return names, suffix
        return [], ''

    def visit(model, prefix, seen):
        for name, prop in model.get('properties', {}).items():
            path = prefix + name
            rows.append((path, schema_type(prop, defs)))
            names, suffix = models_of(prop)
            for ref in names:
                if ref not in seen:
                    visit(defs[ref], path + suffix + '.', seen | {ref})
    if 'anyOf' in schema:
        for option in schema['anyOf']:
            ref = option['$ref'].rsplit('/', 1)[-1]
            rows.append((f'*either* {ref}', 'object'))
            visit(defs[ref], '', {ref})
    else:
        names, suffix = models_of(schema)
        if names:
            if suffix:
                rows.append(('(list)', f'list of {names[0]}'))
            visit(defs[names[0]], suffix + '.' if suffix else '',
                {names[0]})
        else:
            visit(schema, '', set())
    return rows


def table(headers, rows):
    "An RST list-table"
    lines = ['.. list-table::', '   :header-rows: 1', '']
    for row in [headers] + rows:
        first = True
        for cell in row:
            lines.append(('   * - ' if first else '     - ') + (cell or ' '))
            first = False
    return lines + ['']


def code(value):
    text = json.dumps(value, ensure_ascii=False, indent=2)
    return ['.. code-block:: json', ''] + [
        '   ' + line for line in text.splitlines()] + ['']


def abridge(method, response):
    "The rpc.discover answer is long: its first method and schema only"
    if method != 'rpc.discover' or 'result' not in response:
        return response
    result = dict(response['result'])
    result['methods'] = result['methods'][:1] + ['...']
    schemas = result['components']['schemas']
    first = next(iter(sorted(schemas)))
    result['components'] = {'schemas': {first: schemas[first], '...': '...'}}
    return dict(response, result=result)


def error_rows(declared):
    from trytond.modules.course_storefront.api.discover import error_types
    return [f"- ``{type_}`` ({code})"
        for code, type_ in error_types(declared)]


def heading(text, char):
    return [text, char * len(text), '']


def render(rec, mask):
    from trytond.modules.course_storefront.api.registry import METHODS
    missing = set(METHODS) - set(rec.examples)
    if missing:
        raise SystemExit(
            "No example of " + ', '.join(sorted(missing))
            + ": add a call to the walk of scripts/storefront_examples.py")
    lines = heading("Storefront API reference", '#')
    lines += [
        ".. Generated by scripts/storefront_examples.py --write from the",
        "   methods' declarations and a walk through the demo data: do not "
        "edit.",
        "",
        "Every method is called with a JSON-RPC 2.0 request POSTed to",
        "``/<database>/storefront`` (see :doc:`index` for the transport, "
        "the",
        "error codes and authentication).  Methods marked *token* need the",
        "header ``Authorization: Bearer <token>`` of ``auth.login`` or",
        "``auth.register``.  The examples are real answers of the demo "
        "data",
        "(student zhang.wei@example.com); tokens, codes, dates and order",
        "numbers are masked.",
        "",
        ]
    groups = {}
    for name in METHODS:
        groups.setdefault(name.split('.')[0], []).append(name)
    for group, names in groups.items():
        lines += heading(f"{group}.*", '=')
        for name in names:
            lines += method_section(METHODS[name], rec.examples[name], mask)
    lines += heading("Transport examples", '=')
    for title, request, answer, token in rec.transport:
        lines += heading(title, '-')
        lines += ["Request:", ""] + code(mask(request))
        lines += ["Response:", ""] + code(mask(answer))
    return '\n'.join(lines).rstrip('\n') + '\n'


def description(declared):
    "The first paragraph of the method's docstring (its summary is a line)"
    doc = inspect.getdoc(declared.func) or declared.summary
    paragraph = doc.split('\n\n')[0]
    return textwrap.fill(' '.join(paragraph.split()).rstrip('.') + '.', 76)


def method_section(declared, example, mask):
    lines = heading(f"``{declared.name}``", '-')
    lines += [description(declared), '']
    access = []
    access.append("token" if declared.auth else "public (no token)")
    access.append("read-only" if declared.readonly else "writes")
    if declared.requires:
        # The module of the model (this project's names: course.degree is
        # course_degree's)
        access.append("only where the module {} is activated".format(
                declared.requires.replace('.', '_')))
    lines += ["*" + ', '.join(access) + "*", ""]
    rows = params_rows(declared)
    if rows:
        lines += ["Params (by name):", ""]
        lines += table(['Name', 'Type', 'Required', 'Description'], rows)
    else:
        lines += ["Params: none (``{}`` or omitted).", ""]
    rows = result_rows(declared)
    if rows:
        lines += ["Result:", ""]
        lines += table(['Field', 'Type'], [
                [path if path.startswith('*') else f'``{path}``', kind]
                for path, kind in rows])
    else:
        lines += ["Result: an object, see the example.", ""]
    lines += ["Errors (``data.type`` and code):", ""]
    lines += error_rows(declared) + ['']
    header = (" (with ``Authorization: Bearer <token>``)"
        if example['token'] else "")
    lines += [f"Example request{header}:", ""]
    lines += code(mask(example['request']))
    abridged = abridge(declared.name, example['response'])
    lines += ["Response" + (" (abridged: its first method and schema)"
            if abridged != example['response'] else "") + ":", ""]
    lines += code(mask(abridged))
    return lines


# --- Main --------------------------------------------------------------

def generate():
    folder = tempfile.mkdtemp(prefix='storefront-examples-')
    try:
        now = dt.datetime.now(dt.timezone.utc)
        setup_database(folder)
        rec, ids = walk()
        mask = Masker(now, {ids['code']: '<code>'})
        return render(rec, mask)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main():
    args = parse_args()
    if not in_venv():
        # Run by the venv's python (a test, a worktree sharing a venv):
        # used as it is
        ensure_venv()
    text = generate()
    current = None
    if os.path.exists(DOC):
        with open(DOC, encoding='utf-8') as fp:
            current = fp.read()
    if args.write:
        os.makedirs(os.path.dirname(DOC), exist_ok=True)
        with open(DOC, 'w', encoding='utf-8') as fp:
            fp.write(text)
        print(f"Wrote {os.path.relpath(DOC, ROOT)}")
    elif current != text:
        sys.stdout.writelines(difflib.unified_diff(
                (current or '').splitlines(True), text.splitlines(True),
                os.path.relpath(DOC, ROOT), 'generated'))
        print(f"{os.path.relpath(DOC, ROOT)} is out of date: run "
            "python3 scripts/storefront_examples.py --write", file=sys.stderr)
        sys.exit(1)
    else:
        print(f"{os.path.relpath(DOC, ROOT)} is up to date")


if __name__ == '__main__':
    main()

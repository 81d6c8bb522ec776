"""rpc.discover: the OpenRPC 1.3 document of every method, built from the
same pydantic declarations that validate the calls"""
from pydantic import TypeAdapter

from .. import errors
from trytond.pool import Pool

from .registry import METHODS, Result, method

OPENRPC_VERSION = '1.3.2'
REF = '#/components/schemas/{model}'
TRANSPORT_ERRORS = [
    (errors.INVALID_PARAMS, 'params.invalid'),
    (errors.INTERNAL_ERROR, 'internal'),
    (errors.INTERNAL_ERROR, 'unavailable'),
    ]
AUTH_ERRORS = [(errors.NOT_AUTHENTICATED, 'auth.required')]
ERROR_CODES = {
    'not_found': errors.NOT_FOUND,
    }


class DiscoverResult(Result):
    openrpc: str


def schema_of(type_, schemas):
    "The JSON schema of a type, its models moved to the shared schemas"
    schema = TypeAdapter(type_).json_schema(ref_template=REF)
    for name, definition in schema.pop('$defs', {}).items():
        if schemas.setdefault(name, definition) != definition:
            raise ValueError(f"two storefront schemas named {name}")
    return schema


def params_of(declared, schemas):
    schema = schema_of(declared, schemas)
    required = set(schema.get('required', []))
    return [{
            'name': name,
            'required': name in required,
            'schema': property_,
            } for name, property_ in schema.get('properties', {}).items()]


def error_types(declared):
    """[(code, data.type)] of what the method may answer beside its result:
    the transport's, auth.required when it needs a token, busy when it
    writes (a lock not had after the retries) and its own"""
    pairs = list(TRANSPORT_ERRORS)
    if declared.auth:
        pairs += AUTH_ERRORS
    types = list(declared.errors)
    if not declared.readonly:
        types.append('busy')
    pairs += [(ERROR_CODES.get(t, errors.BUSINESS_RULE), t) for t in types]
    seen, result = set(), []
    for code, type_ in pairs:
        if type_ not in seen:
            seen.add(type_)
            result.append((code, type_))
    return result


def errors_of(declared):
    """The OpenRPC errors of the method: one per code (the spec wants them
    unique), its data.type slugs listed in data.types"""
    by_code = {}
    for code, type_ in error_types(declared):
        by_code.setdefault(code, []).append(type_)
    return [{
            'code': code,
            'message': errors.CODES[code],
            'data': {'types': types},
            } for code, types in by_code.items()]


def document(names=None):
    """The OpenRPC document of the methods of names (default all
    registered)"""
    schemas = {}
    methods = []
    for name, declared in METHODS.items():
        if names is not None and name not in names:
            continue
        if declared.result is None:
            result_schema = {'type': 'object'}
        else:
            result_schema = schema_of(declared.result, schemas)
        methods.append({
                'name': name,
                'summary': declared.summary,
                'paramStructure': 'by-name',
                'params': params_of(declared.params, schemas),
                'result': {'name': 'result', 'schema': result_schema},
                'errors': errors_of(declared),
                'x-authentication': 'bearer' if declared.auth else 'none',
                })
    return {
        'openrpc': OPENRPC_VERSION,
        'info': {
            'title': "Course storefront",
            'version': '8.0.0',
            'description': (
                "JSON-RPC 2.0 at POST /<database>/storefront. Methods marked "
                "x-authentication bearer need the header Authorization: "
                "Bearer <token from auth.login or auth.register>. Money is "
                "text with the currency's digits, datetimes ISO 8601 with "
                "offset. Errors carry data.type, a stable slug."),
            },
        'servers': [{'name': 'storefront', 'url': '/{database}/storefront',
                'variables': {'database': {'default': 'course_demo'}}}],
        'methods': methods,
        'components': {'schemas': schemas},
        }


# {the names of the methods available: their document}: the databases of
# a server with or without an optional module
_documents = {}


@method('rpc.discover', auth=False, readonly=True)
def discover(call, params):
    """The OpenRPC document of the storefront (the methods of the
    database's activated modules)"""
    pool = Pool()
    names = frozenset(n for n, m in METHODS.items() if m.available(pool))
    if names not in _documents:
        _documents[names] = document(names)
    return _documents[names]

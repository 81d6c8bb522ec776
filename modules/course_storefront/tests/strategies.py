"""Hypothesis strategies of storefront params, from each method's declared
params (its pydantic model's JSON schema): values of the declared shape,
near misses (bounds ±1, control characters, odd unicode), any JSON, and —
for the fuzz against a running server — real values drawn from the data
(course ids, order numbers, grant ids of this and other students)."""

# Texts that have broken text handling somewhere: CJK, emoji, RTL,
# combining marks, zero width, line separator, mathematical letters, BOM,
# LIKE wildcards, SQL, a lone surrogate
UNICODE = [
    "Python 入门", "😀🎓", "مرحبا", "e\u0301", "a\u200bb", "\u2028",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "\ufeff", "%_\\", "' OR 1=1 --", "\ud800",
    ]

# No params member at all in the call
ABSENT = object()


def methods():
    "[(name, Method)] of every registered storefront method"
    from trytond.modules.course_storefront.api import METHODS
    return sorted(METHODS.items())


def field_schemas(method):
    "{name: (JSON schema, required)} of the method's params"
    schema = method.params.model_json_schema()
    required = set(schema.get('required', []))
    return {name: (prop, name in required)
        for name, prop in schema.get('properties', {}).items()}


def alternatives(schema):
    return schema.get('anyOf', [schema])


def json_values():
    "Any JSON value, nested a little"
    from hypothesis import strategies as st
    leaves = (st.none() | st.booleans()
        | st.integers(min_value=-(2 ** 70), max_value=2 ** 70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=30))
    return st.recursive(leaves, lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=10), children, max_size=4)),
        max_leaves=8)


def schema_strategy(schema, real=None):
    """Values shaped by a param's JSON schema (valid ones and near misses);
    real: a strategy of values from the data, drawn as often as the rest"""
    from hypothesis import strategies as st
    options = []
    for option in alternatives(schema):
        kind = option.get('type')
        if kind == 'null':
            options.append(st.none())
        elif kind == 'boolean':
            options.append(st.booleans())
        elif kind == 'integer':
            low = option.get('minimum', -(2 ** 63))
            high = option.get('maximum', 2 ** 63)
            options.append(st.integers(min_value=low, max_value=high))
            options.append(st.integers(min_value=low - 2, max_value=low + 50))
            options.append(st.sampled_from([high, high + 1, 2 ** 63]))
        elif kind == 'string':
            if 'enum' in option:
                options.append(st.sampled_from(option['enum']))
            if 'pattern' in option:
                options.append(st.from_regex(option['pattern'],
                        fullmatch=True))
            options.append(st.text(
                    min_size=option.get('minLength', 0),
                    max_size=option.get('maxLength', 200)))
            # Control characters (NUL), and the texts of UNICODE
            options.append(st.text(
                    st.characters(max_codepoint=0x3f), max_size=5))
            options.append(st.sampled_from(UNICODE))
        elif kind == 'array':
            items = option['items']
            options.append(st.lists(schema_strategy(items, real=(
                            real.items if isinstance(real, ListOf)
                            else None)),
                    max_size=option.get('maxItems', 10) + 2))
    shaped = st.one_of(options + [json_values()])
    if real is None:
        return shaped
    if isinstance(real, ListOf):
        real = st.lists(real.items, min_size=1, max_size=3)
    return st.one_of(real, shaped)


class ListOf:
    "Real values for an array param: lists of these items"

    def __init__(self, items):
        self.items = items


def params_strategy(method, real=None):
    """Params of the method's shape with wrong values mixed in, or any
    JSON; real: {param name: strategy (or ListOf) of values from the
    data}, so that the calls also reach past the params' checks"""
    from hypothesis import strategies as st
    real = real or {}
    fields = field_schemas(method)

    def field(name, schema):
        return schema_strategy(schema, real.get(name))
    shaped = st.fixed_dictionaries(
        {f: field(f, s) for f, (s, r) in fields.items() if r},
        optional={f: field(f, s) for f, (s, r) in fields.items() if not r})
    with_extra = st.builds(
        lambda d, k, v: dict(d, **{k: v}), shaped,
        st.text(max_size=8), json_values())
    return st.one_of(
        shaped, shaped, with_extra, json_values(), st.just(ABSENT))

"""Declaring a storefront method once: its name, its params as a pydantic
model (which validates the call and gives the OpenRPC params), its result
model (the OpenRPC result, checked by the tests) and the error types it may
answer."""
from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic_core import PydanticCustomError

METHODS = {}


class Params(BaseModel):
    """Base of every method's params: by name, no unknown key, no coercion
    (a "1" is not an id)"""
    model_config = ConfigDict(extra='forbid', strict=True)

    @field_validator('*', mode='after')
    @classmethod
    def _no_nul(cls, value):
        # PostgreSQL refuses NUL in text: an invalid param, not an error of
        # the database
        if contains_nul(value):
            raise PydanticCustomError(
                'string_nul', "String should not contain NUL characters")
        return value


def contains_nul(value):
    if isinstance(value, str):
        return '\x00' in value
    if isinstance(value, (list, tuple)):
        return any(contains_nul(v) for v in value)
    if isinstance(value, dict):
        return any(contains_nul(v) for v in value.values())
    return False


class Result(BaseModel):
    "Base of the result models (documentation and tests only)"
    model_config = ConfigDict(extra='forbid')


class NoParams(Params):
    pass


@dataclass
class Method:
    name: str
    func: Callable
    params: type
    result: Any
    summary: str
    auth: bool = True
    readonly: bool = False
    errors: tuple = ()
    locks_party: bool = False
    locks_order: bool = False
    requires: str = None

    def available(self, pool):
        """Whether the method exists in the database of pool: a method of
        an optional module (`requires`, a model of it) exists only where
        that module is activated"""
        if self.requires is None:
            return True
        try:
            pool.get(self.requires)
        except KeyError:
            return False
        return True


def available_methods(pool):
    "{name: Method} of the methods that exist in the database of pool"
    return {n: m for n, m in METHODS.items() if m.available(pool)}


def method(name, params=NoParams, result=None, auth=True, readonly=False,
        errors=(), locks_party=False, locks_order=False, requires=None):
    """Register func(call, params) as the method name.

    auth: the call needs a student's token (call.user, call.party set).
    readonly: the call's transaction is read-only.
    errors: the data.type slugs the method may answer besides the
    transport's (documented in the OpenRPC document).
    locks_party: the call locks the student's party row; the dispatcher
    takes that lock when it starts the transaction, so the call does not
    restart for it.
    locks_order: the call locks the student's order of params.number; the
    dispatcher takes that lock at the start too once this process has
    answered that order (order.create, order.list, order.get).
    requires: a model of the optional module the method serves (an
    extras_depend of course_storefront, e.g. 'course.degree'); where that
    module is not activated the method does not exist (method_not_found,
    left out of rpc.discover)."""
    def decorator(func):
        summary = (func.__doc__ or '').strip().splitlines()[0:1]
        METHODS[name] = Method(
            name=name, func=func, params=params, result=result,
            summary=summary[0] if summary else name, auth=auth,
            readonly=readonly, errors=tuple(errors),
            locks_party=locks_party, locks_order=locks_order,
            requires=requires)
        return func
    return decorator


@dataclass
class Call:
    """What a method is given beside its params: the request, the student
    (web.user and party, when authenticated), the company it sells for,
    the language and the session token."""
    request: Any
    database: str
    language: str
    company: Any = None
    token: str = None
    user: Any = None
    party: Any = None
    after_response: list = field(default_factory=list)

    @property
    def currency(self):
        """The company's currency, its digits and rounding known without a
        query (course.tools.company_currency)"""
        from trytond.modules.course.tools import company_currency
        return company_currency(self.company)

    @property
    def remote_address(self):
        return self.request.remote_addr or ''

"""RPC entries that check the shape of a call before trytond uses it.

trytond's dispatcher turns the ids of the instantiated parameters into
records (``RPC(instantiate=…)``: buttons, ``write``, ``delete``, ``copy``,
the instance methods of the clients' forms) and then calls the method with
whatever JSON-RPC or XML-RPC carried.  A malformed id (``'x'``, ``1.5``,
``None``, ``-1``, ``10**30``, a string instead of a list) or a wrong number
of arguments is then a raw ``ValueError`` or ``TypeError`` (or a database
error, or an HTTP 422 for a repeated id): not a message the client can
show.  ``InputRPC.convert`` checks these before the dispatcher (or
proteus) uses them and raises ``InputError``, a translated ``UserError``,
which the dispatcher answers as any user error (nothing is written: the
transaction is rolled back).  Valid calls go through unchanged.

``RPCInputMixin``, a base of every model and wizard of the course
modules, turns the entries of ``__rpc__`` into ``InputRPC`` ones once the
class is set up; see ``doc/design.rst``.
"""
import inspect

from trytond.i18n import gettext
from trytond.rpc import RPC
from trytond.tools import is_instance_method
from trytond.transaction import Transaction
from trytond.wizard import StateView, Wizard

from .exceptions import InputError
from .tools import MAX_ID, _input_error, check_id, check_ids


def _parameter_names(func):
    "The names of the positional parameters of func, or None"
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return None
    return [p.name for p in parameters if p.kind in {
            p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD}]


def _expected(signature):
    """How many positional arguments signature takes, as a language-neutral
    text: '2', '1–3' or '≥ 2'"""
    parameters = signature.parameters.values()
    positional = [p for p in parameters if p.kind in {
            p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD}]
    minimum = len([p for p in positional if p.default is p.empty])
    if any(p.kind == p.VAR_POSITIONAL for p in parameters):
        return f'≥ {minimum}'
    if minimum == len(positional):
        return str(minimum)
    return f'{minimum}–{len(positional)}'


class InputRPC(RPC):
    """An RPC entry that refuses a call with InputError when:

    * its arguments do not bind to the signature of the method (too many,
      too few, an unknown keyword);
    * an instantiated argument of a class method is not a list of record
      ids (int, not bool, 1 to MAX_ID), or repeats an id when the entry
      wants them unique;
    * the instantiated argument of an instance method (on_change,
      pre_validate, the fields' methods…) is neither a record id, a list of
      them nor the values of a record (a dict of its field names, id
      optional, new records negative);
    * an argument of `params` ({position: kind}) is not of its kind:
      'ids' (a list of record ids), 'id' (a record id), 'wizard_state' (the
      name of a state of the wizard), 'wizard_data' (the values of the
      wizard's forms: {state: {field: value}}).

    The other options of the entry it was made from are kept.
    """
    __slots__ = ('method', 'params')

    KINDS = {'ids', 'id', 'wizard_state', 'wizard_data'}

    def __init__(self, rpc, method, params=None):
        super().__init__()
        for name in RPC.__slots__:
            setattr(self, name, getattr(rpc, name))
        self.method = method
        self.params = dict(params or {})
        assert set(self.params.values()) <= self.KINDS, self.params

    def convert(self, obj, *args, **kwargs):
        if 'context' in kwargs:
            context = kwargs['context']
            positional = list(args)
        else:
            context = args[-1] if args else None
            positional = list(args[:-1])
        # Without a context dictionary trytond answers with HTTP 422
        if isinstance(context, dict):
            keywords = {k: v for k, v in kwargs.items() if k != 'context'}
            language = context.get('language')
            with Transaction().set_context(
                    language=language if isinstance(language, str)
                    else None):
                self.check(obj, positional, keywords)
        return super().convert(obj, *args, **kwargs)

    def check(self, obj, args, kwargs):
        "Raise InputError unless args and kwargs suit the method of obj"
        func = getattr(obj, self.method)
        self.check_arguments(obj, func, args, kwargs)
        names = _parameter_names(func) or []

        def name(position):
            "The parameter's name for the message"
            if position >= len(names):
                return 'records'  # write(records, values, records, …)
            return 'record' if names[position] == 'self' else names[position]

        for position in self.instantiated(len(args)):
            if position >= len(args):
                self.raise_arguments(obj, func, args, kwargs)
            if is_instance_method(obj, self.method):
                self.check_record(obj, args[position], name(position))
            else:
                self.check_ids(args[position], name(position))
        for position, kind in self.params.items():
            if position < len(args):
                self.check_kind(obj, args[position], kind, name(position))

    def instantiated(self, length):
        "The positions of the instantiated arguments of a call of length"
        if self.instantiate is None:
            return []
        if isinstance(self.instantiate, slice):
            return list(range(*self.instantiate.indices(length)))
        return [self.instantiate]

    def check_arguments(self, obj, func, args, kwargs):
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError):
            return
        try:
            signature.bind(*args, **kwargs)
        except TypeError:
            self.raise_arguments(obj, func, args, kwargs)

    def raise_arguments(self, obj, func, args, kwargs):
        try:
            expected = _expected(inspect.signature(func))
        except (TypeError, ValueError):
            expected = '?'
        raise InputError(gettext(
                'course.msg_input_arguments',
                method=f'{obj.__name__}.{self.method}',
                count=len(args) + len(kwargs), expected=expected))

    def check_ids(self, value, name):
        "value must be a list of record ids (distinct when unique)"
        ids = check_ids(value, name)
        if self.unique and len(set(ids)) != len(ids):
            raise _input_error(
                name, value, 'course.msg_input_kind_distinct_ids')

    def check_record(self, Model, value, name):
        """value must be a record of an instance method: its id, a list of
        ids or the values of its fields"""
        if isinstance(value, (list, tuple)):
            self.check_ids(value, name)
        elif isinstance(value, dict):
            check_values(Model, value, name)
        elif isinstance(value, int) and not isinstance(value, bool):
            check_id(value, name)
        else:
            raise _input_error(name, value, 'course.msg_input_kind_record')

    def check_kind(self, obj, value, kind, name):
        if kind == 'ids':
            check_ids(value, name)
        elif kind == 'id':
            check_id(value, name)
        elif kind == 'wizard_state':
            if not isinstance(value, str) or (
                    value not in obj.states and value != obj.end_state):
                raise _input_error(
                    name, value, 'course.msg_input_kind_wizard_state')
        elif kind == 'wizard_data':
            check_wizard_data(obj, value, name)


def check_values(Model, values, name):
    """values must be the values of a record of Model as the clients send
    them to an instance method: field names (or '_parent_<field>.<name>'
    for the values of a Many2One's record), 'id' None or an int (negative
    for a record not saved yet)"""
    def refuse(value):
        raise _input_error(name, value, 'course.msg_input_kind_record')
    parents = {}
    for key, value in values.items():
        if not isinstance(key, str):
            refuse(key)
        if key == 'id':
            if value is not None and (isinstance(value, bool)
                    or not isinstance(value, int)
                    or not -MAX_ID <= value <= MAX_ID):
                refuse(values)
        elif key.startswith('_parent_'):
            field, _, sub = key[len('_parent_'):].partition('.')
            if field not in Model._fields or not sub:
                refuse(key)
            parents.setdefault(field, {})[sub] = value
        elif key not in Model._fields:
            refuse(key)
    for field, sub_values in parents.items():
        get_target = getattr(Model._fields[field], 'get_target', None)
        if get_target is None:
            refuse(f'_parent_{field}')
        check_values(get_target(), sub_values, name)


def check_wizard_data(Wizard, data, name):
    """data must be what a client sends to Wizard.execute: {name of a
    form state: {field name: value}} (the values are the wizard's to check:
    trytond sets them on the form's record)"""
    if not isinstance(data, dict):
        raise _input_error(name, data, 'course.msg_input_kind_dict')
    for state_name, values in data.items():
        state = Wizard.states.get(state_name) if isinstance(
            state_name, str) else None
        if not isinstance(state, StateView):
            raise _input_error(
                name, state_name, 'course.msg_input_kind_wizard_state')
        if not isinstance(values, dict) or not all(
                isinstance(k, str) for k in values):
            raise _input_error(name, values, 'course.msg_input_kind_dict')


class RPCInputMixin:
    """Check the input of every RPC entry of the class (see InputRPC).

    Put it first in the bases of a model or wizard: the entries are
    converted in __post_setup__, after ModelView has added the buttons'
    and the fields' methods.  Classes extending the model in other modules
    (metaclass=PoolMeta) inherit it.  _rpc_input_params gives the
    parameters that trytond uses as they come, of methods without
    instantiate: {method: {position: kind}} (see InputRPC.params).
    """
    __slots__ = ()
    _rpc_input_params = {
        'read': {0: 'ids'},
        'history_revisions': {0: 'ids'},
        }
    _rpc_input_wizard_params = {
        'delete': {0: 'id'},
        'execute': {0: 'id', 1: 'wizard_data', 2: 'wizard_state'},
        }

    @classmethod
    def __post_setup__(cls):
        super().__post_setup__()
        params = (cls._rpc_input_wizard_params if issubclass(cls, Wizard)
            else cls._rpc_input_params)
        for name, rpc in list(cls.__rpc__.items()):
            if type(rpc) is RPC:
                cls.__rpc__[name] = InputRPC(rpc, name, params.get(name))

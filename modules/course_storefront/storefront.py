"The storefront's own tables and its hook on ir.message"

from sql.aggregate import Count
from sql.conditionals import Coalesce

from trytond.model import Index, ModelSQL, Unique, fields
from trytond.modules.course.rpc import RPCInputMixin
from trytond.pool import PoolMeta
from trytond.transaction import Transaction


class Message(metaclass=PoolMeta):
    __name__ = 'ir.message'

    @classmethod
    def gettext(cls, *args, **variables):
        # The storefront answers a refusal with the slug of its message
        from .jsonrpc import record_message
        text = super().gettext(*args, **variables)
        module, message_id = args[0], args[1]
        record_message(f'{module}.{message_id}', text)
        return text


class Company(metaclass=PoolMeta):
    __name__ = 'company.company'

    @classmethod
    def on_modification(cls, mode, records, field_names=None):
        super().on_modification(mode, records, field_names=field_names)
        if mode in {'create', 'delete'}:
            # The storefront sells for the only company (session.py)
            from .session import clear_storefront_company
            clear_storefront_company()


class Cart(RPCInputMixin, ModelSQL):
    """Storefront Cart Item: the cart of a student when no Redis is
    configured; only the storefront reads and writes it"""
    __name__ = 'course.storefront.cart'

    user = fields.Many2One(
        'web.user', "User", required=True, ondelete='CASCADE')
    course = fields.Many2One(
        'course.course', "Course", required=True, ondelete='CASCADE')
    option = fields.Many2One(
        'course.course.option', "Option", ondelete='SET NULL')
    selected = fields.Boolean("Selected")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__rpc__ = {}
        table = cls.__table__()
        cls._sql_constraints += [
            ('user_course_unique', Unique(table, table.user, table.course),
                'course_storefront.msg_cart_unique'),
            ]
        cls._sql_indexes.add(
            Index(table, (table.user, Index.Equality())))


class Attempt(RPCInputMixin, ModelSQL):
    """Storefront Attempt: a login or register attempt, counted by key (an
    e-mail or a client address) when no Redis is configured"""
    __name__ = 'course.storefront.attempt'

    key = fields.Char("Key", required=True, strip=False)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__rpc__ = {}
        table = cls.__table__()
        cls._sql_indexes.add(
            Index(table, (table.key, Index.Equality()),
                (table.create_date, Index.Range())))

    @classmethod
    def hit(cls, keys, since):
        """Record one attempt for each key and return {key: attempts since
        the datetime}, the old ones deleted"""
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.delete(where=table.create_date < since))
        cls.create([{'key': k} for k in keys])
        cursor.execute(*table.select(
                table.key, Count(table.id),
                where=table.key.in_(list(keys))
                & (Coalesce(table.create_date, since) >= since),
                group_by=[table.key]))
        return dict(cursor)



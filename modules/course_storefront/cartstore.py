"""Where carts live, behind one interface: Redis when `[course] redis` is
configured (one hash per student: course → option, selected flag and when
added; a TTL refreshed on use; no KEYS scans), else the table
course.storefront.cart.  A Redis that fails makes the cart calls answer
`cart.unavailable`; nothing else depends on it."""
import time
from collections import namedtuple

from trytond.config import config
from trytond.i18n import gettext
from trytond.modules.course.tools import after_commit
from trytond.pool import Pool

from . import redis_client
from .errors import refused

CartItem = namedtuple('CartItem', ['course', 'option', 'selected'])


def cart_store(call):
    client = redis_client.client()
    if client is not None:
        return RedisCart(client, call.database)
    return DatabaseCart()


def unavailable():
    return refused(
        'cart.unavailable', gettext('course_storefront.msg_cart_unavailable'))


class DatabaseCart:

    @property
    def model(self):
        return Pool().get('course.storefront.cart')

    def items(self, user):
        rows = self.model.search(
            [('user', '=', user.id)], order=[('id', 'ASC')])
        return [CartItem(
                r.course.id, r.option.id if r.option else None,
                bool(r.selected)) for r in rows]

    def _rows(self, user, courses=None):
        domain = [('user', '=', user.id)]
        if courses is not None:
            domain.append(('course', 'in', list(courses)))
        return self.model.search(domain)

    def put(self, user, course, option, selected=True):
        rows = self._rows(user, [course])
        if rows:
            self.model.write(rows, {'option': option, 'selected': selected})
        else:
            self.model.create([{
                        'user': user.id, 'course': course, 'option': option,
                        'selected': selected}])

    def remove(self, user, courses, after_commit_only=False):
        self.model.delete(self._rows(user, courses))

    def select(self, user, courses, selected):
        "Set the flag of the courses (all when None)"
        rows = self._rows(user, courses)
        if rows:
            self.model.write(rows, {'selected': selected})

    def set_option(self, user, course, option):
        self.model.write(self._rows(user, [course]), {'option': option})


class RedisCart:

    def __init__(self, client, database):
        self.client = client
        self.database = database

    def key(self, user):
        return redis_client.key(self.database, 'cart', user.id)

    @staticmethod
    def ttl():
        return config.getint(
            'course', 'cart_ttl', default=30 * 24 * 60 * 60)

    @staticmethod
    def encode(option, selected, added):
        return f'{option or 0}:{int(bool(selected))}:{added}'

    @staticmethod
    def decode(course, value):
        option, selected, added = value.split(':')
        return int(added), CartItem(
            int(course), int(option) or None, selected == '1')

    def _run(self, func):
        import redis
        try:
            return func()
        except redis.RedisError as error:
            raise unavailable() from error

    def _raw(self, user):
        key = self.key(user)

        def read():
            pipe = self.client.pipeline()
            pipe.hgetall(key)
            pipe.expire(key, self.ttl())
            return pipe.execute()[0]
        return self._run(read)

    def _decoded(self, user):
        items = []
        for course, value in self._raw(user).items():
            try:
                items.append(self.decode(course, value))
            except ValueError:
                continue
        return items

    def items(self, user):
        return [item for _, item in sorted(self._decoded(user))]

    def _write(self, user, mapping):
        key = self.key(user)

        def write():
            pipe = self.client.pipeline()
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, self.ttl())
            pipe.execute()
        if mapping:
            self._run(write)

    def put(self, user, course, option, selected=True):
        added = {i.course: a for a, i in self._decoded(user)}.get(
            course, time.time_ns())
        self._write(user, {course: self.encode(option, selected, added)})

    def remove(self, user, courses, after_commit_only=False):
        key = self.key(user)
        courses = list(courses)

        def delete():
            self.client.hdel(key, *courses)
        if not courses:
            return
        if after_commit_only:
            # Once the order is committed; a Redis failure then leaves the
            # items in the cart, where the student can remove them
            def safe_delete():
                import redis
                try:
                    delete()
                except redis.RedisError:
                    pass
            after_commit(safe_delete)
        else:
            self._run(delete)

    def select(self, user, courses, selected):
        items = self._decoded(user)
        self._write(user, {
                i.course: self.encode(i.option, selected, a)
                for a, i in items
                if courses is None or i.course in courses})

    def set_option(self, user, course, option):
        self._write(user, {
                i.course: self.encode(option, i.selected, a)
                for a, i in self._decoded(user) if i.course == course})

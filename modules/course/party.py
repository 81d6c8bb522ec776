"Students: the parties who hold what the course modules record for them"
from sql import Union

from trytond.model import fields
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction

from .tools import clear_company_currencies, clear_company_languages


class Party(metaclass=PoolMeta):
    __name__ = 'party.party'
    enrollments = fields.One2Many(
        'course.enrollment', 'party', "Enrollments", readonly=True)
    is_student = fields.Function(fields.Boolean(
            "Student",
            help="Holds enrollments, orders or ledger movements "
            "(in the current company)."),
        'get_is_student', searcher='search_is_student')

    @classmethod
    def _student_queries(cls, company):
        """The queries (python-sql) selecting the ids, as `party`, of the
        parties who hold records of company (None: of any company).

        Each module adds the tables of what it records for a student with
        super(): course the enrollments, course_order the orders,
        course_credit the ledgers."""
        Enrollment = Pool().get('course.enrollment')
        enrollment = Enrollment.__table__()
        where = enrollment.company == company if company else None
        return [enrollment.select(enrollment.party, where=where)]

    @classmethod
    def _student_query(cls):
        "One query of the ids of the students of the context company"
        company = Transaction().context.get('company')
        return Union(*cls._student_queries(company))

    @classmethod
    def get_is_student(cls, parties, name):
        students = set(cls.search([
                    ('id', 'in', [p.id for p in parties]),
                    ('is_student', '=', True),
                    ]))
        return {p.id: p in students for p in parties}

    @classmethod
    def search_is_student(cls, name, clause):
        _, operator, value = clause[:3]
        if operator not in {'=', '!='} or value not in {True, False, None}:
            return []  # any other comparison of a Boolean: no condition
        wanted = bool(value) == (operator == '=')
        return [('id', 'in' if wanted else 'not in', cls._student_query())]

    @classmethod
    def copy(cls, parties, default=None):
        "A copy of a party is another person: none of their enrollments"
        default = default.copy() if default is not None else {}
        default.setdefault('enrollments', None)
        return super().copy(parties, default=default)


class PartyLang(metaclass=PoolMeta):
    __name__ = 'party.party.lang'

    @classmethod
    def on_modification(cls, mode, records, field_names=None):
        super().on_modification(mode, records, field_names=field_names)
        # A company's language is the language of its party: only those
        # clear the cache (a student registering sets a language too)
        Company = Pool().get('company.company')
        parties = list({r.party.id for r in records if r.party})
        if parties and Company.search(
                [('party', 'in', parties)], limit=1, order=[]):
            clear_company_languages()


class Company(metaclass=PoolMeta):
    __name__ = 'company.company'

    @classmethod
    def on_modification(cls, mode, records, field_names=None):
        super().on_modification(mode, records, field_names=field_names)
        if mode != 'create' and (not field_names or 'party' in field_names):
            clear_company_languages()
        if mode != 'create' and (
                not field_names or 'currency' in field_names):
            clear_company_currencies()


class Currency(metaclass=PoolMeta):
    __name__ = 'currency.currency'

    @classmethod
    def on_modification(cls, mode, records, field_names=None):
        super().on_modification(mode, records, field_names=field_names)
        # Its digits and rounding are kept for the companies using it
        if mode != 'create':
            clear_company_currencies()

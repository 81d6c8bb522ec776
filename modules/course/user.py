"Staff users speak their company's language from the start"
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction

from .tools import company_lang


class User(metaclass=PoolMeta):
    __name__ = 'res.user'

    @classmethod
    def default_language(cls):
        """The language of the company the user is created in (the
        creator's current company) when translations of it are loaded:
        without it a new user of a Chinese school would start in the
        database's language (English)"""
        Company = Pool().get('company.company')
        company = Transaction().context.get('company')
        lang = company_lang(Company(company)) if company else None
        if lang and lang.translatable:
            return lang.id

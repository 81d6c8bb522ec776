"Helpers for the tests of course_degree and of the modules built on it"
from decimal import Decimal

from trytond.modules.course.tests.tools import create_catalog
from trytond.pool import Pool

# A registration form that passes every check
FORM = {
    'company_name': "Acme",
    'position': "Developer",
    'salary': Decimal('12000'),
    'experience': '3',
    'open_first_module': True,
    'preferred_mentor': "Alex",
    'study_plan': '2-3',
    'why_course': "To learn Python well.",
    'why_us': "Good mentors.",
    'expectations': "A better job.",
    'memo': None,
    }


def create_degree(company, published=True, price='9000'):
    """Create a catalog (create_catalog) and a program of its three courses
    as modules: A (2 homework of 7 and 10 days), B (1 of 3 days), C (1 of
    0 days); a one-year option at 7000.  Return the catalog namespace with
    `degree`, `option`, `modules` and `homeworks` (by module)."""
    pool = Pool()
    Degree = pool.get('course.degree')
    cat = create_catalog(company)
    degree, = Degree.create([{
                'name': "Python Developer",
                'company': company.id,
                'price': Decimal(price),
                'published': published,
                'options': [('create', [{
                                'name': "One year", 'days': 365,
                                'price': Decimal('7000')}])],
                'modules': [('create', [
                            {'course': cat.course_a.id, 'sequence': 1,
                                'homeworks': [('create', [
                                            {'name': "A1", 'days': 7,
                                                'sequence': 1},
                                            {'name': "A2", 'days': 10,
                                                'sequence': 2}])]},
                            {'course': cat.course_b.id, 'sequence': 2,
                                'homeworks': [('create', [
                                            {'name': "B1", 'days': 3}])]},
                            {'course': cat.course_c.id, 'sequence': 3,
                                'homeworks': [('create', [
                                            {'name': "C1", 'days': 0}])]},
                            ])],
                }])
    cat.degree = degree
    cat.option, = degree.options
    cat.modules = degree.ordered_modules
    return cat


def buy_degree(party, degree, option=None, pay=True, **options):
    "Check out the program for party (manual payment, confirmed by default)"
    Order = Pool().get('course.order')
    order = Order.checkout(party.id, [{
                'degree': degree.id,
                'option': option.id if option else None}], 'manual', options)
    if pay:
        Order.confirm_payment([order])
    return order


def enrollment_of(party, degree):
    Enrollment = Pool().get('course.degree.enrollment')
    enrollment, = Enrollment.search([
            ('party', '=', party.id), ('degree', '=', degree.id)])
    return enrollment


def create_mentor(login, company, admin=False):
    "A user of company in the group Course Mentor (and degree admin)"
    pool = Pool()
    User = pool.get('res.user')
    ModelData = pool.get('ir.model.data')
    groups = [ModelData.get_id('course_degree', 'group_mentor')]
    if admin:
        groups.append(ModelData.get_id('course_degree', 'group_degree_admin'))
    user, = User.create([{
                'name': login.title(), 'login': login,
                'companies': [('add', [company.id])], 'company': company.id,
                'groups': [('add', groups)],
                }])
    return user


def set_mentor(enrollment, mentor):
    """Set the mentor of the enrollment as the assign wizard does (the
    mentor part of the module): a raw write, for the tests of grading"""
    Enrollment = Pool().get('course.degree.enrollment')
    Enrollment.write([enrollment], {'mentor': mentor.id})

from trytond.modules.company.tests import CompanyTestMixin
from trytond.tests.test_tryton import ModuleTestCase


class CourseDegreeTestCase(CompanyTestMixin, ModuleTestCase):
    "Test Course Degree module"
    module = 'course_degree'
    extras = ['course_coupon', 'course_credit']


del ModuleTestCase

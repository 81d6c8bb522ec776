"The module installs; its own tables are out of the clients' reach"
from trytond.modules.company.tests import CompanyTestMixin
from trytond.tests.test_tryton import ModuleTestCase


class CourseStorefrontTestCase(CompanyTestMixin, ModuleTestCase):
    "Test Course Storefront module"
    module = 'course_storefront'


del ModuleTestCase

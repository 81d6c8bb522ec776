"""Packaging of the course-commerce suite.

Every folder under ``modules/`` holding a ``tryton.cfg`` is installed as the
Tryton module ``trytond.modules.<folder>`` and registered under the
``trytond.modules`` entry point, so adding a module needs no change here.
"""
import configparser
import os

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
MODULES_DIR = 'modules'
SERIES = (8, 0)


def tryton_modules():
    "Yield the names of the folders under modules/ that are Tryton modules"
    for name in sorted(os.listdir(os.path.join(HERE, MODULES_DIR))):
        if os.path.isfile(
                os.path.join(HERE, MODULES_DIR, name, 'tryton.cfg')):
            yield name


def module_packages(name):
    "Return {package: directory} for a module and its sub-packages"
    root = os.path.join(MODULES_DIR, name)
    packages = {}
    for dirpath, dirnames, filenames in os.walk(os.path.join(HERE, root)):
        dirnames[:] = [d for d in dirnames if d != '__pycache__']
        if '__init__.py' not in filenames:
            continue
        relative = os.path.relpath(dirpath, os.path.join(HERE, root))
        package = 'trytond.modules.' + name
        if relative != '.':
            package += '.' + relative.replace(os.sep, '.')
        packages[package] = os.path.relpath(dirpath, HERE)
    return packages


def official_depends(names):
    "Return the requirements of the official modules our modules depend on"
    ours = set(names)
    depends = set()
    for name in names:
        config = configparser.ConfigParser()
        config.read(os.path.join(HERE, MODULES_DIR, name, 'tryton.cfg'))
        for dep in config.get('tryton', 'depends', fallback='').split():
            if dep not in ours and dep not in {'ir', 'res'}:
                depends.add(dep)
    major, minor = SERIES
    return sorted(
        f'trytond_{d}>={major}.{minor},<{major}.{minor + 1}' for d in depends)


MODULES = list(tryton_modules())
PACKAGE_DIR = {}
for module in MODULES:
    PACKAGE_DIR.update(module_packages(module))
DATA = ['tryton.cfg', '*.xml', 'view/*.xml', 'locale/*.po', 'icons/*.svg',
    '*.fodt', '*.odt', 'tests/*.rst', 'tests/*.json', 'doc/*.rst']

setup(
    name='course-commerce',
    version='8.0.0',
    description='Course commerce for online schools, as Tryton modules',
    long_description=open(os.path.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    license='GPL-3.0-or-later',
    python_requires='>=3.11',
    package_dir=PACKAGE_DIR,
    packages=list(PACKAGE_DIR),
    package_data={f'trytond.modules.{m}': DATA for m in MODULES},
    install_requires=[
        'trytond[postgresql]>=8.0,<8.1',
        # The C build of psycopg 3, trytond 8.0's PostgreSQL driver
        'psycopg[binary]>=3.2',
        'proteus>=8.0,<8.1',
        'trytond_party>=8.0,<8.1',
        'trytond_company>=8.0,<8.1',
        'trytond_currency>=8.0,<8.1',
        'trytond_web_user>=8.0,<8.1',
        'redis>=5',
        'python-alipay-sdk>=3.3',
        # course_payment_wechat sets the SDK's private gateway attribute
        'wechatpayv3==2.0.*',
        'relatorio>=0.10',
        # The storefront's declared params and its OpenRPC document
        'pydantic>=2.5,<3',
        ] + official_depends(MODULES),
    extras_require={
        'test': ['playwright>=1.40', 'hypothesis>=6', 'jsonschema>=4'],
        },
    entry_points={
        'trytond.modules': [
            f'{m} = trytond.modules.{m}' for m in MODULES],
        },
    zip_safe=False,
    )

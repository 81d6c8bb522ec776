"""The demo data, loaded by scripts/demo.py through proteus.

Convention: one file per project module, named like the module
(``course.py``, ``course_order.py``, ``course_coupon.py``,
``course_credit.py``...), holding a function ``load()`` without argument.
``load(module_names)`` below calls the ``load()`` of each module that is
activated, in module dependency order (a module's data after the data of
the modules it depends on), so a loader may find the records of the loaders
before it (e.g. ``course_order`` finds the company and the courses).

A loader runs against the proteus configuration already set (trytond mode,
user admin) and must be idempotent: demo.py runs it again on an existing
database after an update, so it creates only what is missing (look records
up by name, code or login first) and never fails because its data is
already there.

The logins the demo prints are kept here, in ``LOGINS`` (staff) and
``STUDENT_LOGINS`` (Storefront API students); a loader that creates users
takes their password from them.
"""
import configparser
import contextlib
import importlib
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
MODULES_DIR = os.path.join(ROOT, 'modules')

# login: (password, description). admin's password is set by trytond-admin
# (TRYTONPASSFILE) when demo.py creates the database.
ADMIN_LOGIN = 'admin'
ADMIN_PASSWORD = 'admin'
ADMIN_EMAIL = 'admin@example.com'
LOGINS = {
    ADMIN_LOGIN: (ADMIN_PASSWORD, "administrator (every access)"),
    'manager': ('manager-demo', "group Course Administration"),
    'sales': ('sales-demo', "group Course Sales"),
    'mentor': ('mentor-demo', "group Course Mentor (degree homework)"),
    }
# The students who log in to the Storefront API (course_storefront's demo
# data makes their web users): e-mail: (password, description)
STUDENT_LOGINS = {
    'zhang.wei@example.com': ('student-demo', "student 张伟"),
    }


def password(login):
    "Return the demo password of login"
    return LOGINS[login][0]


@contextlib.contextmanager
def as_root():
    """Make the proteus calls inside internal ones (user 0, root).

    The loaders run as admin, whose calls are a user's: those that write
    what only the workflow may write (a deadline that has passed) are
    refused, as they would be for any user.  Demo data that stands for the
    passing of time is written as root, the way the workflow writes it;
    enrollments never are: they come from paid orders and gifts, so the
    audits find them explained."""
    from proteus.config import get_config
    config = get_config()
    user = config.user
    config.user = 0
    try:
        yield
    finally:
        config.user = user


def project_modules():
    """Return the names of the project's Tryton modules (folders under
    modules/ with a tryton.cfg) in dependency order"""
    depends = {}
    for name in sorted(os.listdir(MODULES_DIR)):
        cfg = os.path.join(MODULES_DIR, name, 'tryton.cfg')
        if not os.path.isfile(cfg):
            continue
        parser = configparser.ConfigParser()
        parser.read(cfg)
        depends[name] = set(
            parser.get('tryton', 'depends', fallback='').split())
    ordered = []

    def visit(name, path=()):
        if name in ordered:
            return
        if name in path:
            raise ValueError(f"Circular module dependency: {path + (name,)}")
        for dep in sorted(depends[name] & depends.keys()):
            visit(dep, path + (name,))
        ordered.append(name)
    for name in depends:
        visit(name)
    return ordered


def load(module_names):
    """Load the demo data of the activated project modules.

    module_names: the names of the activated modules (others are ignored).
    """
    activated = set(module_names)
    for name in project_modules():
        if name not in activated:
            continue
        try:
            loader = importlib.import_module(f'{__name__}.{name}')
        except ModuleNotFoundError as error:
            if error.name != f'{__name__}.{name}':
                raise
            print(f"  {name}: no demo data", flush=True)
            continue
        print(f"  {name}: loading the demo data", flush=True)
        loader.load()

"""Demo data of the module course: the company, the catalog, a running price
activity, the staff users, students and a gift.

Idempotent: every record is looked up first (company and currency by name
and code, catalog records by name, users by login, students by e-mail,
gifts by student and course) and created only when missing.
"""
import datetime as dt
from decimal import Decimal

from proteus import Model, Wizard
from proteus.config import get_config

from . import password

COMPANY_NAME = "Luffy Online School"
TIMEZONE = 'Asia/Shanghai'
# The school's language: new staff users get it (course's res.user
# default), and the texts the modules store for it are written in it
LANGUAGE = 'zh_CN'
ACTIVITY_NAME = "新课限时优惠"

# direction: [category, ...]
DIRECTIONS = [
    ("Python 开发", ["Web 开发", "自动化运维"]),
    ("人工智能", ["机器学习", "深度学习"]),
    ("前端开发", ["Vue.js", "微信小程序"]),
    ]

MONTH = ("一个月有效", 30)
QUARTER = ("三个月有效", 90)
YEAR = ("一年有效", 365)
FOREVER = ("永久有效", 0)

# (name, direction, category, price, credit, published, description,
#  [(option, days, price), ...])
COURSES = [
    ("Python 零基础入门", "Python 开发", "Web 开发", '0', 0, True,
        "从安装解释器到写出第一个小程序，免费体验课。", []),
    ("Django 企业级项目实战", "Python 开发", "Web 开发", '1280', 200, True,
        "以路飞学城为原型，完成一个在线教育商城。",
        [MONTH + ('199',), QUARTER + ('499',), FOREVER + ('1280',)]),
    ("Flask 轻量级 Web 开发", "Python 开发", "Web 开发", '699', 100, True,
        "用 Flask 写 REST API 和后台管理。",
        [MONTH + ('99',), FOREVER + ('699',)]),
    ("Linux 自动化运维", "Python 开发", "自动化运维", '899', 100, True,
        "Ansible、SaltStack 与 Python 运维脚本。",
        [QUARTER + ('399',), FOREVER + ('899',)]),
    ("Docker 与 Kubernetes 实战", "Python 开发", "自动化运维", '1099', 150,
        True, "容器化部署、编排与持续交付。", []),
    ("机器学习入门", "人工智能", "机器学习", '999', 100, True,
        "线性回归、决策树、支持向量机，配 scikit-learn 练习。",
        [MONTH + ('159',), YEAR + ('599',), FOREVER + ('999',)]),
    ("数据分析与可视化", "人工智能", "机器学习", '599', 50, True,
        "NumPy、pandas 与 Matplotlib。", []),
    ("深度学习与 PyTorch", "人工智能", "深度学习", '1680', 300, True,
        "从感知机到 Transformer。",
        [QUARTER + ('699',), FOREVER + ('1680',)]),
    ("计算机视觉项目实战", "人工智能", "深度学习", '1980', 300, False,
        "目标检测与图像分割（即将上线）。", []),
    ("Vue.js 从入门到精通", "前端开发", "Vue.js", '799', 100, True,
        "组件、路由、状态管理与工程化。",
        [MONTH + ('129',), FOREVER + ('799',)]),
    ("Vue 3 + TypeScript 商城前台", "前端开发", "Vue.js", '1199', 150,
        True, "为课程商城写一个完整的前台。", []),
    ("微信小程序开发", "前端开发", "微信小程序", '499', 50, True,
        "云开发与支付接入。",
        [MONTH + ('89',), FOREVER + ('499',)]),
    ("uni-app 跨端开发", "前端开发", "微信小程序", '599', 50, True,
        "一套代码发布到小程序、H5 与 App。", []),
    ]

# (course, method, value) of the running activity
ACTIVITY_LINES = [
    ("Flask 轻量级 Web 开发", 'free', None),
    ("机器学习入门", 'percentage', Decimal(80)),
    ("Vue.js 从入门到精通", 'reduction', Decimal(100)),
    ]

# (login, name, group xml id)
STAFF = [
    ('manager', "课程管理员 Manager", 'group_course_admin'),
    ('sales', "销售 Sales", 'group_course_sales'),
    ]

# (name, e-mail)
STUDENTS = [
    ("张伟", 'zhang.wei@example.com'),
    ("王芳", 'wang.fang@example.com'),
    ("李娜", 'li.na@example.com'),
    ("刘洋", 'liu.yang@example.com'),
    ("陈静", 'chen.jing@example.com'),
    ]

# (student e-mail, course, days of validity or None) of the gifts, given
# through the Give Course wizard; what the students bought before are paid
# orders of course_order's demo data (an enrollment comes from its
# workflow, so the audit of orders finds every one explained)
GIFTS = [
    ('li.na@example.com', "Vue.js 从入门到精通", None),
    ]


def load():
    currency = get_currency()
    company = get_company(currency)
    courses = load_catalog(company)
    load_activity(company, courses)
    load_staff(company)
    speak_company_language(company)
    students = load_students()
    load_gifts(courses, students)
    close_config_wizard()


def close_config_wizard():
    """Mark the module configuration wizard done: the demo is configured,
    so admin's first login opens the menu, not that wizard"""
    Item = Model.get('ir.module.config_wizard.item')
    items = Item.find([('state', '!=', 'done')])
    for item in items:
        item.state = 'done'
    Item.save(items)


def now():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def get_currency():
    Currency = Model.get('currency.currency')
    currency = Currency.find([('code', '=', 'CNY')])
    if currency:
        return currency[0]
    currency = Currency(
        name="Chinese Yuan Renminbi", code='CNY', numeric_code='156',
        symbol='¥', digits=2, rounding=Decimal('0.01'))
    currency.save()
    return currency


def get_company(currency):
    "Return the company, created if missing, and make it admin's company"
    Company = Model.get('company.company')
    Party = Model.get('party.party')
    User = Model.get('res.user')
    companies = Company.find([('party.name', '=', COMPANY_NAME)])
    if companies:
        company, = companies
    else:
        party = Party(name=COMPANY_NAME)
        party.save()
        company = Company(
            party=party, currency=currency, timezone=TIMEZONE)
        company.save()
    set_language(company.party, LANGUAGE)
    admin, = User.find([('login', '=', 'admin')])
    changed = False
    if company not in admin.companies:
        admin.companies.append(Company(company.id))
        changed = True
    if admin.company != company:
        admin.company = company
        changed = True
    if changed:
        admin.save()
    config = get_config()
    config._context = User.get_preferences(True, {})
    return company


def set_language(party, code):
    """Give party the language code (the company's: its documents, such as
    the order receipt, are in it) when it has another"""
    Lang = Model.get('ir.lang')
    lang, = Lang.find([('code', '=', code)])
    if party.lang != lang:
        party.lang = lang
        party.save()


def load_catalog(company):
    "Return {course name: course}"
    Direction = Model.get('course.direction')
    Category = Model.get('course.category')
    Course = Model.get('course.course')
    directions, categories = {}, {}
    for sequence, (name, category_names) in enumerate(DIRECTIONS, 1):
        found = Direction.find([('name', '=', name)])
        if found:
            direction = found[0]
        else:
            direction = Direction(name=name, sequence=sequence)
            direction.save()
        directions[name] = direction
        for cat_sequence, cat_name in enumerate(category_names, 1):
            found = Category.find([
                    ('name', '=', cat_name),
                    ('direction', '=', direction.id),
                    ])
            if found:
                category = found[0]
            else:
                category = Category(
                    name=cat_name, direction=direction,
                    sequence=cat_sequence)
                category.save()
            categories[name, cat_name] = category

    courses = {c.name: c for c in Course.find([
                ('company', '=', company.id),
                ('name', 'in', [c[0] for c in COURSES]),
                ])}
    for sequence, (name, direction, category, price, credit, published,
            description, options) in enumerate(COURSES, 1):
        if name in courses:
            continue
        course = Course(
            name=name, company=company,
            direction=directions[direction],
            category=categories[direction, category],
            price=Decimal(price), credit=credit, published=published,
            description=description, sequence=sequence * 10)
        for option_sequence, (option, days, option_price) in enumerate(
                options, 1):
            course.options.new(
                name=option, days=days, price=Decimal(option_price),
                sequence=option_sequence)
        course.save()
        courses[name] = course
    return courses


def load_activity(company, courses):
    "A price activity running from yesterday for 90 days"
    Activity = Model.get('course.activity')
    found = Activity.find([
            ('name', '=', ACTIVITY_NAME),
            ('company', '=', company.id),
            ])
    start = now() - dt.timedelta(days=1)
    end = now() + dt.timedelta(days=90)
    if found:
        activity, = found
        if activity.state != 'running':
            # Keep the demo's activity running on an old demo database
            activity.start, activity.end = start, end
            activity.save()
        return activity
    activity = Activity(
        name=ACTIVITY_NAME, company=company, start=start, end=end)
    for course, method, value in ACTIVITY_LINES:
        activity.lines.new(course=courses[course], method=method, value=value)
    activity.save()
    return activity


def load_staff(company):
    User = Model.get('res.user')
    Group = Model.get('res.group')
    Company = Model.get('company.company')
    ModelData = Model.get('ir.model.data')
    for login, name, group_id in STAFF:
        if User.find([('login', '=', login)]):
            continue
        group_db_id = ModelData.get_id('course', group_id, {})
        user = User(login=login, name=name, email=f'{login}@example.com')
        user.password = password(login)
        user.groups.append(Group(group_db_id))
        user.companies.append(Company(company.id))
        user.company = company
        user.save()


def speak_company_language(company):
    """Give admin and the staff users without a language the company's:
    users made before the company had one (admin is made with the database;
    the staff of older demo databases); new ones get it by default"""
    User = Model.get('res.user')
    lang = company.party.lang
    if not lang.translatable:  # not loaded (trytond-admin without -l)
        return
    users = User.find([
            ('login', 'in', ['admin'] + [login for login, _, _ in STAFF]),
            ('language', '=', None),
            ])
    for user in users:
        user.language = lang
    User.save(users)


def load_students():
    "Return {e-mail: party}"
    Party = Model.get('party.party')
    students = {}
    for name, email in STUDENTS:
        found = Party.find([
                ('contact_mechanisms', 'where', [
                        ('type', '=', 'email'),
                        ('value', '=', email),
                        ]),
                ])
        if found:
            party = found[0]
        else:
            party = Party(name=name)
            party.contact_mechanisms.new(type='email', value=email)
            party.save()
        students[email] = party
    return students


def get_students(emails=None):
    """{e-mail: party} of the demo students (of emails, default all),
    for the loaders of the other modules"""
    Party = Model.get('party.party')
    emails = sorted(set(emails or [email for _, email in STUDENTS]))
    students = {}
    for party in Party.find([
                ('contact_mechanisms', 'where', [
                        ('type', '=', 'email'),
                        ('value', 'in', emails),
                        ]),
                ]):
        for mechanism in party.contact_mechanisms:
            if mechanism.type == 'email' and mechanism.value in emails:
                students.setdefault(mechanism.value, party)
    missing = set(emails) - set(students)
    if missing:
        raise LookupError(f"Demo students not found: {sorted(missing)}")
    return students

GIFT_REASON = "老学员推荐奖励"


def load_gifts(courses, students):
    """The gifts through the Give Course wizard (as admin, who is in Course
    Gifts), like staff"""
    Enrollment = Model.get('course.enrollment')
    for email, course, days in GIFTS:
        party, course = students[email], courses[course]
        if Enrollment.find([
                    ('party', '=', party.id), ('course', '=', course.id)]):
            continue
        give_course(party, course, days, GIFT_REASON)


def give_course(party, course, days, reason):
    give = Wizard('course.enrollment.give')
    give.form.party = party
    give.form.course = course
    give.form.days = days or 0
    give.form.reason = reason
    give.execute('give')

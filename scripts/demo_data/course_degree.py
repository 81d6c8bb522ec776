"""Demo data of the module course_degree: one degree program, its mentor
and students at each stage, so every screen of the program has data.

- the program "Python 全栈开发学位课" (published, 9800.00, option "一年有效"
  365 days at 7999.00): three modules, each a course made for it (not
  published: the program sells them) with its homework;
- the mentor 李老师 (login ``mentor``, password ``mentor-demo``, group
  "Course Mentor"), the mentor of the students who study;
- 张伟 (zhang.wei@example.com, the Storefront API student): the program
  paid, no registration form yet (the modules are locked: he submits the
  form with ``degree.form.submit``);
- 王芳 (wang.fang@example.com): studying module 1, its first homework
  graded (B+, passed), the second handed in after its due date (late,
  waiting for the mentor in "To grade");
- 李娜 (li.na@example.com): graduated, every homework graded.

Everything goes through the module's workflow as staff and students would:
``course.order.checkout`` and *Confirm Payment* (the enrollment comes from
the paid order), ``submit_form`` (open the first module),
``course.degree.submission.submit`` and the *Grade Homework* wizard, which
opens the next module and graduates.  Two things stand for the passing of
time or for the mentor part of the module and are written as root: the due
date of the late homework is moved to yesterday, and the mentor is set on
the enrollment with the *Assign Mentor* wizard when the module has it
(``course.degree.enrollment.assign_mentor``, which also credits the mentor
ledger ``course.mentor.movement``), else written on the enrollment.  The
mentor's daily job (marks late homework, matures the income of graduated
students) runs once when it exists.

Idempotent: the program and the mentor are found by name and login; a
student who has the program is not sold it again, and each step is done
only when the enrollment is still before it.
"""
import datetime as dt
from decimal import Decimal

from proteus import Model, Wizard
from proteus.config import get_config

from . import as_root, password
from .course import COMPANY_NAME, get_students

PROGRAM = "Python 全栈开发学位课"
PROGRAM_DESCRIPTION = (
    "从 Python 工程基础到 Django 后端与 Vue 前端，导师一对一批改作业，"
    "完成全部模块即可毕业。")
PRICE = Decimal('9800')
OPTION = ("一年有效", 365, Decimal('7999'))
# (course name, description, [(homework, description, days)])
MODULES = [
    ("Python 全栈：语法与工程基础", "虚拟环境、包管理、测试与代码规范。", [
            ("实现命令行记账本", "用 argparse 和 sqlite3 实现收支记录与统计。",
                7),
            ("单元测试与代码规范", "为记账本补齐 pytest 测试并通过 flake8。",
                5)]),
    ("Django 后端开发实战", "模型、视图、REST API 与权限。", [
            ("博客系统 REST API", "文章、评论与登录的接口，附接口文档。",
                10)]),
    ("Vue 前端与项目部署", "Vue 3 组件化开发与 Nginx 部署上线。", [
            ("前后端分离部署上线", "把博客系统部署到服务器并提交访问地址。",
                10)]),
    ]
DIRECTION = "Python 开发"
CATEGORY = "Web 开发"

# Its password is in LOGINS (demo_data/__init__.py)
MENTOR_LOGIN = 'mentor'
MENTOR_NAME = "李老师"

PAID = 'zhang.wei@example.com'
STUDYING = 'wang.fang@example.com'
GRADUATED = 'li.na@example.com'

FORMS = {
    STUDYING: {
        'company_name': "杭州某电商公司", 'position': "测试工程师",
        'salary': Decimal('9000'), 'experience': '2',
        'open_first_module': True, 'preferred_mentor': "李老师",
        'study_plan': '2-3',
        'why_course': "想从测试转向后端开发。",
        'why_us': "有导师批改作业。",
        'expectations': "一年内能独立完成全栈项目。", 'memo': None},
    GRADUATED: {
        'company_name': "成都某软件公司", 'position': "前端工程师",
        'salary': Decimal('12000'), 'experience': '3',
        'open_first_module': True, 'preferred_mentor': None,
        'study_plan': '3-5',
        'why_course': "补齐后端知识。",
        'why_us': "课程体系完整。",
        'expectations': "成为全栈工程师。", 'memo': "工作日晚上学习"},
    }
ANSWERS = {
    "实现命令行记账本": "仓库地址：https://git.example.com/demo/ledger",
    "单元测试与代码规范": "测试覆盖率 92%，flake8 无告警。",
    "博客系统 REST API": "接口文档见仓库 docs/api.md。",
    "前后端分离部署上线": "访问地址：https://blog.example.com",
    }

ASSIGN_WIZARD = 'course.degree.enrollment.assign_mentor'


def load():
    company = get_company()
    degree = get_program(company)
    mentor = get_mentor(company)
    students = get_students({PAID, STUDYING, GRADUATED})
    enrollments = {email: enrollment_of(students[email], degree)
        for email in [PAID, STUDYING, GRADUATED]}
    studying = enrollments[STUDYING]
    graduated = enrollments[GRADUATED]
    for enrollment in [studying, graduated]:
        assign(enrollment, mentor)
    submit_form(graduated, FORMS[GRADUATED])
    graduate(graduated)
    submit_form(studying, FORMS[STUDYING])
    study_with_late_homework(studying)
    log_followup(studying, mentor)
    run_mentor_job()


def get_company():
    Company = Model.get('company.company')
    company, = Company.find([('party.name', '=', COMPANY_NAME)])
    return company


def get_program(company):
    "The program, its courses, modules and homework created once"
    Degree = Model.get('course.degree')
    found = Degree.find([('name', '=', PROGRAM)])
    if found:
        return found[0]
    courses = get_module_courses(company)
    degree = Degree(
        name=PROGRAM, description=PROGRAM_DESCRIPTION, company=company,
        price=PRICE, published=True)
    name, days, price = OPTION
    degree.options.new(name=name, days=days, price=price)
    for sequence, (course_name, _, homeworks) in enumerate(MODULES, 1):
        module = degree.modules.new(
            course=courses[course_name], sequence=sequence)
        for position, (homework, description, days) in enumerate(
                homeworks, 1):
            module.homeworks.new(
                name=homework, description=description, days=days,
                sequence=position)
    degree.save()
    return degree


def get_module_courses(company):
    """{name: course} of the program's courses, made when missing: not
    published, the program sells them"""
    Course = Model.get('course.course')
    Category = Model.get('course.category')
    courses = {c.name: c for c in Course.find([
                ('company', '=', company.id),
                ('name', 'in', [m[0] for m in MODULES]),
                ])}
    category, = Category.find([
            ('name', '=', CATEGORY), ('direction.name', '=', DIRECTION)])
    for name, description, _ in MODULES:
        if name in courses:
            continue
        course = Course(
            name=name, company=company, direction=category.direction,
            category=category, price=Decimal('2999'), credit=0,
            published=False, description=description)
        course.save()
        courses[name] = course
    return courses


def get_mentor(company):
    "The mentor user, in the group Course Mentor"
    User = Model.get('res.user')
    Group = Model.get('res.group')
    Company = Model.get('company.company')
    ModelData = Model.get('ir.model.data')
    found = User.find([('login', '=', MENTOR_LOGIN)])
    if found:
        return found[0]
    group = Group(ModelData.get_id('course_degree', 'group_mentor', {}))
    user = User(login=MENTOR_LOGIN, name=MENTOR_NAME,
        email=f'{MENTOR_LOGIN}@example.com')
    user.password = password(MENTOR_LOGIN)
    user.groups.append(group)
    user.companies.append(Company(company.id))
    user.company = company
    lang = company.party.lang
    if lang and lang.translatable:
        user.language = lang
    user.save()
    return user


def enrollment_of(party, degree):
    """The party's enrollment of the program, bought (manual payment
    confirmed by staff) when missing"""
    Enrollment = Model.get('course.degree.enrollment')
    Order = Model.get('course.order')
    found = Enrollment.find([
            ('party', '=', party.id), ('degree', '=', degree.id)])
    if found:
        return found[0]
    config = get_config()
    order = Order(Order.checkout(party.id, [
                {'degree': degree.id, 'option': None}], 'manual',
            config.context))
    order.click('confirm_payment')
    enrollment, = Enrollment.find([
            ('party', '=', party.id), ('degree', '=', degree.id)])
    return enrollment


def assign(enrollment, mentor):
    """The mentor of the enrollment, by the Assign Mentor wizard (it
    credits the mentor ledger with the program's fee)"""
    enrollment.reload()
    if enrollment.mentor:
        return
    wizard = Wizard(ASSIGN_WIZARD, [enrollment])
    wizard.form.mentor = mentor
    wizard.execute('assign')
    enrollment.reload()


def submit_form(enrollment, values):
    "The registration form, submitted once (it opens the first module)"
    Enrollment = Model.get('course.degree.enrollment')
    enrollment.reload()
    if enrollment.form_submitted:
        return
    Enrollment.submit_form(enrollment.id, values, get_config().context)
    enrollment.reload()


def open_homework(enrollment):
    "The submissions of the enrollment to hand in, in order"
    Submission = Model.get('course.degree.submission')
    submissions = Submission.find([
            ('enrollment', '=', enrollment.id),
            ('state', 'in', ['to_submit', 'failed']),
            ])
    return sorted(submissions, key=lambda s: (
            s.study.sequence or 0, s.homework.sequence or 0, s.id))


def hand_in(submission):
    Submission = Model.get('course.degree.submission')
    Submission.submit(submission.id, ANSWERS.get(
            submission.homework.name, "已完成"), None, get_config().context)


def grade(submission, score, comment, passed=True):
    "The Grade Homework wizard (admin is in the degree administration)"
    wizard = Wizard('course.degree.submission.grade', [submission])
    wizard.form.score = score
    wizard.form.passed = passed
    wizard.form.comment = comment
    wizard.execute('grade')


def graduate(enrollment):
    """Every homework handed in and passed, module after module, until the
    student graduates"""
    Submission = Model.get('course.degree.submission')
    for _ in range(len(MODULES) + 1):
        enrollment.reload()
        if enrollment.state != 'studying':
            break
        for submission in open_homework(enrollment):
            hand_in(submission)
        for submission in Submission.find([
                    ('enrollment', '=', enrollment.id),
                    ('state', '=', 'to_grade')]):
            grade(submission, 'A', "完成得很好，继续保持。")


def study_with_late_homework(enrollment):
    """Module 1: the first homework graded (B+, passed), the second handed
    in after its due date, waiting for the mentor"""
    Submission = Model.get('course.degree.submission')
    enrollment.reload()
    if enrollment.state != 'studying':
        return
    submissions = open_homework(enrollment)
    if len(submissions) != 2:
        return
    first, late = submissions
    hand_in(first)
    grade(Submission(first.id), 'B+', "思路清晰，注意异常处理。")
    # The time passes as the workflow would see it: the due date is
    # yesterday when the second homework comes in
    yesterday = dt.date.today() - dt.timedelta(days=1)
    with as_root():
        Submission.write([late.id], {'due': yesterday}, get_config().context)
    hand_in(late)


def log_followup(enrollment, mentor):
    "The mentor's follow-up of the student, logged as the mentor, once"
    Followup = Model.get('course.degree.followup')
    if Followup.find([('enrollment', '=', enrollment.id)]):
        return
    config = get_config()
    user = config.user
    config.user = mentor.id
    try:
        Followup.create([{
                    'enrollment': enrollment.id, 'tool': 'wechat',
                    'text': "微信沟通第二个作业的进度：本周末前完成，"
                    "已提醒按学习计划每天学习两小时。",
                    }], config.context)
    finally:
        config.user = user


def run_mentor_job():
    """The daily job, once: marks the late homework, matures the income of
    the graduated student"""
    Cron = Model.get('ir.cron')
    for cron in Cron.find([('method', 'like', 'course.degree.%')]):
        cron.click('run_once')

"""Staff work in the web client: sao driven by headless Chromium.

Starts the demo (scripts/demo.py, temporary `--var`, free port) and drives
Debian's Chromium (/usr/bin/chromium, or $COURSE_CHROMIUM) with Playwright
for Python (the `test` extra; its own browser downloads are never used):

- `sales` logs in (two steps: user name, then password), opens Courses >
  Orders, sees the tabs Unpaid / Paid / Cancelled / Expired / Refunds / All,
  opens an unpaid order, clicks Confirm Payment, accepts the confirmation,
  and the order is paid (in the page and over XML-RPC, with enrollments);
- `manager` logs in and opens Courses > Catalog > Courses: the list shows
  the demo courses;
- a staff user created after the install (by admin, over XML-RPC, with no
  language given) logs in and sees the menu in Chinese, opens 学员
  (Students) and a student's form with the pages of the course modules;
- `sales` reads the order, points and wallet lists in a 1400 px window:
  coloured states, the columns that matter first and none beyond it.

The demo's staff speak Chinese (the company's language, see README
"Chinese from the first login"): menus, tabs and buttons are found by their
Chinese labels.

When Chromium is missing, setUpClass runs scripts/install_browser.sh (root
and apt-get); if it cannot install (or Playwright is missing), each test is
skipped, or fails with CI=true.  Screenshots of each step go to var/browser/ (not committed).
SQLite pass only: the demo is SQLite.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from tests.demo_server import (
    DATABASE, READY_TIMEOUT, ROOT, DemoServer, sqlite_only)

CHROMIUM = os.environ.get('COURSE_CHROMIUM', '/usr/bin/chromium')
INSTALL_BROWSER = os.path.join(ROOT, 'scripts', 'install_browser.sh')
SCREENSHOTS = os.path.join(ROOT, 'var', 'browser')
CI = os.environ.get('CI', '').lower() == 'true'
# The flags of /work/shared/notes (headless Chromium as root); Playwright
# adds --headless and its own empty --user-data-dir
CHROMIUM_ARGS = [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update',
    '--disable-sync',
    ]
TIMEOUT = 20_000  # ms, for one wait in the page
ATTEMPTS = 3


def ensure_chromium():
    """Install Chromium with scripts/install_browser.sh when missing;
    return why the browser tests cannot run, or None"""
    if os.access(CHROMIUM, os.X_OK):
        return None
    print(f"\n{CHROMIUM} is missing: running {INSTALL_BROWSER}",
        file=sys.stderr, flush=True)
    result = subprocess.run(
        ['sh', INSTALL_BROWSER], env=dict(os.environ, CHROMIUM=CHROMIUM),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode or not os.access(CHROMIUM, os.X_OK):
        lines = result.stdout.strip().splitlines()
        return (f"Chromium is not installed at {CHROMIUM} and "
            "scripts/install_browser.sh could not install it: "
            + (lines[-1] if lines else f"exit {result.returncode}"))
    return None


def retry(action, attempts=ATTEMPTS, pause=0.5):
    "Run action until it returns without error, at most attempts times"
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception:
            if attempt == attempts:
                raise
            time.sleep(pause)


@sqlite_only
class BrowserTestCase(unittest.TestCase):
    "Staff work orders and browse the catalog in sao"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Each test skips (or fails on CI) when the browser cannot run
        cls.unavailable = ensure_chromium()
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as error:
            cls.unavailable = cls.unavailable or (
                f"Playwright for Python is not installed ({error}): "
                "pip install -e '.[test]'")
        if cls.unavailable:
            return
        cls.start = time.monotonic()
        cls.var = tempfile.mkdtemp(prefix='course-browser-')
        cls.addClassCleanup(shutil.rmtree, cls.var, ignore_errors=True)
        cls.demo = DemoServer(cls.var)
        cls.addClassCleanup(cls.demo.cleanup)
        cls.demo.start()
        if not cls.demo.ready.wait(READY_TIMEOUT) or cls.demo.proc.poll():
            raise RuntimeError("the demo did not start:\n" + cls.demo.output)
        cls.playwright = sync_playwright().start()
        cls.addClassCleanup(cls.playwright.stop)
        cls.browser = cls.playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        cls.addClassCleanup(cls.browser.close)
        os.makedirs(SCREENSHOTS, exist_ok=True)
        print(f"\nbrowser: demo and Chromium ready in "
            f"{time.monotonic() - cls.start:.0f}s", file=sys.stderr)

    def setUp(self):
        if self.unavailable:
            if CI:
                self.fail(f"the browser tests must run on CI: "
                    f"{self.unavailable}")
            self.skipTest(self.unavailable)
        self.context = self.browser.new_context(
            viewport={'width': 1400, 'height': 900}, locale='en-US')
        self.addCleanup(self.context.close)
        self.context.set_default_timeout(TIMEOUT)
        self.page = self.context.new_page()
        self.errors = []
        self.page.on('pageerror', lambda error: self.errors.append(
                str(error)))
        self.shots = 0
        for old in glob.glob(os.path.join(
                    SCREENSHOTS, f'{self._testMethodName}-*.png')):
            os.remove(old)
        self.addCleanup(self.screenshot_on_failure)

    # --- Helpers ------------------------------------------------------

    def screenshot(self, name):
        "Save var/browser/<test>-<n>-<name>.png"
        self.shots += 1
        path = os.path.join(SCREENSHOTS,
            f'{self._testMethodName}-{self.shots:02d}-{name}.png')
        try:
            self.page.screenshot(path=path)
        except Exception as error:  # a screenshot never fails a test
            print(f"screenshot {path} failed: {error}", file=sys.stderr)
        return path

    def screenshot_on_failure(self):
        outcome = getattr(self, '_outcome', None)
        result = getattr(outcome, 'result', None)
        if result is not None and any(
                test is self for test, _ in
                result.errors + result.failures):
            path = self.screenshot('failure')
            print(f"\nscreenshot of the failure: {path}"
                + (f"\npage errors: {self.errors}" if self.errors else ''),
                file=sys.stderr)

    def login(self, login, password=None):
        """Log in as login (password: the demo's by default): the user name
        in the login dialog, then the password in the dialog that follows"""
        password = password or self.demo.logins[login]
        page = self.page

        def attempt():
            page.goto(self.demo.url)
            dialog = page.locator('.login-dialog')
            dialog.wait_for(state='visible')
            # The database field is filled asynchronously: a read-only
            # input for one database, a <select> for several
            page.wait_for_function(
                """() => [...document.querySelectorAll(
                    '.login-dialog #database')].some(
                        e => e.offsetParent !== null && e.value)""")
            select = dialog.locator('select#database')
            if select.is_visible():
                select.select_option(DATABASE)
            dialog.locator('input#login').fill(login)
            dialog.locator('button[type=submit]').click()
            ask = page.locator('.ask-dialog')
            ask.locator('#ask-dialog-entry').fill(password)
            ask.locator('.btn-primary').click()
            page.wait_for_function(
                f"location.hash.startsWith('#{DATABASE}')")
            page.locator('#menu .column-char').first.wait_for()
        retry(attempt)
        self.screenshot(f'login-{login}')

    def menu_entry(self, title, after=-1):
        """Index and locator of the first menu entry titled title after
        the entry of index after"""
        entries = self.page.locator('#menu .column-char')
        for index in range(after + 1, entries.count()):
            entry = entries.nth(index)
            if entry.get_attribute('title') == title:
                return index, entry
        return None, None

    def open_menu(self, *path):
        """Open the menu entry at path (titles), expanding its parents; the
        expander sometimes ignores an early click: click it again"""
        page = self.page
        index = -1
        for depth, title in enumerate(path):
            def find(title=title, after=index):
                found, entry = self.menu_entry(title, after)
                if entry is None:
                    raise LookupError(f"no menu entry {title!r} in {path}")
                return found, entry
            index, entry = retry(find, attempts=20, pause=0.5)
            if depth == len(path) - 1:
                entry.click()
                break
            child = path[depth + 1]
            # One name cell per row: the entry's index is its row's
            row = page.locator('#menu tbody tr').nth(index)
            for _ in range(ATTEMPTS * 2):
                if self.menu_entry(child, index)[1] is not None:
                    break
                row.locator('.expander').first.click()
                time.sleep(0.5)

    def current_tab(self):
        "The content of the active tab of sao"
        return self.page.locator('#tabcontent > .tab-pane.active')

    def wait_visible(self, locator, what):
        """Wait until locator shows; fail with the page's JavaScript errors
        (e.g. a view sao cannot build) when it does not"""
        try:
            locator.wait_for(state='visible')
            return
        except Exception as error:
            reason = error.__class__.__name__
        self.fail(f"{what} did not show ({reason})"
            + (f"; page errors: {self.errors}" if self.errors else ''))

    def wait_list(self, tab):
        "Wait until the list of tab shows rows; return the row locator"
        rows = tab.locator('.treeview tbody tr')
        self.wait_visible(rows.first, "a row of the list")
        return rows

    def open_orders(self, login):
        "Log in, open Courses > Orders; return the tab"
        self.login(login)
        self.open_menu('课程', '订单')
        tab = self.current_tab()
        tabs = tab.locator('.tab-domain .nav-tabs > li > a')
        self.wait_visible(tabs.first, "the tabs of the orders")
        return tab

    def open_order(self, tab, domain_tab, number):
        """Show the orders of domain_tab (a tab label), open the order
        numbered number in the form"""
        tab.locator('.tab-domain .nav-tabs > li > a',
            has_text=re.compile(rf'^\s*{re.escape(domain_tab)}')).click()
        rows = self.wait_list(tab)
        row = rows.filter(has_text=number)
        self.wait_visible(row.first, f"the row of order {number}")
        self.screenshot(f'orders-{domain_tab}')
        # The tab's click reloads the list: a double click on rows being
        # replaced opened an empty form on a loaded machine
        self.page.wait_for_load_state('networkidle')
        row.first.dblclick()

    def click_button(self, tab, label, question, state):
        """Click the form's button label, accept its confirmation (which
        asks question) and wait for the order's state to show state"""
        from playwright.sync_api import expect
        button = tab.locator('button:visible', has_text=label)
        self.wait_visible(button, f"the button {label}")
        self.screenshot('order-form')
        dialog = self.page.locator('.confirmation-dialog')

        def click():
            if not dialog.is_visible():
                button.click()
            dialog.wait_for(state='visible', timeout=5_000)
        retry(click)
        self.assertIn(question, dialog.inner_text())
        self.screenshot('confirm-dialog')
        dialog.locator('.btn-primary').click()
        dialog.wait_for(state='hidden')
        # The form reloads the order: the state shows, the button goes
        expect(tab.locator('.form select[name="state"]')).to_have_value(
            f'"{state}"', timeout=TIMEOUT)
        button.wait_for(state='hidden')
        self.screenshot(state)

    def rpc_orders(self, login):
        from proteus import Model
        from proteus.config import XmlrpcConfig
        config = XmlrpcConfig(self.demo.rpc_url(login))
        return Model.get('course.order', config=config)

    # --- Tests --------------------------------------------------------

    def test_sales_confirms_payment(self):
        "sales opens an unpaid order and confirms its payment"
        start = time.monotonic()
        tab = self.open_orders('sales')
        tabs = tab.locator('.tab-domain .nav-tabs > li > a')
        names = [' '.join(t.split()) for t in tabs.all_inner_texts()]
        # The labels carry a count badge on some tabs
        self.assertEqual(
            [n.rstrip('0123456789 ').strip() for n in names],
            ['待支付', '支付状态未知', '已支付', '已取消/已超时', '退款', '全部'],
            names)
        rows = self.wait_list(tab)
        self.screenshot('orders')

        # The newest order paid by hand (the demo's Alipay order has no
        # Confirm Payment: Alipay confirms it)
        Order = self.rpc_orders('sales')
        order = Order.find([
                ('state', '=', 'unpaid'), ('pay_method', '=', 'manual')],
            order=[('id', 'DESC')], limit=1)[0]
        number = order.number

        # Open it in the form and confirm the payment
        row = rows.filter(has_text=number)
        self.wait_visible(row.first, f"the row of order {number}")
        row.first.dblclick()
        self.click_button(tab, '确认收款', '确认已收到此订单的付款吗', 'paid')

        order.reload()
        self.assertEqual(order.state, 'paid')
        self.assertTrue(order.paid_at)
        self.assertEqual(
            {e.course.id for e in order.enrollments},
            {line.course.id for line in order.lines})
        self.assertEqual(self.errors, [])
        print(f"\nbrowser: sales confirmed {number} in "
            f"{time.monotonic() - start:.0f}s", file=sys.stderr)

    def test_sales_cancels_order(self):
        "sales cancels an unpaid order; the Cancel button then goes"
        Order = self.rpc_orders('sales')
        # The oldest: the confirm test takes the first row, the newest
        order = Order.find(
            [('state', '=', 'unpaid')], order=[('id', 'ASC')])[0]
        tab = self.open_orders('sales')
        self.open_order(tab, '待支付', order.number)
        self.click_button(tab, '取消', '确定取消此订单吗', 'cancelled')
        order.reload()
        self.assertEqual(order.state, 'cancelled')
        self.assertTrue(order.cancelled_at)
        self.assertEqual(self.errors, [])

    def test_manager_refunds_order(self):
        "manager refunds a paid order by hand; its enrollments end"
        Order = self.rpc_orders('manager')
        order = next(o for o in Order.find([
                    ('state', '=', 'paid'),
                    ('pay_method', '=', 'manual'),
                    ], order=[('id', 'ASC')]) if o.enrollments)
        self.assertTrue(any(e.state == 'live' for e in order.enrollments))
        tab = self.open_orders('manager')
        self.open_order(tab, '已支付', order.number)
        self.click_button(tab, '退款', '确定为此订单退款吗', 'refunded')
        order.reload()
        self.assertEqual(order.state, 'refunded')
        self.assertEqual(
            {e.state for e in order.enrollments}, {'ended'})
        self.assertEqual(self.errors, [])

    def test_admin_opens_every_list(self):
        """admin opens every model of the project's window actions (by
        URL): each view shows without a JavaScript error"""
        from proteus import Model
        from proteus.config import XmlrpcConfig
        config = XmlrpcConfig(self.demo.rpc_url('admin'))
        Action = Model.get('ir.action.act_window', config=config)
        models = sorted({a.res_model for a in Action.find([
                        ('res_model', 'like', 'course.%'),
                        ])})
        self.assertGreaterEqual(len(models), 10, models)
        self.login('admin')
        page = self.page
        tabs = page.locator('#tablist > li')
        for count, model in enumerate(models, start=1):
            page.goto(f'{self.demo.url}#{DATABASE}/model/{model}')
            # The model's tab opens next to the others and becomes active
            page.wait_for_function(
                f"document.querySelectorAll('#tablist > li').length "
                f">= {count}")
            self.assertEqual(tabs.count(), count, model)
            tab = self.current_tab()
            # Every model has demo records: wait for a rendered row (or
            # the form of a singleton), then for the page to settle
            self.wait_visible(
                tab.locator('.treeview tbody tr td:visible, .form').first,
                f"the view of {model}")
            page.wait_for_load_state('networkidle')
            time.sleep(0.3)
            self.screenshot(model)
            self.assertEqual(self.errors, [], model)

    def visible_headers(self, tab):
        """(text, right edge in px) of the visible column headers of the
        list of tab, left to right"""
        return tab.locator('.treeview thead th:visible').evaluate_all(
            """ths => ths.map(th => [
                th.innerText.trim(),
                th.getBoundingClientRect().right])""")

    def assertHeadersShown(self, tab, first, shown=()):
        """The list of tab starts with the columns first, shows shown too,
        and every column ends inside the 1400 px of the window"""
        headers = [(t, r) for t, r in self.visible_headers(tab) if t]
        texts = [t for t, _ in headers]
        self.assertEqual(texts[:len(first)], list(first), texts)
        for text in shown:
            self.assertIn(text, texts)
        for text, right in headers:
            self.assertLessEqual(right, 1400, (text, headers))
        return texts

    def test_staff_lists_at_1400(self):
        """sales sees the orders' states coloured, one date column and the
        payment method and deadline on the Unpaid tab, no Refund button on
        a paid order; the points and wallet lists start with date, kind,
        amount and balance; nothing beyond 1400 px"""
        tab = self.open_orders('sales')
        self.wait_list(tab)
        # (sao hides the state on this tab: its domain fixes it)
        texts = self.assertHeadersShown(tab, ['订单号', '下单日期'], [
                '支付方式', '支付截止时间', '截止时间'])
        self.assertEqual(texts.count('下单日期'), 1, texts)
        self.screenshot('orders-unpaid')
        tab.locator('.tab-domain .nav-tabs > li > a',
            has_text=re.compile(r'^\s*全部')).click()
        # The state column: unpaid in the colour of a warning, paid of a
        # success
        for visual in ['warning', 'success']:
            self.wait_visible(
                tab.locator(f'.treeview tbody tr td.{visual}:visible').first,
                f"a state coloured {visual}")
        self.assertHeadersShown(tab, ['订单号', '下单日期'], [
                '支付方式', '支付截止时间', '状态'])
        self.screenshot('orders-all')
        Order = self.rpc_orders('sales')
        paid = Order.find([('state', '=', 'paid')], limit=1)[0]
        self.open_order(tab, '已支付', paid.number)
        from playwright.sync_api import expect
        # The form shows the paid order: its state, then its buttons
        expect(tab.locator('.form select[name="state"]')).to_have_value(
            '"paid"', timeout=TIMEOUT)
        self.page.wait_for_load_state('networkidle')
        self.assertEqual(tab.locator('button:visible',
                has_text=re.compile(r'^\s*退款\s*$')).count(), 0)
        self.screenshot('paid-order-no-refund')
        for menu, amount in [
                ('积分流水', '积分'),
                ('钱包流水', '金额')]:
            with self.subTest(menu=menu):
                opened = self.page.locator('#tablist > li').count()
                self.open_menu('课程', '积分与钱包', menu)
                # The list's own tab, not the one before it
                self.page.wait_for_function(
                    f"document.querySelectorAll('#tablist > li').length "
                    f"> {opened}")
                ledger = self.current_tab()
                # The All tab: the others fix the kind (sao hides it)
                all_tab = ledger.locator('.tab-domain .nav-tabs > li > a',
                    has_text=re.compile(r'^\s*全部'))
                self.wait_visible(all_tab, f"the tabs of {menu}")
                all_tab.click()
                ledger.locator('.tab-domain .nav-tabs > li.active > a',
                    has_text=re.compile(r'^\s*全部')).wait_for()
                self.page.wait_for_load_state('networkidle')
                self.wait_list(ledger)
                time.sleep(0.5)  # the rows of the All tab drawn
                self.assertHeadersShown(
                    ledger, ['日期', '类型', amount, '余额'],
                    ['学员', '订单'])
                self.screenshot(menu)
        self.assertEqual(self.errors, [])

    def test_manager_sees_courses(self):
        "manager opens Courses > Catalog > Courses"
        start = time.monotonic()
        self.login('manager')
        self.open_menu('课程', '课程目录', '课程')
        tab = self.current_tab()
        rows = self.wait_list(tab)
        self.screenshot('courses')
        texts = '\n'.join(rows.all_inner_texts())
        self.assertGreaterEqual(rows.count(), 12, texts)
        self.assertIn("Django 企业级项目实战", texts)
        self.assertEqual(self.errors, [])
        print(f"\nbrowser: manager listed {rows.count()} courses in "
            f"{time.monotonic() - start:.0f}s", file=sys.stderr)


    def test_fresh_staff_user_sees_chinese(self):
        """A staff user admin creates after the install, without choosing a
        language, gets the company's (Chinese): the menu, the Students
        list and a student's form are in Chinese"""
        from proteus import Model
        from proteus.config import XmlrpcConfig
        config = XmlrpcConfig(self.demo.rpc_url('admin'))
        User = Model.get('res.user', config=config)
        Group = Model.get('res.group', config=config)
        ModelData = Model.get('ir.model.data', config=config)
        Company = Model.get('company.company', config=config)
        login, password = 'xiaoli', 'xiaoli-demo-password'
        user = User(login=login, name="小李")
        user.password = password
        user.groups.append(Group(ModelData.get_id(
                    'course', 'group_course_sales', config.context)))
        user.companies.append(Company(user.company.id))
        user.save()
        self.assertEqual(user.language.code, 'zh_CN')

        self.login(login, password)
        entries = self.page.locator('#menu .column-char')
        titles = [entries.nth(i).get_attribute('title')
            for i in range(entries.count())]
        self.assertIn('课程', titles)
        self.assertNotIn('Courses', titles)
        self.open_menu('课程', '学员')
        self.screenshot('menu-zh')
        tab = self.current_tab()
        rows = self.wait_list(tab)
        row = rows.filter(has_text='张伟')
        self.wait_visible(row.first, "the row of the student 张伟")
        self.screenshot('students')
        row.first.dblclick()
        pages = tab.locator('.form .nav-tabs > li > a')
        self.wait_visible(pages.first, "the pages of the student's form")
        names = [' '.join(t.split()) for t in pages.all_inner_texts()]
        for name in ['课程', '订单', '积分与钱包']:
            self.assertIn(name, names)
        # The Courses page lists the student's enrollments
        pages.filter(has_text=re.compile(r'^\s*课程\s*$')).first.click()
        self.wait_visible(
            tab.locator('.form td:visible', has_text='Python 零基础入门').first,
            "the enrollments of 张伟")
        self.screenshot('student-form')
        self.assertEqual(self.errors, [])


if __name__ == '__main__':
    unittest.main()

"""Staff work in the desktop client: the README's `scripts/desktop.py`.

Starts Xvfb on a free display (it picks one: -displayfd), then the README
command `scripts/desktop.py` with a free port, a temporary `--var` and a
free fake-Alipay port: it starts the demo and opens the client `tryton` 8.0
as `sales` on the deep link to the orders list.  The test types the
password (xdotool), then polls until the window title names the sales user,
the client's log (tryton -v) shows the orders read (the ids sales may see
over XML-RPC) and the screen settles; it saves the screenshot
var/desktop/test_sales_opens_orders-orders.png (not committed), quits the
client (Ctrl+Q) and checks that the script stops the demo it started.

When the client or a tool is missing, setUpClass runs
scripts/install_desktop.sh (root and apt-get); if it cannot install, the
test is skipped, or fails with CI=true.  It stops only what it started (its
Xvfb, the script's process group, the demo's processes).  SQLite pass only:
the demo is SQLite.
"""
import ast
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from tests.demo_server import (
    DATABASE, READY_TIMEOUT, ROOT, STOP_TIMEOUT, alive, demo_env, free_port,
    group_alive, pids, sqlite_only)

INSTALL_DESKTOP = os.path.join(ROOT, 'scripts', 'install_desktop.sh')
DESKTOP = os.path.join(ROOT, 'scripts', 'desktop.py')
SCREENSHOTS = os.path.join(ROOT, 'var', 'desktop')
CI = os.environ.get('CI', '').lower() == 'true'
TOOLS = ['Xvfb', 'xdotool', 'xprop', 'import']
SCREEN = (1280, 1024)
TIMEOUT = 60  # s, for one wait on the client
LOGIN_ATTEMPTS = 3


def ensure_desktop():
    """Install the client and the X tools with scripts/install_desktop.sh
    (it does nothing when they are there); return why the desktop test
    cannot run, or None"""
    result = subprocess.run(
        ['sh', INSTALL_DESKTOP], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode:
        lines = result.stdout.strip().splitlines()
        return ("scripts/install_desktop.sh could not install the desktop "
            "client: " + (lines[-1] if lines else f"exit {result.returncode}"))
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        return f"{', '.join(missing)} missing after install_desktop.sh"
    return None


def poll(check, timeout=TIMEOUT, pause=0.2, what="the condition"):
    "Call check until it returns a true value; return it"
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timeout ({timeout}s) waiting for {what}")
        time.sleep(pause)


def png_size(path):
    "(width, height) of a PNG file, None when it is not one"
    with open(path, 'rb') as fp:
        head = fp.read(24)
    if len(head) < 24 or head[:8] != b'\x89PNG\r\n\x1a\n':
        return None
    return struct.unpack('>II', head[16:24])


def read_ids(log, model):
    "The ids of the first read of model's records in the client's log"
    match = re.search(
        rf'tryton\.rpc:model\.{re.escape(model)}\.read\((\[[\d, ]*\])', log)
    return match and ast.literal_eval(match.group(1))


@sqlite_only
class DesktopTestCase(unittest.TestCase):
    "sales opens the orders list in the desktop client"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.unavailable = ensure_desktop()

    def setUp(self):
        if self.unavailable:
            if CI:
                self.fail(f"the desktop test must run on CI: "
                    f"{self.unavailable}")
            self.skipTest(self.unavailable)
        self.tmp = tempfile.mkdtemp(prefix='course-desktop-')
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.client_log = os.path.join(self.tmp, 'client.log')
        os.makedirs(SCREENSHOTS, exist_ok=True)
        for old in os.listdir(SCREENSHOTS):
            if old.startswith(f'{self._testMethodName}-'):
                os.remove(os.path.join(SCREENSHOTS, old))
        self.display = self.start_xvfb()

    # --- Helpers ------------------------------------------------------

    def start_xvfb(self):
        """Start Xvfb on the first free display (Xvfb picks it and writes
        its number to -displayfd); return ':N'"""
        read, write = os.pipe()
        proc = subprocess.Popen(
            ['Xvfb', '-displayfd', str(write), '-screen', '0',
                f'{SCREEN[0]}x{SCREEN[1]}x24', '-nolisten', 'tcp'],
            pass_fds=[write], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(write)
        self.addCleanup(self.stop, proc)
        number = b''
        with os.fdopen(read, 'rb') as fp:
            number = fp.readline().strip()  # empty when Xvfb fails
        self.assertTrue(number.isdigit(), f"Xvfb did not start ({number})")
        return f':{number.decode()}'

    def stop(self, proc):
        "Stop proc and its process group (each was started in its own)"
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()

    def x(self, *command):
        "Run an X tool on our display; its output, None when it fails"
        result = subprocess.run(
            command, env=dict(os.environ, DISPLAY=self.display),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return result.stdout if result.returncode == 0 else None

    def windows(self, name):
        "Ids of the visible windows whose name matches the regex name"
        return (self.x('xdotool', 'search', '--onlyvisible', '--name', name)
            or '').split()

    def title(self, window):
        "The title of window"
        return (self.x('xdotool', 'getwindowname', window) or '').strip()

    def screenshot(self, name):
        "Save the screen as var/desktop/<test>-<name>.png"
        path = os.path.join(
            SCREENSHOTS, f'{self._testMethodName}-{name}.png')
        self.x('import', '-window', 'root', path)
        return path

    def screenshot_on_failure(self):
        outcome = getattr(self, '_outcome', None)
        result = getattr(outcome, 'result', None)
        if result is not None and any(
                test is self for test, _ in
                result.errors + result.failures):
            path = self.screenshot('failure')
            print(f"\nscreenshot of the failure: {path}", file=sys.stderr)
            if os.path.exists(self.client_log):
                with open(self.client_log) as fp:
                    print("client log (end):\n" + fp.read()[-3000:],
                        file=sys.stderr)

    def settled_screenshot(self, name):
        """Take screenshots until two in a row are the same (the list is
        drawn); return the path"""
        previous = []

        def same():
            path = self.screenshot(name)
            with open(path, 'rb') as fp:
                data = fp.read()
            done = previous and previous[-1] == data
            previous.append(data)
            return done and path
        return poll(same, pause=0.5, what="the screen to settle")

    def start_desktop(self, port):
        """Run the README command on port with a temporary state folder;
        return the process and its output lines (read in a thread)"""
        env = dict(demo_env(), DISPLAY=self.display)
        proc = subprocess.Popen(
            [sys.executable, DESKTOP, '--port', str(port), '--user', 'sales',
                '--config-dir', os.path.join(self.tmp, 'config'),
                '--log', self.client_log,
                # for scripts/demo.py
                '--var', os.path.join(self.tmp, 'var'),
                '--alipay-port', str(free_port())],
            env=env, cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)
        lines = []

        def read():
            for line in proc.stdout:
                lines.append(line)
        threading.Thread(target=read, daemon=True).start()
        self.addCleanup(self.stop_demo, lines)
        self.addCleanup(self.stop, proc)
        # Cleanups run last first: the screenshot while the client runs
        self.addCleanup(self.screenshot_on_failure)
        return proc, lines

    def stop_demo(self, lines):
        """Kill what is left of the demo's processes (own process groups:
        the script's group does not hold them)"""
        for pid in pids(lines).values():
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def client_log_text(self):
        try:
            with open(self.client_log) as fp:
                return fp.read()
        except FileNotFoundError:
            return ''

    def dialog(self):
        """The client's dialog (password, question): its visible window of
        type dialog (the main window is 'normal', a tooltip 'tooltip')"""
        for window in (self.x('xdotool', 'search', '--onlyvisible',
                    '--class', 'tryton') or '').split():
            kind = self.x('xprop', '-id', window, '_NET_WM_WINDOW_TYPE')
            if kind and '_NET_WM_WINDOW_TYPE_DIALOG' in kind:
                return window

    def log_in(self, password, user_name):
        """Type password in the client's password dialog until the main
        window's title names user_name; return the title"""
        def titled():
            for window in self.windows('Tryton$'):
                title = self.title(window)
                if title.startswith(user_name):
                    return title
        # Without a window manager the keyboard follows the pointer: keep
        # it off the windows, give the dialog the focus
        self.x('xdotool', 'mousemove', str(SCREEN[0] - 1), str(SCREEN[1] - 1))
        for attempt in range(1, LOGIN_ATTEMPTS + 1):
            dialog = poll(self.dialog, what="the password dialog")
            self.x('xdotool', 'windowfocus', '--sync', dialog)
            self.x('xdotool', 'key', 'ctrl+a')  # a retry replaces the text
            self.x('xdotool', 'type', '--delay', '30', password)
            self.x('xdotool', 'key', 'Return')
            try:
                return poll(titled, timeout=TIMEOUT / LOGIN_ATTEMPTS,
                    what=f"a window titled {user_name!r}")
            except AssertionError:
                if attempt == LOGIN_ATTEMPTS:
                    raise

    def rpc(self, port, login, password):
        "The proteus configuration of login over XML-RPC"
        from proteus.config import XmlrpcConfig
        return XmlrpcConfig(
            f'http://{login}:{password}@localhost:{port}/{DATABASE}/rpc/')

    def user_name(self, config):
        "The name of the user of config, from their preferences"
        from proteus import Model
        User = Model.get('res.user', config=config)
        return User.get_preferences(False, config.context)['name']

    def order_ids(self, config):
        "Ids of the orders the user of config may read"
        from proteus import Model
        Order = Model.get('course.order', config=config)
        return [order.id for order in Order.find([])]

    # --- Test ---------------------------------------------------------

    def test_sales_opens_orders(self):
        "sales logs in the desktop client and sees the orders list"
        start = time.monotonic()
        port = free_port()
        proc, lines = self.start_desktop(port)
        output = lambda: ''.join(lines)  # noqa: E731

        def opening():
            if proc.poll() is not None:
                self.fail(f"scripts/desktop.py ended ({proc.returncode}):\n"
                    + output())
            return re.search(
                r'Opening the desktop client as sales \(password: (\S+)\)',
                output())
        password = poll(opening, timeout=READY_TIMEOUT,
            what="the demo and the client").group(1)
        demo_pids = pids(lines)
        self.assertIn('trytond', demo_pids, output())

        config = self.rpc(port, 'sales', password)
        name = self.user_name(config)
        self.assertEqual(name, "销售 Sales")

        # The client tries the login without a password first, then asks it
        poll(lambda: 'common.db.login(sales' in self.client_log_text(),
            what="the client's first login call")
        title = self.log_in(password, name)
        # '<name> [<company currency>] - Tryton'
        self.assertRegex(title, rf'^{re.escape(name)} .*- Tryton$')

        # The deep link opened the orders list: the client read the orders
        # sales may see
        ids = poll(lambda: read_ids(self.client_log_text(), 'course.order'),
            what="the read of course.order in the client's log")
        self.assertIn('model.course.order.fields_view_get(None, \'tree\'',
            self.client_log_text())
        self.assertEqual(
            sorted(ids), sorted(self.order_ids(config)))
        self.assertGreaterEqual(len(ids), 10)

        path = self.settled_screenshot('orders')
        self.assertGreater(os.path.getsize(path), 10_000, path)
        self.assertEqual(png_size(path), SCREEN, path)
        logged_in = time.monotonic() - start

        # Quitting the client (Ctrl+Q, then Yes to close the tabs) stops
        # the demo the script started
        window = self.windows('Tryton$')[0]
        self.x('xdotool', 'windowfocus', '--sync', window)
        self.x('xdotool', 'key', 'ctrl+q')

        def quit():
            if proc.poll() is not None:
                return True
            if dialog := self.dialog():
                self.x('xdotool', 'windowfocus', '--sync', dialog)
                self.x('xdotool', 'key', 'alt+y')
        poll(quit, timeout=STOP_TIMEOUT + 10, pause=0.5,
            what="scripts/desktop.py to end after Ctrl+Q")
        self.assertEqual(proc.returncode, 0, output())
        self.assertIn('Stopped', output())
        for name, pid in demo_pids.items():
            self.assertFalse(alive(pid), name)
            self.assertFalse(group_alive(pid), name)
        print(f"\ndesktop: demo, client and login in {logged_in:.0f}s; "
            f"screenshot {path}", file=sys.stderr)


if __name__ == '__main__':
    unittest.main()

"""Run the README's demo (`scripts/demo.py`) from a test: in a temporary
state folder (`--var`), on a free port, with the logins it prints.

Shared by tests/test_demo.py and tests/test_browser.py:

    demo = DemoServer(var)                  # var: a temporary folder
    self.addCleanup(demo.cleanup)
    demo.start(port)
    self.assertTrue(demo.ready.wait(READY_TIMEOUT), demo.output)
    demo.logins['sales']                    # password printed by the demo
"""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, 'scripts', 'demo.py')
DATABASE = 'course_demo'
READY_TIMEOUT = 150
STOP_TIMEOUT = 30

# Skip a test case outside the SQLite pass of scripts/test.py
sqlite_only = unittest.skipUnless(
    os.environ.get('TRYTOND_DATABASE_URI', 'sqlite://').startswith('sqlite'),
    "the demo runs on SQLite")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('localhost', 0))
        return sock.getsockname()[1]


def demo_env():
    "The environment of the demo: the test runner's database settings out"
    env = {k: v for k, v in os.environ.items()
        if k not in {'DB_NAME', 'DB_CACHE', 'TRYTOND_DATABASE_URI',
            'TRYTOND_CONFIG', 'COURSE_DEMO_VAR'}}
    env['PYTHONUNBUFFERED'] = '1'
    return env


def alive(pid):
    "Is pid a running (not zombie) process"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f'/proc/{pid}/stat') as fp:
            return fp.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


def group_alive(pgid):
    "Does a running process remain in the process group pgid"
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as fp:
                fields = fp.read().rsplit(')', 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        # fields: state, ppid, pgrp, ...
        if fields[0] != 'Z' and int(fields[2]) == pgid:
            return True
    return False


def pids(lines):
    "{process name: pid} from the demo's 'Started <name> (pid N)' lines"
    found = {}
    for line in lines:
        if match := re.match(r'Started (\S+) \(pid (\d+)\)', line):
            found[match.group(1)] = int(match.group(2))
    return found


def alipay_links(lines):
    "{order number: URL} printed by the demo"
    found = {}
    for line in lines:
        if match := re.match(
                r'Pay order (\S+) with Alipay \(fake gateway\): (\S+)',
                line):
            found[match.group(1)] = match.group(2)
    return found


def wechat_links(lines):
    "{order number: URL of the fake's pay page} printed by the demo"
    found = {}
    for line in lines:
        if match := re.match(
                r'Pay order (\S+) with WeChat Pay \(fake gateway\): (\S+)',
                line):
            found[match.group(1)] = match.group(2)
    return found


def students(lines):
    "{e-mail: password} of the Storefront API students the demo prints"
    found = {}
    for line in lines:
        if match := re.match(r'Storefront student: (\S+) / (\S+)', line):
            found[match.group(1)] = match.group(2)
    return found


def logins(lines):
    "{login: password} printed by the demo"
    found = {}
    for line in lines:
        if match := re.match(r'\s+(\w+)\s+/\s+(\S+)\s', line):
            found[match.group(1)] = match.group(2)
    return found


class DemoServer:
    "scripts/demo.py with --var <var>, started and stopped by a test"

    def __init__(self, var, env=None):
        self.var = var
        self.env = env if env is not None else demo_env()
        self.proc = None
        self.port = None
        # The fake Alipay gateway's port, never the default 8090 (a demo
        # may be running)
        self.alipay_port = free_port()
        self.wechat_port = free_port()
        self.lines = []
        self.ready = threading.Event()

    def command(self, *args):
        return [sys.executable, DEMO, '--var', self.var,
            '--alipay-port', str(self.alipay_port),
            '--wechat-port', str(self.wechat_port)] + list(args)

    def run(self, *args, timeout=READY_TIMEOUT):
        "Run the demo with args (e.g. --no-server) to its end"
        return subprocess.run(
            self.command(*args), env=self.env, cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=timeout)

    def start(self, port=None):
        """Start the demo server on port (a free one by default); `ready`
        is set once it prints 'Press Ctrl-C' (or when it ends)"""
        self.port = port or free_port()
        self.lines, self.ready = [], threading.Event()
        self.proc = subprocess.Popen(
            self.command('--port', str(self.port)), env=self.env, cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)
        proc, lines, ready = self.proc, self.lines, self.ready

        def read():
            for line in proc.stdout:
                lines.append(line)
                if line.startswith('Press Ctrl-C'):
                    ready.set()
            ready.set()
        threading.Thread(target=read, daemon=True).start()
        return self.proc

    @property
    def output(self):
        return ''.join(self.lines)

    @property
    def url(self):
        return f'http://localhost:{self.port}/'

    def rpc_url(self, login):
        return (f'http://{login}:{self.logins[login]}@localhost:{self.port}/'
            f'{DATABASE}/rpc/')

    @property
    def alipay_links(self):
        "{order number: link} of the 'Pay order N with Alipay' lines"
        return alipay_links(self.lines)

    @property
    def wechat_links(self):
        "{order number: link} of the 'Pay order N with WeChat Pay' lines"
        return wechat_links(self.lines)

    @property
    def pids(self):
        return pids(self.lines)

    @property
    def logins(self):
        return logins(self.lines)

    @property
    def students(self):
        return students(self.lines)

    def cleanup(self):
        "Stop the demo (SIGINT) and kill whatever is left of its processes"
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pid in self.pids.values():
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

#!/usr/bin/env python3
"""Run the demo: the course-commerce suite with demo data and the web client.

    python3 scripts/demo.py                 # build or update, then serve
    python3 scripts/demo.py --rebuild       # delete the database first
    python3 scripts/demo.py --no-server     # build or update, then exit
    python3 scripts/demo.py --port 8080     # serve on another port
    python3 scripts/demo.py --alipay-port 8092  # the fake Alipay's port
    python3 scripts/demo.py --wechat-port 8093  # the fake WeChat Pay's port

1. installs the sao web client (npm tryton-sao) into var/sao/package;
2. creates the SQLite database course_demo in var/demo/ (trytond-admin
   --all, then every project module activated and the Chinese translations
   loaded) or, when it exists, updates it (trytond-admin --all -l zh_CN);
3. loads the demo data that is not already there (scripts/demo_data/);
4. runs trytond and trytond-cron until Ctrl-C or SIGTERM.

A fake Alipay gateway (scripts/fake_alipay.py, on 127.0.0.1:--alipay-port,
its keys and trades in var/demo/fake_alipay) runs from before the demo data
is loaded until the end: the demo company's Alipay account points at it and
the demo prints the link that pays the demo's Alipay order.  A fake WeChat
Pay gateway (scripts/fake_wechat.py, on 127.0.0.1:--wechat-port, its keys
and transactions in var/demo/fake_wechat) runs likewise: the company's
WeChat Pay account points at it and the demo prints the page that pays the
demo's WeChat Pay order (the student's phone after scanning the code).

The trytond configuration is var/demo/trytond.conf, written at each run from
config/trytond.conf with its paths made absolute.  `--var DIR` (or the
environment variable COURSE_DEMO_VAR) moves the state folder (database, file
store, generated configuration, logs) elsewhere; the web client is then
taken from DIR/sao/package when installed there, else from the project's
var/sao/package (installed there when missing).
"""
import argparse
import configparser
import glob
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SCRIPTS)
from bootstrap import ROOT, ensure_venv  # noqa: E402

DATABASE = 'course_demo'
SAO_VERSION = '8.0.11'
CONFIG_TEMPLATE = os.path.join(ROOT, 'config', 'trytond.conf')
LOGGING_CONFIG = os.path.join(ROOT, 'config', 'logging.conf')
STOP_TIMEOUT = 15
START_TIMEOUT = 90


def log(message):
    print(message, flush=True)


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument('--rebuild', action='store_true',
        help="delete the demo database and build it again")
    parser.add_argument('--port', type=int, default=8000,
        help="the port of the web client and RPC (default: %(default)s)")
    parser.add_argument('--alipay-port', type=int, default=8090,
        help="the port of the fake Alipay gateway on 127.0.0.1 "
        "(default: %(default)s)")
    parser.add_argument('--wechat-port', type=int, default=8091,
        help="the port of the fake WeChat Pay gateway on 127.0.0.1 "
        "(default: %(default)s)")
    parser.add_argument('--no-server', action='store_true',
        help="build or update the database, then exit")
    parser.add_argument('--var', metavar='DIR',
        default=os.environ.get('COURSE_DEMO_VAR') or os.path.join(
            ROOT, 'var'),
        help="the state folder (default: $COURSE_DEMO_VAR or var/)")
    return parser.parse_args()


def bin_path(name):
    "Path of a console script of the venv"
    return os.path.join(os.path.dirname(sys.executable), name)


# --- The web client ---------------------------------------------------

def sao_installed(folder):
    package = os.path.join(folder, 'package')
    return (os.path.exists(os.path.join(folder, f'.installed-{SAO_VERSION}'))
        and os.path.isfile(os.path.join(package, 'index.html'))
        and os.path.isdir(os.path.join(package, 'node_modules'))) and package


def ensure_sao(var):
    "Return the sao package folder, installed from npm when missing"
    for folder in [os.path.join(var, 'sao'), os.path.join(ROOT, 'var', 'sao')]:
        if package := sao_installed(folder):
            return package
    folder = os.path.join(ROOT, 'var', 'sao')
    if not shutil.which('npm'):
        sys.exit("npm is needed to install the web client (Node.js)")
    log(f"Installing the web client tryton-sao {SAO_VERSION} into {folder}")
    os.makedirs(folder, exist_ok=True)
    work = tempfile.mkdtemp(prefix='install-', dir=folder)
    try:
        subprocess.check_call(
            ['npm', 'pack', '--silent', f'tryton-sao@{SAO_VERSION}'],
            cwd=work, stdout=subprocess.DEVNULL)
        tarball, = glob.glob(os.path.join(work, 'tryton-sao-*.tgz'))
        with tarfile.open(tarball) as tar:
            try:
                tar.extractall(work, filter='data')
            except TypeError:  # Python without extraction filters
                tar.extractall(work)
        subprocess.check_call(
            ['npm', 'install', '--omit=dev', '--legacy-peer-deps',
                '--no-audit', '--no-fund', '--loglevel=error'],
            cwd=os.path.join(work, 'package'))
        package = os.path.join(folder, 'package')
        if os.path.exists(package):
            shutil.rmtree(package)
        os.rename(os.path.join(work, 'package'), package)
        for old in glob.glob(os.path.join(folder, '.installed-*')):
            os.remove(old)
        open(os.path.join(folder, f'.installed-{SAO_VERSION}'), 'w').close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return package


# --- Configuration ----------------------------------------------------

def write_config(var, sao, port):
    """Write <var>/demo/trytond.conf from config/trytond.conf: relative
    paths made absolute (var/ is the state folder), sao and port set"""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(CONFIG_TEMPLATE)

    def absolute(value):
        if os.path.isabs(value):
            return value
        parts = value.split('/')
        if parts[0] == 'var':
            return os.path.join(var, *parts[1:])
        return os.path.join(ROOT, value)
    parser.set('database', 'path', absolute(parser.get('database', 'path')))
    parser.set('web', 'root', sao)
    parser.set('web', 'listen', f'localhost:{port}')
    path = os.path.join(var, 'demo', 'trytond.conf')
    with open(path, 'w') as fp:
        fp.write("# Written by scripts/demo.py from config/trytond.conf "
            "at each run: edit that one\n")
        parser.write(fp)
    return path, parser.get('database', 'path')


# --- Database ---------------------------------------------------------

def project_modules():
    from demo_data import project_modules
    return project_modules()


def activated_modules(db_file):
    "Names of the activated modules, None if not a Tryton database"
    if not os.path.isfile(db_file) or not os.path.getsize(db_file):
        return None
    try:
        conn = sqlite3.connect(f'file:{db_file}?mode=ro', uri=True)
    except sqlite3.Error:
        return None
    try:
        return {name for name, in conn.execute(
                "SELECT name FROM ir_module WHERE state = 'activated'")}
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def trytond_admin(var, config, *args, env=None):
    "Run trytond-admin, its output in var/demo/trytond-admin.log"
    cmd = [bin_path('trytond-admin'), '-c', config, '-d', DATABASE,
        '--logconf', LOGGING_CONFIG] + list(args)
    log("$ trytond-admin -c " + os.path.relpath(config) + f" -d {DATABASE} "
        + " ".join(args))
    path = os.path.join(var, 'demo', 'trytond-admin.log')
    start = time.monotonic()
    with open(path, 'a') as out:
        code = subprocess.call(cmd, env=env, stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT)
    if code:
        log(tail(path, 30))
        sys.exit(f"trytond-admin failed ({code}), see {path}")
    log(f"  done in {time.monotonic() - start:.1f}s")


def database_file(db_path):
    return os.path.join(db_path, f'{DATABASE}.sqlite')


def build_database(var, config, db_path, rebuild, env=None):
    """Create (or, when it exists, update) the database and load the demo
    data; env: what the demo data loaders read (see fake_alipay_env)"""
    from demo_data import ADMIN_EMAIL, ADMIN_PASSWORD
    db_file = database_file(db_path)
    modules = project_modules()
    activated = None if rebuild else activated_modules(db_file)
    if activated is None:
        log(f"Creating the database {DATABASE} in {db_file}")
        for path in [db_file, os.path.join(db_path, DATABASE)]:
            if os.path.isdir(path):
                shutil.rmtree(path)  # the file store of the database
            elif os.path.exists(path):
                os.remove(path)
        os.makedirs(db_path, exist_ok=True)
        open(db_file, 'w').close()
        passfile = os.path.join(var, 'demo', '.admin-password')
        with open(passfile, 'w') as fp:
            fp.write(ADMIN_PASSWORD + '\n')
        try:
            trytond_admin(var, config, '--all', '--email', ADMIN_EMAIL,
                env=dict(os.environ, TRYTONPASSFILE=passfile))
        finally:
            os.remove(passfile)
        # -l zh_CN: the Chinese of the clients and of the storefront's
        # messages (translations are read from the database)
        trytond_admin(
            var, config, '-u', *modules, '--activate-dependencies',
            '-l', 'zh_CN')
    else:
        log(f"Updating the database {DATABASE} in {db_file}")
        missing = [m for m in modules if m not in activated]
        args = ['--all', '-l', 'zh_CN']
        if missing:
            args += ['-u', *missing, '--activate-dependencies']
        trytond_admin(var, config, *args)
    log("Loading the demo data")
    start = time.monotonic()
    subprocess.check_call(
        [sys.executable, '-m', 'demo_data',
            '--config', config, '--database', DATABASE],
        cwd=SCRIPTS,
        env=dict(os.environ, **(env or {}), PYTHONPATH=os.pathsep.join(
                filter(None, [SCRIPTS, os.environ.get('PYTHONPATH')]))))
    log(f"  done in {time.monotonic() - start:.1f}s")


# --- Servers ----------------------------------------------------------

def port_free(port, host='localhost'):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def wait_http(url, procs, timeout=START_TIMEOUT):
    "Wait until url answers; False if a process ended or timeout"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs.values()):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    return False


def signal_group(proc, signum):
    "Send signum to the process group of proc (its own, see serve)"
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:
        pass


def stop(procs):
    """Stop the processes and their children (trytond-cron's workers):
    SIGINT to each process group, SIGKILL after STOP_TIMEOUT"""
    for proc in procs.values():
        if proc.poll() is None:
            signal_group(proc, signal.SIGINT)
    deadline = time.monotonic() + STOP_TIMEOUT
    for name, proc in procs.items():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log(f"{name} did not stop, killing it")
            signal_group(proc, signal.SIGKILL)
            proc.wait()
    for proc in procs.values():
        # Anything left in the groups
        signal_group(proc, signal.SIGKILL)


def tail(path, lines=20):
    with open(path, errors='replace') as fp:
        return ''.join(fp.readlines()[-lines:])


# --- The fake Alipay gateway -----------------------------------------

FAKE_ALIPAY = 'fake-alipay'


def fake_alipay_dir(var):
    return os.path.join(var, 'demo', 'fake_alipay')


def fake_alipay_url(alipay_port):
    return f'http://127.0.0.1:{alipay_port}'


def fake_alipay_env(var, port, alipay_port):
    "What the demo data of course_payment_alipay reads"
    return {
        'COURSE_DEMO_URL': f'http://localhost:{port}',
        'COURSE_DEMO_ALIPAY_URL': fake_alipay_url(alipay_port),
        'COURSE_DEMO_ALIPAY_DIR': fake_alipay_dir(var),
        }


def start_fake_alipay(var, alipay_port, fresh, procs, logs):
    """Start scripts/fake_alipay.py into procs; fresh (a new database):
    forget the trades of the old one (order numbers start again)"""
    from fake_alipay import PAY_URLS, TRADES
    folder = fake_alipay_dir(var)
    if fresh:
        for name in [TRADES, PAY_URLS]:
            if os.path.exists(os.path.join(folder, name)):
                os.remove(os.path.join(folder, name))
    if not port_free(alipay_port, '127.0.0.1'):
        sys.exit(f"Port {alipay_port} (the fake Alipay gateway) is in use: "
            "stop what uses it or choose another one with --alipay-port")
    logs[FAKE_ALIPAY] = os.path.join(var, 'demo', f'{FAKE_ALIPAY}.log')
    with open(logs[FAKE_ALIPAY], 'a') as out:
        procs[FAKE_ALIPAY] = subprocess.Popen(
            [sys.executable, os.path.join(SCRIPTS, 'fake_alipay.py'),
                '--dir', folder, '--port', str(alipay_port)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            process_group=0)
    log(f"Started {FAKE_ALIPAY} (pid {procs[FAKE_ALIPAY].pid}), "
        f"log in {logs[FAKE_ALIPAY]}")
    if not wait_http(fake_alipay_url(alipay_port) + '/', procs):
        log(tail(logs[FAKE_ALIPAY]))
        sys.exit("The fake Alipay gateway did not start")


def alipay_links(var, alipay_port):
    "The lines telling how to pay the demo's Alipay orders"
    from fake_alipay import read_pay_urls
    url = fake_alipay_url(alipay_port)
    return [f"Pay order {number} with Alipay"
        + (" (fake gateway)" if pay_url.startswith(url + '/') else "")
        + f": {url}/pay/{urllib.parse.quote(number)}"
        for number, pay_url in read_pay_urls(fake_alipay_dir(var)).items()]


# --- The fake WeChat Pay gateway --------------------------------------

FAKE_WECHAT = 'fake-wechat'


def fake_wechat_dir(var):
    return os.path.join(var, 'demo', 'fake_wechat')


def fake_wechat_url(wechat_port):
    return f'http://127.0.0.1:{wechat_port}'


def fake_wechat_env(var, wechat_port):
    "What the demo data of course_payment_wechat reads"
    return {
        'COURSE_DEMO_WECHAT_URL': fake_wechat_url(wechat_port),
        'COURSE_DEMO_WECHAT_DIR': fake_wechat_dir(var),
        }


def start_fake_wechat(var, wechat_port, fresh, procs, logs):
    """Start scripts/fake_wechat.py into procs; fresh (a new database):
    forget the transactions of the old one (order numbers start again)"""
    from fake_wechat import PAY_LINKS, TRADES
    folder = fake_wechat_dir(var)
    if fresh:
        for name in [TRADES, PAY_LINKS]:
            if os.path.exists(os.path.join(folder, name)):
                os.remove(os.path.join(folder, name))
    if not port_free(wechat_port, '127.0.0.1'):
        sys.exit(f"Port {wechat_port} (the fake WeChat Pay gateway) is in "
            "use: stop what uses it or choose another one with "
            "--wechat-port")
    logs[FAKE_WECHAT] = os.path.join(var, 'demo', f'{FAKE_WECHAT}.log')
    with open(logs[FAKE_WECHAT], 'a') as out:
        procs[FAKE_WECHAT] = subprocess.Popen(
            [sys.executable, os.path.join(SCRIPTS, 'fake_wechat.py'),
                '--dir', folder, '--port', str(wechat_port)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            process_group=0)
    log(f"Started {FAKE_WECHAT} (pid {procs[FAKE_WECHAT].pid}), "
        f"log in {logs[FAKE_WECHAT]}")
    if not wait_http(fake_wechat_url(wechat_port) + '/', procs):
        log(tail(logs[FAKE_WECHAT]))
        sys.exit("The fake WeChat Pay gateway did not start")


def wechat_links(var, wechat_port):
    "The lines telling how to pay the demo's WeChat Pay orders"
    from fake_wechat import read_pay_links
    url = fake_wechat_url(wechat_port)
    return [f"Pay order {number} with WeChat Pay (fake gateway): "
        f"{url}/pay/{urllib.parse.quote(number)}"
        for number in read_pay_links(fake_wechat_dir(var))]


def serve(var, config, port, alipay_port, wechat_port, procs, logs):
    from demo_data import LOGINS, STUDENT_LOGINS
    received = []

    def on_signal(signum, frame):
        received.append(signum)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    try:
        for name in ['trytond', 'trytond-cron']:
            logs[name] = os.path.join(var, 'demo', f'{name}.log')
            with open(logs[name], 'a') as out:
                # Own process group: Ctrl-C reaches only this script, which
                # stops its children in order
                cmd = [bin_path(name), '-c', config, '-d', DATABASE,
                    '--logconf', LOGGING_CONFIG]
                if name == 'trytond-cron':
                    cmd += ['-n', '1']  # one worker process is enough
                procs[name] = subprocess.Popen(
                    cmd,
                    stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, process_group=0)
            log(f"Started {name} (pid {procs[name].pid}), "
                f"log in {logs[name]}")
        url = f'http://localhost:{port}/'
        if not wait_http(url, procs) and not received:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    log(f"{name} ended ({proc.returncode}):\n"
                        + tail(logs[name]))
            sys.exit("The demo server did not start")
        if not received:
            width = max(len(login) for login in LOGINS)
            log("")
            log(f"The demo runs at {url}  (database: {DATABASE})")
            log("Logins (login / password):")
            for login, (password, what) in LOGINS.items():
                log(f"  {login:<{width}} / {password:<14} {what}")
            log(f"RPC for scripts: http://<login>:<password>@localhost:"
                f"{port}/{DATABASE}/rpc/")
            log(f"Storefront API (JSON-RPC 2.0): POST http://localhost:"
                f"{port}/{DATABASE}/storefront")
            for email, (password, what) in STUDENT_LOGINS.items():
                log(f"Storefront student: {email} / {password}  {what}")
            for line in alipay_links(var, alipay_port):
                log(line)
            for line in wechat_links(var, wechat_port):
                log(line)
            log("Press Ctrl-C to stop.")
        while not received:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    log(f"{name} ended ({proc.returncode}):\n"
                        + tail(logs[name]))
                    sys.exit(f"{name} stopped, stopping the demo")
            time.sleep(0.2)
        log(f"Stopping ({signal.Signals(received[0]).name})")
    finally:
        stop(procs)


def main():
    args = parse_args()
    ensure_venv()
    var = os.path.abspath(args.var)
    os.makedirs(os.path.join(var, 'demo'), exist_ok=True)
    open(os.path.join(var, 'demo', 'trytond-admin.log'), 'w').close()
    start = time.monotonic()
    sao = ensure_sao(var)
    config, db_path = write_config(var, sao, args.port)
    if not args.no_server and not port_free(args.port):
        sys.exit(f"Port {args.port} is in use: stop what uses it or choose "
            "another one with --port")
    fresh = args.rebuild or activated_modules(database_file(db_path)) is None
    procs, logs = {}, {}
    try:
        # The fake gateway answers while the demo data is loaded (an order
        # is paid and refunded through it)
        start_fake_alipay(var, args.alipay_port, fresh, procs, logs)
        start_fake_wechat(var, args.wechat_port, fresh, procs, logs)
        build_database(var, config, db_path, args.rebuild, env=dict(
                fake_alipay_env(var, args.port, args.alipay_port),
                **fake_wechat_env(var, args.wechat_port)))
        log(f"The demo database is ready ({time.monotonic() - start:.0f}s)")
        if not args.no_server:
            serve(var, config, args.port, args.alipay_port,
                args.wechat_port, procs, logs)
    finally:
        stop(procs)
    if not args.no_server:
        log("Stopped")


if __name__ == '__main__':
    main()

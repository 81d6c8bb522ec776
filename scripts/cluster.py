#!/usr/bin/env python3
"""Run the production layout locally, without Docker: N trytond processes
on free ports, one trytond-cron and one trytond-worker, on one PostgreSQL
database and one Redis.

    python3 scripts/cluster.py start                  # 2 processes, new database
    python3 scripts/cluster.py start -n 4 --demo      # 4 processes, demo data
    python3 scripts/cluster.py start --database course  # an existing database
    python3 scripts/cluster.py start --name shop      # create the database shop
    python3 scripts/cluster.py status
    python3 scripts/cluster.py stop [--drop]          # --drop: the database it created

Every process reads one configuration file written in the state folder
(`--var`, default var/cluster): PostgreSQL (`--postgresql`), `[course]
redis` (`--redis`), `[cache] clean_timeout = 0` (caches invalidated across
processes through LISTEN/NOTIFY), `[queue] worker = True`; each trytond
gets its own port through TRYTOND_WEB__LISTEN.  A reverse proxy spreads the
requests over the printed URLs in production (config/nginx.conf.example).
The pids, ports and paths are kept in <var>/cluster.json for `stop` and
`status`; each process's log is <var>/<name>.log.

Importable (tests, scripts/soak.py):

    from cluster import start_cluster
    cluster = start_cluster('course', processes=2, redis_url=...)
    cluster.urls        # ['http://127.0.0.1:PORT', ...], one per trytond
    cluster.kill(0)     # SIGKILL trytond 0;  cluster.restart(0) starts it
    cluster.stop()
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(SCRIPTS)
DEFAULT_VAR = os.path.join(ROOT, 'var', 'cluster')
DEFAULT_POSTGRESQL = os.environ.get(
    'COURSE_CLUSTER_POSTGRESQL', 'postgresql://postgres@127.0.0.1:5432/')
DEFAULT_REDIS = os.environ.get(
    'COURSE_CLUSTER_REDIS', 'redis://127.0.0.1:6379/0')
DEFAULT_DATABASE = 'course_cluster'
ADMIN_EMAIL = 'admin@example.com'
STATE = 'cluster.json'
START_TIMEOUT = 120
STOP_TIMEOUT = 15
# The environment of the test runner and of a shell that points trytond
# elsewhere: the processes read only the cluster's file
FOREIGN_ENV = ('TRYTOND_', 'DB_NAME', 'DB_CACHE', 'TRYTON_CONFIG')

LOGGING = '''[formatters]
keys=simple

[handlers]
keys=console

[loggers]
keys=root,modules,cron,werkzeug

[formatter_simple]
format=%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s

[handler_console]
class=StreamHandler
formatter=simple
args=(sys.stderr,)

[logger_root]
level=WARNING
handlers=console

[logger_modules]
# Our modules' INFO lines (e.g. each expiry run and what it did)
level=INFO
handlers=
qualname=trytond.modules

[logger_cron]
level=INFO
handlers=
qualname=trytond.ir.cron

[logger_werkzeug]
# Not a line per request
level=WARNING
handlers=
qualname=werkzeug
'''


def log(message):
    print(message, flush=True)


def free_port():
    "A TCP port of 127.0.0.1 free now"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def bin_path(name):
    "A script of the running Python's environment (the venv)"
    return os.path.join(os.path.dirname(sys.executable), name)


def config_text(postgresql, redis_url, folder, sections=None):
    """The configuration file of every process: sections
    ({section: {option: value}}) add to or override the defaults"""
    values = {
        'database': {
            'uri': postgresql,
            'path': os.path.join(folder, 'filestore'),
            'retry': '20',
            },
        # Each process clears its in-memory caches (access rights,
        # messages, translations...) as soon as another one changes what
        # they hold: PostgreSQL's LISTEN/NOTIFY (the default, 300, polls
        # ir_cache every 300 s: other processes serve stale values meanwhile)
        # The listener wakes up every select_timeout (default 60) s: a
        # NOTIFY that arrives while it pings the database (psycopg keeps it
        # aside, the socket stays quiet) waits for that wake-up
        'cache': {'clean_timeout': '0', 'select_timeout': '5'},
        # Tasks are queued for trytond-worker instead of run in the request
        'queue': {'worker': 'True'},
        'course': {'redis': redis_url} if redis_url else {},
        }
    for section, options in (sections or {}).items():
        values.setdefault(section, {}).update(options)
    lines = ["# Written by scripts/cluster.py: the production layout run "
        "locally", '']
    for section, options in values.items():
        lines.append(f'[{section}]')
        lines.extend(f'{key} = {value}' for key, value in options.items())
        lines.append('')
    return '\n'.join(lines)


def process_env(extra=None):
    env = {k: v for k, v in os.environ.items()
        if not k.startswith(FOREIGN_ENV)}
    env.update(extra or {})
    return env


def alive(pid):
    "Is pid a running (not zombie) process"
    try:
        with open(f'/proc/{pid}/stat') as fp:
            return fp.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (FileNotFoundError, ProcessLookupError):
        return False


def started_by(pid, command):
    "Is pid still the process started with command (not a reused pid)"
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as fp:
            return fp.read().rstrip(b'\0').split(b'\0') == [
                part.encode() for part in command]
    except OSError:
        return False


def tail(path, lines=30):
    try:
        with open(path, 'rb') as fp:
            text = fp.read().decode('utf-8', 'replace')
    except OSError:
        return ''
    return '\n'.join(text.splitlines()[-lines:])


class ClusterError(RuntimeError):
    pass


class Process:
    """One process of the cluster: name (trytond-0, trytond-cron...), the
    command, its port (trytond only) and its pid once started"""

    def __init__(self, name, command, port=None, pid=None, env=None):
        self.name = name
        self.command = command
        self.port = port
        self.pid = pid
        self.env = env or {}
        self.popen = None

    @property
    def url(self):
        return f'http://127.0.0.1:{self.port}' if self.port else None

    def start(self, folder):
        self.log_path = os.path.join(folder, f'{self.name}.log')
        with open(self.log_path, 'ab') as out:
            # A session of its own: the group holds the process and its
            # children (trytond-cron's and trytond-worker's pools), it
            # survives the end of `cluster.py start` and Ctrl-C in its shell
            self.popen = subprocess.Popen(
                self.command, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=process_env(self.env),
                start_new_session=True, cwd=folder)
        self.pid = self.popen.pid
        return self

    def alive(self):
        if self.popen is not None:
            return self.popen.poll() is None
        return self.pid is not None and alive(self.pid)

    def signal(self, signum):
        "Send signum to the process's group"
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            pass

    def wait(self, timeout):
        "Until the process ended (reaped when ours); False on timeout"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen is not None:
                try:
                    self.popen.wait(0.1)
                    return True
                except subprocess.TimeoutExpired:
                    continue
            if not alive(self.pid):
                return True
            time.sleep(0.1)
        return False

    def state(self):
        return {'name': self.name, 'command': self.command,
            'port': self.port, 'pid': self.pid, 'env': self.env}


class Cluster:
    """The processes of a cluster and where they keep their state;
    servers are the trytond processes (index i of kill/restart)"""

    def __init__(self, database, folder, config_path, processes,
            created=False, postgresql=None, redis_url=None):
        self.redis_url = redis_url
        self.database = database
        self.folder = folder
        self.config_path = config_path
        self.processes = processes
        self.created = created
        self.postgresql = postgresql

    @property
    def servers(self):
        return [p for p in self.processes if p.port]

    @property
    def urls(self):
        return [p.url for p in self.servers]

    def process(self, name):
        return next(p for p in self.processes if p.name == name)

    @property
    def state_path(self):
        return os.path.join(self.folder, STATE)

    def save(self):
        state = {
            'database': self.database, 'folder': self.folder,
            'config': self.config_path, 'created': self.created,
            'postgresql': self.postgresql, 'redis': self.redis_url,
            'processes': [p.state() for p in self.processes],
            }
        tmp = self.state_path + '.tmp'
        with open(tmp, 'w') as fp:
            json.dump(state, fp, indent=2)
        os.replace(tmp, self.state_path)

    @classmethod
    def load(cls, folder):
        "The cluster of the state file in folder"
        with open(os.path.join(folder, STATE)) as fp:
            state = json.load(fp)
        processes = [Process(p['name'], p['command'], p['port'], p['pid'],
                p.get('env')) for p in state['processes']]
        return cls(state['database'], state['folder'], state['config'],
            processes, state.get('created', False), state.get('postgresql'),
            state.get('redis'))

    def command(self, script, *args):
        return [sys.executable, bin_path(script), '-c', self.config_path,
            '--logconf', os.path.join(self.folder, 'logging.conf'),
            '-d', self.database] + list(args)

    def start_process(self, process, timeout=START_TIMEOUT):
        process.start(self.folder)
        self.save()
        try:
            self.wait_ready(process, timeout)
        except ClusterError:
            self.stop_process(process)
            raise

    def wait_ready(self, process, timeout=START_TIMEOUT):
        """Until a trytond answers the storefront (its pool loaded), or a
        moment after the start of another process"""
        deadline = time.monotonic() + timeout
        while True:
            if not process.alive():
                raise ClusterError(
                    f"{process.name} stopped at start:\n"
                    + tail(process.log_path))
            if not process.port:
                if time.monotonic() > deadline - timeout + 1:
                    return
            elif answers(process.url, self.database):
                return
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"{process.name} did not answer in {timeout}s:\n"
                    + tail(process.log_path))
            time.sleep(0.2)

    def target(self, which):
        "The process of which: an index of servers or a name"
        if isinstance(which, int):
            return self.servers[which]
        return self.process(which)

    def kill(self, which, signum=signal.SIGKILL):
        """Kill trytond which (an index; or a process's name) with SIGKILL
        by default and wait for its end"""
        process = self.target(which)
        process.signal(signum)
        process.wait(STOP_TIMEOUT)

    def restart(self, which, timeout=START_TIMEOUT):
        """Start trytond which (an index; or a process's name) again, on
        the same port (stopped first if running)"""
        process = self.target(which)
        if process.alive():
            self.stop_process(process)
        self.start_process(process, timeout)

    def stop_process(self, process):
        "SIGTERM, then SIGKILL what is left after STOP_TIMEOUT"
        if process.pid is None:
            return
        if process.popen is None and not started_by(
                process.pid, process.command):
            return  # ended long ago: the pid may be another's now
        process.signal(signal.SIGTERM)
        if not process.wait(STOP_TIMEOUT):
            process.signal(signal.SIGKILL)
            process.wait(STOP_TIMEOUT)
        # Children left in the group (a pool's workers)
        process.signal(signal.SIGKILL)

    def stop(self, drop=False):
        "Stop every process (servers first); drop: the database it created"
        for process in self.servers + [
                p for p in self.processes if not p.port]:
            self.stop_process(process)
        if drop and self.created:
            drop_database(self.postgresql, self.database)
            if self.redis_url:
                forget_redis_keys(self.redis_url, self.database)
        if os.path.exists(self.state_path):
            os.remove(self.state_path)

    def status(self):
        "[(name, pid, url, alive)]"
        return [(p.name, p.pid, p.url,
                p.alive() and (p.popen is not None
                    or started_by(p.pid, p.command)))
            for p in self.processes]


def answers(url, database):
    """Does the trytond at url answer a public storefront call (an error
    answer too: a new database has no company to sell for yet)"""
    body = json.dumps({'jsonrpc': '2.0', 'method': 'catalog.directions',
            'id': 1}).encode()
    request = urllib.request.Request(
        f'{url}/{database}/storefront', data=body, method='POST',
        headers={'Content-Type': 'application/json'})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status == 200 and 'jsonrpc' in json.load(response)
    except (OSError, ValueError):
        return False


# --- The database --------------------------------------------------------

def connect(postgresql, dbname='postgres'):
    import psycopg
    return psycopg.connect(
        postgresql.rstrip('/') + '/' + dbname, autocommit=True,
        connect_timeout=5)


def database_exists(postgresql, database):
    with connect(postgresql) as conn:
        return bool(conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s",
                (database,)).fetchone())


def drop_database(postgresql, database):
    from psycopg import sql
    with connect(postgresql) as conn:
        conn.execute(sql.SQL('DROP DATABASE IF EXISTS {} WITH (FORCE)'
                ).format(sql.Identifier(database)))


def forget_redis_keys(redis_url, database):
    "Delete the database's keys of our modules (carts, rate limits)"
    import redis
    server = redis.Redis.from_url(redis_url)
    keys = list(server.scan_iter(match=f'course:{database}:*', count=1000))
    if keys:
        server.delete(*keys)


def project_modules():
    sys.path.insert(0, SCRIPTS)
    from demo_data import project_modules
    return project_modules()


def create_database(postgresql, database, config_path, folder,
        password='admin'):
    """A new PostgreSQL database with every project module activated
    (trytond-admin, non-interactive: --email, TRYTONPASSFILE)"""
    from psycopg import sql
    with connect(postgresql) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} ENCODING 'UTF8'"
                ).format(sql.Identifier(database)))
    passfile = os.path.join(folder, '.admin-password')
    with open(passfile, 'w') as fp:
        fp.write(password + '\n')
    os.chmod(passfile, 0o600)
    admin = [sys.executable, bin_path('trytond-admin'), '-c', config_path,
        '--logconf', os.path.join(folder, 'logging.conf'), '-d', database]
    log_path = os.path.join(folder, 'trytond-admin.log')
    try:
        for args in [['--all', '--email', ADMIN_EMAIL],
                ['-u', *project_modules(), '--activate-dependencies']]:
            log(f"$ trytond-admin -d {database} {' '.join(args)}")
            with open(log_path, 'ab') as out:
                code = subprocess.call(admin + args, stdout=out,
                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=process_env({'TRYTONPASSFILE': passfile}))
            if code:
                raise ClusterError(
                    f"trytond-admin failed ({code}):\n" + tail(log_path))
    finally:
        os.remove(passfile)


def load_demo_data(database, config_path, folder, cluster):
    """The demo data of scripts/demo_data, with the fake Alipay gateway
    (scripts/fake_alipay.py) added to the cluster: the demo's Alipay
    account points at it and one demo order is paid through it"""
    alipay_port = free_port()
    gateway = Process('fake-alipay', [sys.executable,
            os.path.join(SCRIPTS, 'fake_alipay.py'),
            '--dir', os.path.join(folder, 'fake_alipay'),
            '--port', str(alipay_port)])
    cluster.processes.append(gateway)
    cluster.start_process(gateway)
    env = process_env({
            'COURSE_DEMO_URL': cluster.urls[0],
            'COURSE_DEMO_ALIPAY_URL': f'http://127.0.0.1:{alipay_port}',
            'COURSE_DEMO_ALIPAY_DIR': os.path.join(folder, 'fake_alipay'),
            'PYTHONPATH': os.pathsep.join(
                filter(None, [SCRIPTS, os.environ.get('PYTHONPATH')])),
            })
    log("Loading the demo data")
    with open(os.path.join(folder, 'demo-data.log'), 'ab') as out:
        code = subprocess.call(
            [sys.executable, '-m', 'demo_data', '--config', config_path,
                '--database', database], cwd=SCRIPTS, env=env,
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if code:
        raise ClusterError("the demo data failed:\n"
            + tail(os.path.join(folder, 'demo-data.log')))


# --- Start ---------------------------------------------------------------

def start_cluster(database, processes=2, redis_url=DEFAULT_REDIS,
        postgresql=DEFAULT_POSTGRESQL, folder=DEFAULT_VAR, create=False,
        demo=False, cron=True, worker=True, sections=None, ports=None):
    """Start the layout on database (created first when create) and return
    the Cluster; sections add to the configuration file (config_text),
    ports: the trytond ports (free ones by default)"""
    folder = os.path.abspath(folder)
    os.makedirs(folder, exist_ok=True)
    if os.path.exists(os.path.join(folder, STATE)):
        previous = Cluster.load(folder)
        if any(running for *_, running in previous.status()):
            raise ClusterError(
                f"a cluster already runs from {folder}: stop it first")
    config_path = os.path.join(folder, 'trytond.conf')
    with open(config_path, 'w') as fp:
        fp.write(config_text(postgresql, redis_url, folder, sections))
    with open(os.path.join(folder, 'logging.conf'), 'w') as fp:
        fp.write(LOGGING)
    if create:
        create_database(postgresql, database, config_path, folder)
    cluster = Cluster(database, folder, config_path, [],
        created=create, postgresql=postgresql, redis_url=redis_url)
    ports = list(ports or [])
    for i in range(processes):
        port = ports[i] if i < len(ports) else free_port()
        cluster.processes.append(Process(f'trytond-{i}',
                cluster.command('trytond'), port=port,
                env={'TRYTOND_WEB__LISTEN': f'127.0.0.1:{port}'}))
    if cron:
        cluster.processes.append(Process(
                'trytond-cron', cluster.command('trytond-cron', '-n', '1')))
    if worker:
        cluster.processes.append(Process(
                'trytond-worker',
                cluster.command('trytond-worker', '-n', '1')))
    try:
        for process in cluster.processes:
            process.start(folder)
        cluster.save()
        for process in list(cluster.processes):
            cluster.wait_ready(process)
        if demo:
            load_demo_data(database, config_path, folder, cluster)
    except BaseException:
        cluster.stop(drop=create)
        raise
    return cluster


# --- Command line --------------------------------------------------------

def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--var', default=DEFAULT_VAR, metavar='DIR',
        help="state folder (configuration, logs, cluster.json)")
    commands = parser.add_subparsers(dest='action', required=True)
    start = commands.add_parser('start', help="start the processes")
    start.add_argument('-n', '--processes', type=int, default=2,
        help="trytond processes (default 2)")
    start.add_argument('--database', metavar='NAME',
        help="serve this existing database (default: create one)")
    start.add_argument('--name', default=DEFAULT_DATABASE,
        help="the name of the database to create (default "
        f"{DEFAULT_DATABASE})")
    start.add_argument('--postgresql', default=DEFAULT_POSTGRESQL,
        metavar='URI', help=f"default {DEFAULT_POSTGRESQL}")
    start.add_argument('--redis', default=DEFAULT_REDIS, metavar='URL',
        help=f"[course] redis (default {DEFAULT_REDIS})")
    start.add_argument('--demo', action='store_true',
        help="load the demo data into the new database")
    start.add_argument('--no-worker', action='store_true',
        help="without trytond-worker")
    stop = commands.add_parser('stop', help="stop the processes")
    stop.add_argument('--drop', action='store_true',
        help="drop the database `start` created")
    commands.add_parser('status', help="the processes and their state")
    return parser.parse_args()


def main():
    args = parse_args()
    sys.path.insert(0, SCRIPTS)
    from bootstrap import ensure_venv
    ensure_venv()
    folder = os.path.abspath(args.var)
    if args.action == 'start':
        database = args.database or args.name
        create = not args.database
        if create and database_exists(args.postgresql, database):
            sys.exit(f"The database {database} exists: serve it with "
                f"--database {database}, or drop it first")
        if not create and not database_exists(args.postgresql, database):
            sys.exit(f"The database {database} does not exist")
        if args.demo and not create:
            sys.exit("--demo loads the demo data into a new database only")
        start = time.monotonic()
        try:
            cluster = start_cluster(database, args.processes, args.redis,
                args.postgresql, folder, create=create, demo=args.demo,
                worker=not args.no_worker)
        except ClusterError as error:
            sys.exit(str(error))
        log(f"Started in {time.monotonic() - start:.0f}s, database "
            f"{database}, configuration {cluster.config_path}")
        print_status(cluster)
        if args.demo:
            print_demo_logins()
        elif create:
            log("Staff login: admin / admin")
        log(f"Stop with: python3 scripts/cluster.py --var {folder} stop"
            + (" --drop" if create else ""))
    else:
        try:
            cluster = Cluster.load(folder)
        except FileNotFoundError:
            sys.exit(f"No cluster runs from {folder}")
        if args.action == 'status':
            print_status(cluster)
        else:
            cluster.stop(drop=args.drop)
            log("Stopped" + (f", database {cluster.database} dropped"
                    if args.drop and cluster.created else ""))


def print_demo_logins():
    from demo_data import LOGINS, STUDENT_LOGINS
    for login, (password, description) in LOGINS.items():
        log(f"Staff login: {login} / {password}  ({description})")
    for email, (password, *_) in STUDENT_LOGINS.items():
        log(f"Storefront student: {email} / {password}")


def print_status(cluster):
    for name, pid, url, running in cluster.status():
        where = (f"  {url}/  (storefront {url}/{cluster.database}/storefront)"
            if url else '')
        log(f"{name:16} pid {pid:<8} {'running' if running else 'STOPPED'}"
            f"{where}")


if __name__ == '__main__':
    main()

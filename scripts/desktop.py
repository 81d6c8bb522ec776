#!/usr/bin/env python3
"""Open the demo in the desktop client `tryton` 8.0.

    python3 scripts/desktop.py                  # sales, the orders list
    python3 scripts/desktop.py --user manager --model course.course
    python3 scripts/desktop.py --port 8080      # the demo on another port

1. installs the client when missing (scripts/install_desktop.sh: Debian's
   GTK 3 packages, then `tryton` 8.0 in var/desktop-client/venv);
2. uses the demo already serving on localhost:--port, or starts
   `scripts/demo.py --port <port>` and stops it when the client closes
   (the options this script does not know go to scripts/demo.py, e.g.
   --rebuild, --var DIR, --alipay-port N);
3. opens the client as --user on a deep link to the list of --model
   (tryton://localhost:<port>/course_demo/model/<model>): the client asks
   only the password, which this script prints.

The client's configuration (profiles, window sizes) is kept in
var/desktop-client/config (--config-dir), apart from the user's own.
Needs a display (a desktop session, or Xvfb as in tests/test_desktop.py).
"""
import argparse
import configparser
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SCRIPTS)
from demo_data import LOGINS  # noqa: E402

ROOT = os.path.dirname(SCRIPTS)
DATABASE = 'course_demo'
CLIENT_HOME = os.path.join(ROOT, 'var', 'desktop-client')
VENV = os.environ.get('DESKTOP_VENV', os.path.join(CLIENT_HOME, 'venv'))
TRYTON = os.path.join(VENV, 'bin', 'tryton')
INSTALL = os.path.join(SCRIPTS, 'install_desktop.sh')
DEMO = os.path.join(SCRIPTS, 'demo.py')
SERIES = '8.0'
STOP_TIMEOUT = 30


def log(message):
    print(message, flush=True)


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument('--port', type=int, default=8000,
        help="the port of the demo (default: %(default)s)")
    parser.add_argument('--user', default='sales', choices=sorted(LOGINS),
        help="the demo login (default: %(default)s)")
    parser.add_argument('--model', default='course.order',
        help="the model whose list opens (default: %(default)s)")
    parser.add_argument('--config-dir', metavar='DIR',
        default=os.path.join(CLIENT_HOME, 'config'),
        help="the client's configuration folder (default: %(default)s)")
    parser.add_argument('--log', metavar='FILE',
        help="log the client's RPC calls (tryton -v) to FILE")
    # The other options go to scripts/demo.py when this script starts it
    return parser.parse_known_args()


def server_version(port):
    "The series (8.0) of the Tryton server on localhost:port, or None"
    request = urllib.request.Request(
        f'http://localhost:{port}/rpc/',
        data=json.dumps({'id': 0, 'method': 'common.server.version',
                'params': []}).encode(),
        headers={'Content-Type': 'application/json'})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response).get('result')
    except (OSError, ValueError, AttributeError):
        return None


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(('localhost', port))
        except OSError:
            return False
    return True


def install_client():
    "Run scripts/install_desktop.sh; exit with its code when it fails"
    code = subprocess.call(['sh', INSTALL])
    if code:
        sys.exit(code)


def start_demo(port, demo_args):
    """Start scripts/demo.py on port in its own process group (Ctrl-C in
    the terminal reaches only this script, which stops it); return it"""
    proc = subprocess.Popen(
        [sys.executable, DEMO, '--port', str(port)] + demo_args, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        process_group=0)
    log(f"Started scripts/demo.py (pid {proc.pid}) on port {port}")
    return proc


def wait_demo(proc):
    """Show the demo's output, now and later (a full pipe would block it);
    return once it serves"""
    ready, serving = threading.Event(), []

    def relay():
        for line in proc.stdout:
            print(line, end='', flush=True)
            if line.startswith('Press Ctrl-C'):
                serving.append(True)
                ready.set()
        ready.set()
    thread = threading.Thread(target=relay, daemon=True)
    thread.start()
    ready.wait()
    if not serving:
        sys.exit(f"The demo ended ({proc.wait()}) before serving")
    return thread


def stop_demo(proc, relay):
    "Stop the demo this script started, as Ctrl-C does"
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if relay is not None:
        relay.join(STOP_TIMEOUT)  # its last words ('Stopped')


def interrupt(signum, frame):
    raise KeyboardInterrupt


def write_client_config(config_dir):
    """The client's tryton.conf in config_dir without its version check
    (it calls tryton.org); the client keeps its other settings there"""
    folder = os.path.join(config_dir, 'tryton', SERIES)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    path = os.path.join(folder, 'tryton.conf')
    config = configparser.ConfigParser()
    config.read(path)
    if not config.has_section('client'):
        config.add_section('client')
    config.set('client', 'check_version', 'False')
    # No profile: the header shows login@host/database, not the default
    # profile's name (demo<series>.tryton.org)
    if not config.has_section('login'):
        config.add_section('login')
    config.set('login', 'profile', '')
    with open(path, 'w') as fp:
        config.write(fp)


def client_command(port, user, model, log_file=None):
    command = [TRYTON, '-u', user]
    if log_file:
        command += ['-v', '-o', log_file]
    return command + [f'tryton://localhost:{port}/{DATABASE}/model/{model}']


def run_client(command, config_dir):
    """Run the client until it closes; SIGTERM or SIGINT close it too.
    Return its exit code"""
    env = dict(os.environ, XDG_CONFIG_HOME=config_dir)
    client = subprocess.Popen(command, env=env)

    def close(signum, frame):
        if client.poll() is None:
            client.terminate()
    signal.signal(signal.SIGTERM, close)
    signal.signal(signal.SIGINT, close)
    return client.wait()


def main():
    args, demo_args = parse_args()
    if not (os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')):
        sys.exit("No display (DISPLAY is not set): run it in a desktop "
            "session (tests/test_desktop.py gives it an Xvfb display)")
    # Until the client runs, SIGTERM stops this script as Ctrl-C does:
    # through the finally below, which stops the demo it started
    signal.signal(signal.SIGTERM, interrupt)
    install_client()
    demo = relay = None
    try:
        version = server_version(args.port)
        if version is None:
            if not port_free(args.port):
                sys.exit(f"Port {args.port} is in use but no Tryton server "
                    "answers there: choose another one with --port")
            demo = start_demo(args.port, demo_args)
            relay = wait_demo(demo)
        elif version != SERIES:
            sys.exit(f"The server on port {args.port} runs Tryton "
                f"{version}, not {SERIES}")
        elif demo_args:
            log(f"The demo already runs on port {args.port}: "
                f"{' '.join(demo_args)} ignored")
        write_client_config(args.config_dir)
        command = client_command(
            args.port, args.user, args.model, args.log)
        log(f"Opening the desktop client as {args.user} "
            f"(password: {LOGINS[args.user][0]}): {command[-1]}")
        code = run_client(command, args.config_dir)
        log(f"The desktop client ended ({code})")
    except KeyboardInterrupt:
        code = 130
    finally:
        if demo is not None:
            stop_demo(demo, relay)
    # A client killed by a signal: the shell's 128 + signal number
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == '__main__':
    main()

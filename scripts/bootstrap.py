"""Make the project's virtualenv and run a script inside it.

Both README commands start with ``ensure_venv()``: on a fresh machine it
creates ``.venv``, installs the project (editable, with its test extras) and
re-executes the calling script with the venv's Python.  The install is
redone when setup.py or a module's tryton.cfg changes (a new module means a
new entry point).
"""
import hashlib
import os
import subprocess
import sys
import venv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.environ.get('COURSE_VENV', os.path.join(ROOT, '.venv'))
MARKER = os.path.join(VENV, '.course-install')


def venv_python():
    return os.path.join(VENV, 'bin', 'python')


def install_fingerprint():
    "Hash of what decides the installation"
    digest = hashlib.sha256()
    paths = [os.path.join(ROOT, 'setup.py')]
    modules = os.path.join(ROOT, 'modules')
    for name in sorted(os.listdir(modules)):
        cfg = os.path.join(modules, name, 'tryton.cfg')
        if os.path.exists(cfg):
            paths.append(cfg)
    for path in paths:
        digest.update(path.encode())
        with open(path, 'rb') as fp:
            digest.update(fp.read())
    return digest.hexdigest()


def in_venv():
    return os.path.realpath(sys.prefix) == os.path.realpath(VENV)


def ensure_venv():
    "Create/refresh the venv, then re-run the calling script inside it"
    fingerprint = install_fingerprint()
    installed = None
    if os.path.exists(MARKER):
        with open(MARKER) as fp:
            installed = fp.read().strip()
    if installed != fingerprint:
        if not os.path.exists(venv_python()):
            print(f"Creating the virtualenv {VENV}", flush=True)
            venv.create(VENV, with_pip=True)
        print("Installing the project and its dependencies", flush=True)
        pip = [venv_python(), '-m', 'pip', '--disable-pip-version-check']
        subprocess.check_call(pip + ['install', '-q', '--upgrade', 'pip'])
        subprocess.check_call(
            pip + ['install', '-q', '-e', f'{ROOT}[test]'], cwd=ROOT)
        with open(MARKER, 'w') as fp:
            fp.write(fingerprint)
    if not in_venv():
        os.execv(venv_python(), [venv_python()] + sys.argv)

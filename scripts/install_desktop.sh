#!/bin/sh
# Install the desktop client `tryton` 8.0 that scripts/desktop.py opens and
# tests/test_desktop.py drives:
#
#   - Debian's GTK 3 bindings for Python (python3-gi, python3-gi-cairo,
#     gir1.2-gtk-3.0) and, for the test, Xvfb, xdotool, xprop (x11-utils)
#     and ImageMagick's `import` (screenshots);
#   - the client in its own virtualenv, var/desktop-client/venv (or
#     $DESKTOP_VENV), made from Debian's /usr/bin/python3 with its system
#     site packages, so that PyGObject comes from Debian and is not built.
#
#   sh scripts/install_desktop.sh
#
# Does nothing when everything is there.  The Debian packages need root and
# apt-get (Debian or Ubuntu); exits 2 when it cannot install, 1 when the
# installation failed.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${DESKTOP_VENV:-$ROOT/var/desktop-client/venv}
SYSTEM_PYTHON=/usr/bin/python3
TRYTON_SPEC='tryton>=8.0,<8.1'
PACKAGES="python3-gi python3-gi-cairo gir1.2-gtk-3.0"
PACKAGES="$PACKAGES xvfb xdotool x11-utils imagemagick"

gtk_ok() {
    [ -x "$SYSTEM_PYTHON" ] && "$SYSTEM_PYTHON" -c '
import gi
gi.require_version("Gtk", "3.0")
gi.require_foreign("cairo")
' >/dev/null 2>&1
}

tools_ok() {
    for tool in Xvfb xdotool xprop import; do
        [ -x "/usr/bin/$tool" ] || return 1
    done
}

client_ok() {
    [ -x "$VENV/bin/tryton" ] && "$VENV/bin/python" -c '
import importlib.metadata as m, sys
sys.exit(not m.version("tryton").startswith("8.0."))
' >/dev/null 2>&1
}

if ! gtk_ok || ! tools_ok; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "Cannot install the desktop client's Debian packages:" \
            "no apt-get (install: $PACKAGES)" >&2
        exit 2
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "Cannot install the desktop client's Debian packages: not root" \
            "(run: sudo sh $0)" >&2
        exit 2
    fi
    export DEBIAN_FRONTEND=noninteractive
    echo "Installing $PACKAGES with apt-get"
    # Another apt-get may be running: wait for its lock instead of failing
    apt-get -o DPkg::Lock::Timeout=600 update -q || exit 1
    # shellcheck disable=SC2086
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
        $PACKAGES || exit 1
    # Fonts for the Chinese demo data: nice to have
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
        fonts-noto-cjk || echo "fonts-noto-cjk not installed (optional)" >&2
    if ! gtk_ok || ! tools_ok; then
        echo "apt-get ended but GTK 3 for $SYSTEM_PYTHON or one of" \
            "Xvfb, xdotool, xprop, import is missing" >&2
        exit 1
    fi
fi

if ! client_ok; then
    echo "Installing the desktop client ($TRYTON_SPEC) into $VENV"
    if [ ! -x "$VENV/bin/python" ]; then
        mkdir -p "$(dirname "$VENV")"
        "$SYSTEM_PYTHON" -m venv --system-site-packages "$VENV" || exit 1
    fi
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        "$TRYTON_SPEC" || exit 1
    if ! client_ok; then
        echo "pip ended but $VENV/bin/tryton 8.0 is missing" >&2
        exit 1
    fi
fi
echo "The desktop client is installed: $VENV/bin/tryton"

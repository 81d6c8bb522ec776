#!/bin/sh
# Install the browser the browser tests (tests/test_browser.py) drive:
# Debian's Chromium at /usr/bin/chromium, plus CJK fonts for the Chinese
# demo data (optional).  Playwright itself is a Python package of the `test`
# extra; its own browser downloads (`playwright install`) are never used.
#
#   sh scripts/install_browser.sh
#
# Does nothing when /usr/bin/chromium exists.  Otherwise needs root and
# apt-get (Debian or Ubuntu); exits 2 when it cannot install, 1 when the
# installation failed.
set -eu

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

if [ -x "$CHROMIUM" ]; then
    echo "Chromium is installed: $CHROMIUM"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "Cannot install Chromium: no apt-get (install it at $CHROMIUM)" >&2
    exit 2
fi
if [ "$(id -u)" != 0 ]; then
    echo "Cannot install Chromium: not root (run: sudo sh $0)" >&2
    exit 2
fi

export DEBIAN_FRONTEND=noninteractive
echo "Installing Chromium with apt-get"
apt-get update -q || exit 1
apt-get install -y -q --no-install-recommends chromium || exit 1
# Fonts for the Chinese course names in screenshots: nice to have
apt-get install -y -q --no-install-recommends fonts-noto-cjk \
    || echo "fonts-noto-cjk not installed (optional)" >&2
if [ ! -x "$CHROMIUM" ]; then
    echo "apt-get installed chromium but $CHROMIUM is missing" >&2
    exit 1
fi
echo "Chromium is installed: $CHROMIUM"

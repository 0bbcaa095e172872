#!/bin/sh
# Make sure Debian's headless-capable Chromium is installed; print its path on success.
# Used by tests/test_report_browser.py. Exit status 0 = available, non-zero = impossible here
# (no root, no apt-get, or no package mirror reachable); the reason goes to stderr.
set -eu

for candidate in "${CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
        echo "$candidate"
        exit 0
    fi
done

if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium is not installed and apt-get is not available" >&2
    exit 3
fi
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "chromium is not installed and installing it needs root (apt-get install -y chromium)" >&2
        exit 4
    fi
else
    SUDO=""
fi

export DEBIAN_FRONTEND=noninteractive
# Serialise concurrent installs (several test runs may start at once).
exec 9>/tmp/fairgen-ensure-chromium.lock
if command -v flock >/dev/null 2>&1; then
    flock -w 900 9 || { echo "timed out waiting for another chromium install" >&2; exit 5; }
fi
if [ ! -x /usr/bin/chromium ]; then
    if ! $SUDO apt-get install -y --no-install-recommends chromium >&2; then
        $SUDO apt-get update >&2 || true
        $SUDO apt-get install -y --no-install-recommends chromium >&2 || {
            echo "apt-get install -y chromium failed (no package mirror reachable?)" >&2
            exit 6
        }
    fi
fi
[ -x /usr/bin/chromium ] || { echo "chromium package installed but /usr/bin/chromium is missing" >&2; exit 7; }
echo /usr/bin/chromium

#!/usr/bin/env bash
# What the browser test needs beyond the Python runtime: Debian's Chromium (no browser download:
# Playwright's own cannot be fetched here) and playwright-core from npm, pinned by the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "[dit-cache] /usr/bin/chromium is missing: install Debian's chromium package (as root)" >&2
    exit 1
  fi
  apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
fi
if [ ! -d tests/integration/browser/node_modules/playwright-core ]; then
  npm ci --prefix tests/integration/browser --no-audit --no-fund --loglevel=error
fi

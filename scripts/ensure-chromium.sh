#!/usr/bin/env bash
# Idempotently install headless Chromium and its WebDriver for the browser tests
# (tests/tests/browser_*.rs): Debian's `chromium` and `chromium-driver` packages, only when
# /usr/bin/chromium or /usr/bin/chromedriver is missing. Quiet unless it fails.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
CHROMEDRIVER=/usr/bin/chromedriver

if [ -x "${CHROMIUM}" ] && [ -x "${CHROMEDRIVER}" ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

log="$(mktemp)"
trap 'rm -f "${log}"' EXIT
echo "installing chromium and chromium-driver (apt-get)"
if ! { ${SUDO} apt-get update -qq \
  && DEBIAN_FRONTEND=noninteractive ${SUDO} apt-get install -y -qq chromium chromium-driver; } \
  >"${log}" 2>&1; then
  cat "${log}" >&2
  echo "error: could not install chromium and chromium-driver" >&2
  exit 1
fi

for bin in "${CHROMIUM}" "${CHROMEDRIVER}"; do
  if [ ! -x "${bin}" ]; then
    echo "error: ${bin} is missing after installing chromium and chromium-driver" >&2
    exit 1
  fi
done

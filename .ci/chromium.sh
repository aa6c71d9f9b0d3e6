#!/usr/bin/env bash
# Installs Debian's headless Chromium and its WebDriver (when missing), for the browser
# tests (tests/browser.rs). Used by .ci/run; prints nothing on stdout.
set -euo pipefail
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "installing chromium and chromium-driver" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >&2
fi
/usr/bin/chromium --version >&2
/usr/bin/chromedriver --version >&2

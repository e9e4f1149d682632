#!/usr/bin/env bash
# Install Debian's Chromium for the worklist browser test when we can (root + apt).
# Without it the browser test is skipped locally; CI sets FH_REQUIRE_BROWSER=1 so it must run there.
set -u
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "fh-screen: installing chromium for the browser test..." >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) 2>&1 | tail -3
fi
command -v chromium >/dev/null 2>&1

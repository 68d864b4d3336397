#!/bin/sh
# Make sure a headless Chromium and its WebDriver are there for the dashboard's browser
# tests (tests/dashboard): Debian's `chromium` and `chromium-driver`. Installs them with
# apt-get when they are missing and we may; otherwise says so (those tests then fail
# with the reason, they are never skipped).
has_chromium() {
    { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; } \
        && command -v chromedriver >/dev/null 2>&1
}
has_chromium && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "chromium: installing chromium and chromium-driver for the dashboard tests (apt-get)"
    apt-get update -qq >/dev/null \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            chromium chromium-driver fonts-dejavu-core >/dev/null \
        && exit 0
fi
echo "chromium: no chromium/chromedriver and cannot install them; the dashboard browser tests will fail" >&2
exit 0

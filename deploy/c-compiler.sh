#!/bin/sh
# Make sure the C hot path (instrument/_hotpath.c) can be built: a C compiler and
# Python's headers. Installs them with apt-get when they are missing and we may;
# otherwise says so and goes on (instrument then runs its pure-Python path).
PYTHON="${1:-python3}"
has_cc() { command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1; }
has_headers() {
    "$PYTHON" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'
}
has_cc && has_headers && exit 0
missing=""
has_cc || missing="gcc libc6-dev"
has_headers || missing="$missing python3-dev"
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "c-compiler: installing $missing for the C hot path (apt-get)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null \
        && exit 0
fi
echo "c-compiler: no C compiler or Python headers ($missing); instrument will trace in pure Python (slower)" >&2
exit 0

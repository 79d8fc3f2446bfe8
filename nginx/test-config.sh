#!/bin/sh
# Check nginx/nginx.conf with `nginx -t` outside docker compose.
#
# The upstream host `api` resolves only inside the compose network, and nginx
# resolves upstream servers while it checks the file, so a copy with the
# upstream pointed at 127.0.0.1 is checked instead. Nothing is started.
#
# Usage: nginx/test-config.sh [path/to/nginx.conf]    (needs `nginx` on PATH)
set -eu

conf="${1:-$(dirname "$0")/nginx.conf}"
if ! command -v nginx >/dev/null 2>&1; then
    echo "test-config.sh: nginx is not installed" >&2
    exit 2
fi
if [ ! -f "$conf" ]; then
    echo "test-config.sh: no such file: $conf" >&2
    exit 2
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT INT TERM

sed 's/server[[:space:]]\{1,\}api:8000/server 127.0.0.1:8000/' "$conf" >"$tmp/nginx.conf"
# `nginx -t` binds the listening ports; without root, port 80 is refused, so
# a non-root check listens on 8080 instead.
if [ "$(id -u)" -ne 0 ]; then
    sed -i 's/listen 80 /listen 8080 /' "$tmp/nginx.conf"
fi
if ! grep -q 'server 127.0.0.1:8000' "$tmp/nginx.conf"; then
    echo "test-config.sh: no 'server api:8000' upstream found in $conf" >&2
    exit 1
fi

# The pid file goes to the temporary prefix too, so that a user who cannot
# write the compiled-in pid path can run the check.
nginx -t -q -c "$tmp/nginx.conf" -p "$tmp/" -g "pid $tmp/nginx.pid;"
echo "nginx configuration OK: $conf"

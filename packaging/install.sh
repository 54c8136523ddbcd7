#!/bin/sh
# Installs stardag-server on a host without dpkg: the binary, the systemd unit, the
# sysusers file and the example config (kept if one exists). DESTDIR installs into a
# staging root (nothing is run there). Usage:
#   sudo packaging/install.sh [path/to/stardag-server]
#   DESTDIR=/tmp/root packaging/install.sh target/release/stardag-server
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/target/release/stardag-server}
root=${DESTDIR:-}
[ -x "$bin" ] || { echo "install.sh: no executable at $bin" >&2; exit 1; }

install -D -m 0755 "$bin" "$root/usr/bin/stardag-server"
# /etc/systemd/system: the local administrator's unit directory (no package owns it).
install -D -m 0644 "$here/systemd/stardag-server.service" "$root/etc/systemd/system/stardag-server.service"
install -D -m 0644 "$here/systemd/stardag-server.sysusers" "$root/usr/lib/sysusers.d/stardag-server.conf"
if [ -e "$root/etc/stardag-server/config.toml" ]; then
    echo "install.sh: keeping the existing $root/etc/stardag-server/config.toml"
else
    install -D -m 0640 "$here/packaging/config.toml" "$root/etc/stardag-server/config.toml"
fi

if [ -z "$root" ]; then
    systemd-sysusers stardag-server.conf
    chgrp stardag-server /etc/stardag-server/config.toml
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        echo "install.sh: installed; review /etc/stardag-server/config.toml, then: systemctl enable --now stardag-server"
        exit 0
    fi
fi
echo "install.sh: installed into ${root:-/}"

#!/usr/bin/env bash
# CI: build the .deb, check its file list, install it with dpkg (CI runs as root),
# verify the installed unit, and install.sh into a temporary root. Needs
# target/release/stardag-server (tests/run-all.sh builds it).
set -euo pipefail
cd "$(dirname "$0")/.."

deb=$(packaging/build-deb.sh --check)
dpkg -i "$deb"
test -x /usr/bin/stardag-server
/usr/bin/stardag-server version
getent passwd stardag-server >/dev/null || { echo "ci: the stardag-server user was not created" >&2; exit 1; }
/usr/bin/stardag-server check-config --config /etc/stardag-server/config.toml >/dev/null
# verify loads the unit as systemd would (syntax, ExecStart binary present, users known).
systemd-analyze verify /lib/systemd/system/stardag-server.service
systemd-analyze security --no-pager --offline=yes /lib/systemd/system/stardag-server.service | tail -n 3

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
DESTDIR="$root" packaging/install.sh target/release/stardag-server >/dev/null
for f in usr/bin/stardag-server etc/systemd/system/stardag-server.service \
         usr/lib/sysusers.d/stardag-server.conf etc/stardag-server/config.toml; do
    test -e "$root/$f" || { echo "ci: install.sh did not install /$f" >&2; exit 1; }
done
"$root/usr/bin/stardag-server" check-config --config "$root/etc/stardag-server/config.toml" >/dev/null
# A second run keeps the operator's config.
echo '# edited' >> "$root/etc/stardag-server/config.toml"
DESTDIR="$root" packaging/install.sh target/release/stardag-server >/dev/null
grep -q '# edited' "$root/etc/stardag-server/config.toml"
echo "packaging: ok"

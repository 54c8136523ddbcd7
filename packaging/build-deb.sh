#!/usr/bin/env bash
# Builds target/debian/stardag-server_<version>_<arch>.deb from target/release/stardag-server
# with dpkg-deb (no cargo-deb: it would have to be fetched from crates.io and compiled on
# every CI run, minutes on two cores, for what is a file copy and a control file).
# The file list is packaging/deb-files.txt; `--check` compares the built package with it.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
bin=target/release/stardag-server
[ -x "$bin" ] || { echo "build-deb: $bin missing (cargo build --release --locked)" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -D -m 0755 "$bin" "$stage/usr/bin/stardag-server"
install -D -m 0640 packaging/config.toml "$stage/etc/stardag-server/config.toml"
install -D -m 0644 systemd/stardag-server.service "$stage/lib/systemd/system/stardag-server.service"
install -D -m 0644 systemd/stardag-server.sysusers "$stage/usr/lib/sysusers.d/stardag-server.conf"
install -D -m 0644 packaging/README.md "$stage/usr/share/doc/stardag-server/README.packaging.md"
install -d "$stage/DEBIAN"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$stage/DEBIAN/"
echo /etc/stardag-server/config.toml > "$stage/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: stardag-server
Version: $version
Architecture: $arch
Maintainer: stardag-server maintainers
Section: net
Priority: optional
Installed-Size: $size
Depends: libc6, systemd | systemd-standalone-sysusers
Description: Single-binary, self-hosted registry server for the Stardag SDK
 Serves the Stardag registry API (/api/v1 and /api/v2) and web UI from one binary
 and one embedded database. Runs as the systemd unit stardag-server.service.
CONTROL

mkdir -p target/debian
out="target/debian/stardag-server_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$out" >/dev/null
echo "$out"

if [ "${1:-}" = "--check" ]; then
    # Paths of files (not directories) in the package, against the expected list.
    dpkg-deb -c "$out" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./|/|' | sort > "$stage/files"
    sort packaging/deb-files.txt | diff -u - "$stage/files" \
        || { echo "build-deb: the package's files differ from packaging/deb-files.txt" >&2; exit 1; }
fi

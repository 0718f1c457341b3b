#!/usr/bin/env bash
# Builds berth's test and demo image from Debian's busybox-static, with no network.
#
#   tests/images/build-busybox.sh [--docker] [--tag-only] [--release TEXT] OUT.tar [REFERENCE]
#
# Writes an OCI image-layout archive (default) or, with --docker, a `docker save` archive
# to OUT.tar. REFERENCE defaults to berth.local/busybox:latest. With --tag-only the OCI
# index names the image by its tag alone (as skopeo does), so the importer must be given
# the repository name (berth image import --name berth.local/busybox OUT.tar). With
# --release, /etc/berth-release holds TEXT: images that differ only there (distinct
# digests, one changed layer), as a registry's successive builds of one tag do.
#
# The image has two layers, so importers meet whiteouts:
#   1. base: /bin/busybox and a symlink per applet (sh, httpd, nc, wget, nslookup, …),
#      /etc/passwd and /etc/group (root 0, app 1000, nobody 65534), /tmp (1777),
#      /var/www/index.html, /www/index.html, /home/app, /etc/berth-removed, /opt/old
#   2. changes: /etc/.wh.berth-removed (deletes /etc/berth-removed),
#      /opt/.wh..wh..opq (hides /opt/old) with /opt/new, and /etc/berth-release
# Config: Env PATH=…, Cmd ["sh"], WorkingDir /, a title label.
#
# The output is deterministic (sorted entries, fixed mtimes and owners, gzip -n), so its
# digests only change when Debian's busybox binary does.
set -euo pipefail

usage() {
  echo "usage: $0 [--docker] [--tag-only] [--release TEXT] OUT.tar [REFERENCE]" >&2
  exit 2
}

format=oci
tag_only=0
release=
while [ $# -gt 0 ]; do
  case "$1" in
    --docker) format=docker; shift ;;
    --tag-only) tag_only=1; shift ;;
    --release) [ $# -ge 2 ] || usage; release=$2; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] && [ $# -le 2 ] || usage
out=$1
reference=${2:-berth.local/busybox:latest}
# The tag is what follows the last ':' after the last '/'.
last=${reference##*/}
case "$last" in
  *:*) tag=${last##*:} ;;
  *) tag=latest; reference="$reference:latest" ;;
esac

busybox=${BUSYBOX:-/bin/busybox}
if [ ! -x "$busybox" ]; then
  echo "$busybox not found: install Debian's busybox-static (apt-get install busybox-static)" >&2
  exit 1
fi
if ! "$busybox" --list-full >/dev/null 2>&1; then
  echo "$busybox does not support --list-full; is it Debian's busybox-static?" >&2
  exit 1
fi

if command -v dpkg >/dev/null 2>&1; then
  arch=$(dpkg --print-architecture)
else
  case "$(uname -m)" in
    x86_64) arch=amd64 ;;
    aarch64) arch=arm64 ;;
    armv7l|armv6l) arch=arm ;;
    *) arch=$(uname -m) ;;
  esac
fi

# 2024-01-01T00:00:00Z: a fixed time for every file and for the config.
epoch=1704067200
created=2024-01-01T00:00:00Z

work=$(mktemp -d "${TMPDIR:-/tmp}/berth-image-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
umask 022

sha256() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

# tar_dir DIR OUT [OWNERSHIP-OVERRIDES...]: a deterministic tar of DIR's contents. Files are
# owned by root unless listed as "PATH:UID:GID" overrides (appended afterwards, sorted).
tar_dir() {
  local dir=$1 tarball=$2
  shift 2
  local common=(--format=gnu --numeric-owner --mtime="@$epoch" --no-recursion -C "$dir")
  local exclude=()
  for o in "$@"; do exclude+=("${o%%:*}"); done
  (cd "$dir" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort) |
    grep -vxF -f <(printf '%s\n' "${exclude[@]}" "") |
    tar -cf "$tarball" "${common[@]}" --owner=0 --group=0 -T -
  for o in "$@"; do
    IFS=: read -r path uid gid <<<"$o"
    tar -rf "$tarball" "${common[@]}" --owner="$uid" --group="$gid" "$path"
  done
}

# --- layer 1: base -------------------------------------------------------------------
base=$work/base
mkdir -p "$base"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,root,tmp,home/app,var/www,www,opt}
install -m 0755 "$busybox" "$base/bin/busybox"
"$busybox" --list-full | while read -r applet; do
  [ "$applet" = bin/busybox ] && continue
  mkdir -p "$base/$(dirname "$applet")"
  ln -sf /bin/busybox "$base/$applet"
done
cat >"$base/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$base/etc/group" <<'EOF'
root:x:0:
app:x:1000:
nogroup:x:65534:
EOF
: >"$base/etc/hosts"
: >"$base/etc/resolv.conf"
echo "this file is deleted by the image's second layer" >"$base/etc/berth-removed"
echo "hidden by the opaque directory of the second layer" >"$base/opt/old"
cat >"$base/var/www/index.html" <<'EOF'
<!doctype html>
<title>berth</title>
<p>Hello from berth's busybox test image.</p>
EOF
cp "$base/var/www/index.html" "$base/www/index.html"
find "$base" -type d -exec chmod 0755 {} +
find "$base" -type f ! -path "$base/bin/busybox" -exec chmod 0644 {} +
chmod 1777 "$base/tmp"
chmod 0700 "$base/root"
tar_dir "$base" "$work/layer1.tar" home/app:1000:1000

# --- layer 2: changes, with both kinds of whiteout ----------------------------------------
top=$work/top
mkdir -p "$top/etc" "$top/opt"
: >"$top/etc/.wh.berth-removed"
: >"$top/opt/.wh..wh..opq"
echo "new in the second layer" >"$top/opt/new"
version=$("$busybox" 2>&1 | head -n1 | cut -d' ' -f2 || true)
if [ -n "$release" ]; then
  printf '%s\n' "$release" >"$top/etc/berth-release"
else
  echo "berth busybox test image (busybox ${version:-unknown})" >"$top/etc/berth-release"
fi
find "$top" -type d -exec chmod 0755 {} +
find "$top" -type f -exec chmod 0644 {} +
tar_dir "$top" "$work/layer2.tar"

diff1=$(sha256 "$work/layer1.tar")
diff2=$(sha256 "$work/layer2.tar")

config=$(cat <<EOF
{"architecture":"$arch","os":"linux","created":"$created","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"WorkingDir":"/","Labels":{"org.opencontainers.image.title":"berth busybox test image"}},"rootfs":{"type":"layers","diff_ids":["sha256:$diff1","sha256:$diff2"]},"history":[{"created":"$created","created_by":"tests/images/build-busybox.sh: busybox and applets"},{"created":"$created","created_by":"tests/images/build-busybox.sh: whiteouts"}]}
EOF
)
printf '%s' "$config" >"$work/config.json"
config_digest=$(sha256 "$work/config.json")

layout=$work/layout
mkdir -p "$layout"

if [ "$format" = docker ]; then
  # `docker save` (before Docker 25): uncompressed layers in <id>/layer.tar.
  cp "$work/config.json" "$layout/$config_digest.json"
  for d in "$diff1" "$diff2"; do mkdir -p "$layout/$d"; echo "1.0" >"$layout/$d/VERSION"; done
  cp "$work/layer1.tar" "$layout/$diff1/layer.tar"
  cp "$work/layer2.tar" "$layout/$diff2/layer.tar"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar","%s/layer.tar"]}]' \
    "$config_digest" "$reference" "$diff1" "$diff2" >"$layout/manifest.json"
else
  blobs=$layout/blobs/sha256
  mkdir -p "$blobs"
  gzip -n -9 -c "$work/layer1.tar" >"$work/layer1.tar.gz"
  gzip -n -9 -c "$work/layer2.tar" >"$work/layer2.tar.gz"
  l1=$(sha256 "$work/layer1.tar.gz"); l2=$(sha256 "$work/layer2.tar.gz")
  cp "$work/layer1.tar.gz" "$blobs/$l1"
  cp "$work/layer2.tar.gz" "$blobs/$l2"
  cp "$work/config.json" "$blobs/$config_digest"
  printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$config_digest\",\"size\":$(size "$work/config.json")},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$l1\",\"size\":$(size "$work/layer1.tar.gz")},{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$l2\",\"size\":$(size "$work/layer2.tar.gz")}]}" >"$work/manifest.json"
  manifest_digest=$(sha256 "$work/manifest.json")
  cp "$work/manifest.json" "$blobs/$manifest_digest"
  if [ $tag_only -eq 1 ]; then name=$tag; else name=$reference; fi
  printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
  printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$manifest_digest\",\"size\":$(size "$work/manifest.json"),\"annotations\":{\"org.opencontainers.image.ref.name\":\"$name\"}}]}" >"$layout/index.json"
fi

find "$layout" -type d -exec chmod 0755 {} +
find "$layout" -type f -exec chmod 0644 {} +
tar_dir "$layout" "$work/out.tar"
mv "$work/out.tar" "$out"
echo "wrote $format image $reference (id sha256:$config_digest) to $out"

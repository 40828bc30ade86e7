#!/usr/bin/env bash
# build.sh VERSION OUTDIR [CACHEDIR]
#
# Builds the MinIO server (github.com/minio/minio) from the Go module proxy
# with `go install`, static (CGO_ENABLED=0) and -trimpath, into OUTDIR/minio,
# then writes OUTDIR/SHA256SUMS (`sha256sum -c` format, names relative to
# OUTDIR) and OUTDIR/BUILDINFO (`go version -m` of each binary), and prints the
# size and `minio --version`.
#
# VERSION is a module version the proxy serves. MinIO's RELEASE.* tags are not
# semver, so the proxy only has pseudo-versions; see README.md for the ones that
# built here. `latest` is accepted and resolved (and printed) first, but pin the
# exact pseudo-version for a bundle.
#
# MC_VERSION=<pseudo-version> (optional) also builds the `mc` client
# (github.com/minio/mc) into OUTDIR/mc the same way.
#
# The Go caches (GOPATH, GOMODCACHE, GOCACHE) live in CACHEDIR, default
# OUTDIR/.gocache, so the result does not depend on ~/go. Once CACHEDIR is
# warm the build also works with GOPROXY=off (no network at all).
#
# Idempotent: a binary already in OUTDIR that was built from the same module
# version and still matches SHA256SUMS is kept (FORCE=1 rebuilds). The
# binaries are reproducible: the same VERSION with the same Go toolchain gives
# the same sha256, cold or warm cache.
#
# Other knobs: GOARCH (default: the host's, e.g. arm64 to cross-build),
# BUILD_TIMEOUT seconds per binary (default 1800).
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 VERSION OUTDIR [CACHEDIR]" >&2
  echo "   e.g. $0 v0.0.0-20260212201848-7aac2a2c5b7c /tmp/minio-out" >&2
  exit 2
fi
VERSION=$1
OUTDIR=$2
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
CACHEDIR=${3:-$OUTDIR/.gocache}
mkdir -p "$CACHEDIR"
CACHEDIR=$(cd "$CACHEDIR" && pwd)

command -v go >/dev/null || { echo "build.sh: go not found (MinIO needs Go >= 1.24)" >&2; exit 1; }

export GOPATH=$CACHEDIR/gopath
export GOMODCACHE=$CACHEDIR/gopath/pkg/mod
export GOCACHE=$CACHEDIR/build
export CGO_ENABLED=0
export GOOS=linux
export GOARCH=${GOARCH:-$(go env GOARCH)}
# Use the installed Go; never let a go.mod `toolchain` line fetch another one.
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
# Flags are given on the command line; keep the caller's GOFLAGS out of it so
# the binary (and its sha256) only depends on VERSION and the Go version.
export GOFLAGS=
BUILD_TIMEOUT=${BUILD_TIMEOUT:-1800}

# resolve MODULE VERSION -> exact module version (handles `latest`)
resolve() {
  local mod=$1 ver=$2
  case "$ver" in
    v*-*[0-9]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]) echo "$ver" ;;
    *) go list -m -f '{{.Version}}' "$mod@$ver" ;;
  esac
}

# ldflags MODULE VERSION: what upstream's `make build` (buildscripts/gen-ldflags.go)
# stamps, derived from the pseudo-version (vX.Y.Z-[0.]YYYYMMDDhhmmss-COMMIT12).
# Without them the binary reports "DEVELOPMENT.GOGET" everywhere.
ldflags() {
  local mod=$1 ver=$2 ts commit rfc tag
  ts=$(echo "$ver" | sed -nE 's/.*[-.]([0-9]{14})-([0-9a-f]{12})$/\1/p')
  commit=$(echo "$ver" | sed -nE 's/.*[-.]([0-9]{14})-([0-9a-f]{12})$/\2/p')
  if [ -z "$ts" ]; then
    echo "-s -w"   # not a pseudo-version: leave MinIO's defaults
    return
  fi
  rfc="${ts:0:4}-${ts:4:2}-${ts:6:2}T${ts:8:2}:${ts:10:2}:${ts:12:2}Z"
  # DEVELOPMENT.<time> is what upstream's own source build calls it; RELEASE.*
  # is reserved for official releases.
  tag="DEVELOPMENT.${ts:0:4}-${ts:4:2}-${ts:6:2}T${ts:8:2}-${ts:10:2}-${ts:12:2}Z"
  echo "-s -w -X $mod/cmd.Version=$rfc -X $mod/cmd.ReleaseTag=$tag -X $mod/cmd.CommitID=$commit -X $mod/cmd.ShortCommitID=$commit -X $mod/cmd.CopyrightYear=${ts:0:4}"
}

# build_one NAME MODULE VERSION
build_one() {
  local name=$1 mod=$2 ver=$3 bin=$OUTDIR/$1 stage start end
  if [ "${FORCE:-0}" != 1 ] && [ -x "$bin" ] && [ -f "$OUTDIR/SHA256SUMS" ] \
     && go version -m "$bin" 2>/dev/null | grep -qP "^\tmod\t\Q$mod\E\t\Q$ver\E\t" \
     && go version -m "$bin" | grep -qP "^\tbuild\tGOARCH=\Q$GOARCH\E$" \
     && (cd "$OUTDIR" && grep -E "  $name\$" SHA256SUMS | sha256sum -c --status -); then
    echo "$name: $OUTDIR/$name is already $mod@$ver ($GOARCH), sha256 matches: kept (FORCE=1 rebuilds)"
    return
  fi
  stage=$(mktemp -d "$OUTDIR/.stage.XXXXXX")
  start=$(date +%s)
  echo "$name: go install $mod@$ver (GOARCH=$GOARCH, caches in $CACHEDIR) ..."
  if ! GOBIN=$stage timeout "$BUILD_TIMEOUT" go install -trimpath -ldflags "$(ldflags "$mod" "$ver")" "$mod@$ver"; then
    rm -rf "$stage"
    echo "build.sh: go install $mod@$ver failed (or took over ${BUILD_TIMEOUT}s)" >&2
    exit 1
  fi
  end=$(date +%s)
  # go install puts cross-compiled binaries in GOBIN/GOOS_GOARCH/
  local built=$stage/$(basename "$mod")
  [ -f "$built" ] || built=$stage/${GOOS}_${GOARCH}/$(basename "$mod")
  mv -f "$built" "$bin"
  rm -rf "$stage"
  echo "$name: built in $((end - start)) s"
}

MINIO_MOD=github.com/minio/minio
MC_MOD=github.com/minio/mc
VERSION=$(resolve "$MINIO_MOD" "$VERSION")
names=(minio)
build_one minio "$MINIO_MOD" "$VERSION"
if [ -n "${MC_VERSION:-}" ]; then
  MC_VERSION=$(resolve "$MC_MOD" "$MC_VERSION")
  build_one mc "$MC_MOD" "$MC_VERSION"
  names+=(mc)
elif [ -x "$OUTDIR/mc" ]; then
  # an mc built by an earlier run stays listed (build.sh writes only minio and mc)
  echo "mc: $OUTDIR/mc kept from an earlier run ($(go version -m "$OUTDIR/mc" | awk '$1=="mod"{print $3}'))"
  names+=(mc)
fi

# Static check: no ELF interpreter and cgo off.
for n in "${names[@]}"; do
  if ! go version -m "$OUTDIR/$n" | grep -q $'\tbuild\tCGO_ENABLED=0$'; then
    echo "build.sh: $n was not built with CGO_ENABLED=0" >&2; exit 1
  fi
  if command -v readelf >/dev/null && readelf -l "$OUTDIR/$n" 2>/dev/null | grep -q 'program interpreter'; then
    echo "build.sh: $n is dynamically linked" >&2; exit 1
  fi
done

(cd "$OUTDIR" && LC_ALL=C sha256sum "${names[@]}" > SHA256SUMS)
: > "$OUTDIR/BUILDINFO"
for n in "${names[@]}"; do (cd "$OUTDIR" && go version -m "$n") >> "$OUTDIR/BUILDINFO"; done

cat "$OUTDIR/SHA256SUMS"
for n in "${names[@]}"; do
  bytes=$(stat -c %s "$OUTDIR/$n")
  echo "$n: $bytes bytes ($((bytes / 1048576)) MiB), GOARCH=$GOARCH"
  if [ "$GOARCH" = "$(go env GOHOSTARCH)" ]; then
    "$OUTDIR/$n" --version
  fi
done

#!/usr/bin/env bash
# Build a Debian bookworm base image from Debian's packages, for machines that reach no image
# registry: mmdebstrap (minbase, merged /usr) into a tarball, imported with podman.
#   deploy/containers/base.sh [TAG] [EXTRA_PACKAGES]
# TAG defaults to localhost/vodscribe-base:bookworm. The image vodscribe's Containerfile builds on
# carries python3 and the runtime libraries already (its apt step then has nothing to do); the
# PostgreSQL and Redis images of compose.yaml are built the same way with their server packages.
set -euo pipefail
TAG=${1:-localhost/vodscribe-base:bookworm}
EXTRA=${2:-}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES="python3,python3-venv,libgomp1,ca-certificates${EXTRA:+,$EXTRA}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mmdebstrap --quiet --variant=minbase --include="$PACKAGES" \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  bookworm "$work/rootfs.tar" "$MIRROR"
podman import --quiet --change 'CMD ["/bin/bash"]' "$work/rootfs.tar" "$TAG" >/dev/null
echo "$TAG: $(podman image inspect "$TAG" --format '{{.Size}}') bytes"

#!/usr/bin/env bash
# Build vodscribe's images with podman (docker works the same with `docker build`):
#   deploy/containers/build.sh [--base-from-debian]
# --base-from-debian: build the bookworm base from Debian's packages first (base.sh), for machines
# that reach no image registry; otherwise the Containerfiles start FROM debian:bookworm-slim.
# A CA bundle at $CA_BUNDLE (default: the machine's, when present) is handed to the build as a
# secret for HTTPS through a re-signing proxy; it never enters an image.
# Wheels in deploy/wheels/ (llama-cpp-python built here by ./scripts/install, say) are used instead
# of building them again; they must suit the CPUs that will run the image.
set -euo pipefail
cd "$(dirname "$0")/../.."
BASE=debian:bookworm-slim
if [ "${1:-}" = "--base-from-debian" ]; then
  BASE=localhost/vodscribe-base:bookworm
  deploy/containers/base.sh "$BASE"
fi
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
secret=()
[ -s "$CA_BUNDLE" ] && secret=(--secret "id=ca,src=$CA_BUNDLE")
build() {  # TAG FILE [ARGS...]
  local tag=$1 file=$2
  shift 2
  local started=$SECONDS
  podman build --quiet --format docker --build-arg "BASE=$BASE" "${secret[@]}" -f "$file" -t "$tag" "$@" . >/dev/null
  echo "$tag: $(podman image inspect "$tag" --format '{{.Size}}') bytes, built in $((SECONDS - started)) s"
}
build localhost/vodscribe:latest Containerfile
build localhost/vodscribe-postgres:15 deploy/containers/postgres.Containerfile
build localhost/vodscribe-redis:7 deploy/containers/redis.Containerfile
build localhost/vodscribe-prometheus:2 deploy/containers/prometheus.Containerfile
if [ "${CUDA:-0}" = 1 ]; then build localhost/vodscribe:cuda Containerfile --build-arg CUDA=1; fi

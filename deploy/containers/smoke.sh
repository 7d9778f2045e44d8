#!/usr/bin/env bash
# The images and the scale-out compose stack, end to end (deploy/containers/smoke.py says what is
# checked). Installs podman and mmdebstrap from Debian's packages when missing and podman-compose
# from PyPI (Debian's 1.0.3 ignores profiles, --scale and health conditions), builds the base and the
# images, brings the stack up under its own project name with two asr workers and Prometheus, and
# always takes it down.
#   deploy/containers/smoke.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v podman >/dev/null || ! command -v mmdebstrap >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    podman runc netavark aardvark-dns iptables catatonit mmdebstrap python3-venv >/dev/null
fi
tools=${XDG_CACHE_HOME:-$HOME/.cache}/vodscribe-smoke
if [ ! -x "$tools/bin/podman-compose" ]; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install -q --disable-pip-version-check podman-compose==1.6.0
fi
# runc (crun refuses this machine's cgroup layout) and ulimits the machine can grant.
if [ ! -s /etc/containers/containers.conf ]; then
  limit=$(ulimit -Hn)
  mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n[engine]\nruntime = "runc"\n' \
    "$limit" "$limit" "$limit" "$limit" > /etc/containers/containers.conf
fi
# llama.cpp is built once: the wheel ./scripts/install built here, if pip kept it.
wheel=$(find "${PIP_CACHE_DIR:-$HOME/.cache/pip}" -name 'llama_cpp_python-*.whl' 2>/dev/null | head -1 || true)
[ -n "$wheel" ] && cp "$wheel" deploy/wheels/
# Disk: the built images take 3.3 GB of podman's store (measured), and the build's intermediate
# layers more while it runs. Earlier builds leave untagged layers behind, and a machine that built
# the images before may be short of room: those layers go first, then vodscribe's own images
# (rebuilt here anyway).
need_gib=8
store=$(podman info --format '{{.Store.GraphRoot}}')
mkdir -p "$store"
free_gib() { df -BG --output=avail "$store" | tail -1 | tr -dc 0-9; }
podman image prune -f >/dev/null
if [ "$(free_gib)" -lt "$need_gib" ] && [ "${SMOKE_REUSE_IMAGES:-0}" != 1 ]; then
  podman images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/vodscribe' \
    | xargs -r podman rmi -f >/dev/null 2>&1 || true
  podman image prune -f >/dev/null
fi
echo "smoke: $(free_gib) GiB free under $store"
if [ "$(free_gib)" -lt "$need_gib" ]; then
  echo "smoke: the images need about $need_gib GiB free under $store; free some and run again" >&2
  df -h "$store" >&2
  exit 1
fi
started=$SECONDS
if [ "${SMOKE_REUSE_IMAGES:-0}" != 1 ]; then  # 1: the images of an earlier run (while working on this)
  deploy/containers/build.sh --base-from-debian
  echo "smoke: images built in $((SECONDS - started)) s"
fi

project=vodscribe-smoke
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
prometheus_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export POSTGRES_PASSWORD="smoke-$RANDOM$RANDOM" VODSCRIBE_METRICS_TOKEN="smoke-$RANDOM$RANDOM" \
  VODSCRIBE_ALLOW_PRIVATE_URLS=true VODSCRIBE_PORT=$port PROMETHEUS_PORT=$prometheus_port \
  VODSCRIBE_STALE_AFTER_S=10 VODSCRIBE_HEARTBEAT_S=2
compose() { "$tools/bin/podman-compose" -p "$project" --profile scale --profile observability "$@"; }
down() {
  podman rm -f "$project-mediasrv" >/dev/null 2>&1 || true
  compose down >/dev/null 2>&1 || true
  podman volume ls -q | grep "^${project}_" | xargs -r podman volume rm -f >/dev/null 2>&1 || true
}
[ "${SMOKE_KEEP:-0}" = 1 ] || trap down EXIT  # SMOKE_KEEP=1: left up, to look at
down
# --no-deps, every service named: podman 4.3 cannot start a container whose --requires chain is
# longer than one link (api -> migrate -> postgres); the conditions are still waited for.
compose up -d --no-deps --scale asr=2 postgres redis migrate api media asr webhooks prometheus >/dev/null
podman run -d --rm --name "$project-mediasrv" --net "${project}_default" --network-alias mediasrv \
  -v "$PWD/tests/data:/srv:ro" localhost/vodscribe-base:bookworm python3 -m http.server 8080 -d /srv >/dev/null
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  sleep 1
done
echo "smoke: stack up in $((SECONDS - started)) s"
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
"$PY" deploy/containers/smoke.py "$project" "http://127.0.0.1:$port" "$VODSCRIBE_METRICS_TOKEN" \
  "http://127.0.0.1:$prometheus_port"
echo "smoke: done in $((SECONDS - started)) s"
# What this build replaced is no longer tagged: give its room back.
podman image prune -f >/dev/null

#!/bin/sh
# The API's metrics token reaches Prometheus as a file (its configuration reads no environment).
set -eu
umask 077
printf '%s' "${VODSCRIBE_METRICS_TOKEN:?set VODSCRIBE_METRICS_TOKEN, the API's /metrics token}" > /run/vodscribe/metrics-token
exec prometheus --config.file=/etc/prometheus/prometheus.yml --storage.tsdb.path=/prometheus \
  --web.listen-address=:9090 --web.enable-lifecycle "$@"

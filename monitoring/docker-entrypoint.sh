#!/bin/sh
# Entry point of monitoring/Dockerfile (Railway, docker-compose): point the scrape job at the model
# server named by MODEL_SERVER_TARGET, then run Prometheus with the churn rules and console.
#   MODEL_SERVER_TARGET  host:port of the model server's REST port (required), e.g.
#                        customer-model.railway.internal:8501 or customer-model.up.railway.app:443
#   MODEL_SERVER_SCHEME  http (default) or https (a public Railway domain)
#   PORT                 port Prometheus listens on (Railway sets it; default 9090)
#   PROMETHEUS_CONFIG_DIR, PROMETHEUS_STORAGE  default /etc/prometheus and /prometheus
set -eu
: "${MODEL_SERVER_TARGET:?set MODEL_SERVER_TARGET to the model server host:port, e.g. customer-model.railway.internal:8501}"
scheme="${MODEL_SERVER_SCHEME:-http}"
case "$scheme" in http|https) ;; *) echo "MODEL_SERVER_SCHEME must be http or https, not '$scheme'" >&2; exit 2 ;; esac
config_dir="${PROMETHEUS_CONFIG_DIR:-/etc/prometheus}"
printf '[\n  {"targets": ["%s"], "labels": {"__scheme__": "%s"}}\n]\n' "$MODEL_SERVER_TARGET" "$scheme" \
  > "$config_dir/targets/model-server.json"
exec prometheus \
  --config.file="$config_dir/prometheus.yml" \
  --storage.tsdb.path="${PROMETHEUS_STORAGE:-/prometheus}" \
  --web.listen-address=":${PORT:-9090}" \
  --web.console.templates="$config_dir/consoles" \
  --web.console.libraries="$config_dir/console_libraries" \
  "$@"

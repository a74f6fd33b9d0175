#!/bin/sh
# Entry point of monitoring/Dockerfile (Railway, docker-compose): point the scrape job at the model
# server named by MODEL_SERVER_TARGET, then run Prometheus with the churn rules and console.
#   MODEL_SERVER_TARGET     host:port of the model server's REST port (required), e.g.
#                           customer-model.railway.internal:8501 or customer-model.up.railway.app:443
#   MODEL_SERVER_SCHEME     http (default) or https (a public Railway domain)
#   MODEL_SERVER_DISCOVERY  static (default): scrape MODEL_SERVER_TARGET as one target (one replica);
#                           dns: one target per IPv6 address (AAAA record) the host name resolves to,
#                           re-resolved every 30 s, for a service with several replicas on a private
#                           network (docs/scaling.md: what Railway documents, and what it does not)
#   PORT                    port Prometheus listens on (Railway sets it; default 9090)
#   PROMETHEUS_CONFIG_DIR, PROMETHEUS_STORAGE  default /etc/prometheus and /prometheus
set -eu
: "${MODEL_SERVER_TARGET:?set MODEL_SERVER_TARGET to the model server host:port, e.g. customer-model.railway.internal:8501}"
scheme="${MODEL_SERVER_SCHEME:-http}"
case "$scheme" in http|https) ;; *) echo "MODEL_SERVER_SCHEME must be http or https, not '$scheme'" >&2; exit 2 ;; esac
config_dir="${PROMETHEUS_CONFIG_DIR:-/etc/prometheus}"
config="$config_dir/prometheus.yml"
case "${MODEL_SERVER_DISCOVERY:-static}" in
  static)
    printf '[\n  {"targets": ["%s"], "labels": {"__scheme__": "%s"}}\n]\n' "$MODEL_SERVER_TARGET" "$scheme" \
      > "$config_dir/targets/model-server.json" ;;
  dns)
    host="${MODEL_SERVER_TARGET%:*}"
    port="${MODEL_SERVER_TARGET##*:}"
    case "$port" in ''|*[!0-9]*) port="" ;; esac
    if [ -z "$host" ] || [ -z "$port" ] || [ "$host" = "$MODEL_SERVER_TARGET" ]; then
      echo "MODEL_SERVER_TARGET must be host:port for dns discovery, not '$MODEL_SERVER_TARGET'" >&2; exit 2
    fi
    # prometheus.yml with its file_sd_configs block (the file's last lines) swapped for DNS discovery,
    # written beside the targets file (the one folder the image's user may write): rule paths gain ../
    config="$config_dir/targets/prometheus-dns.yml"
    { echo "# Generated at start by docker-entrypoint.sh (MODEL_SERVER_DISCOVERY=dns) from ../prometheus.yml."
      sed -e 's|^  - rules/|  - ../rules/|' -e '/^    file_sd_configs:$/,$d' "$config_dir/prometheus.yml"; } > "$config"
    printf '    scheme: %s\n    dns_sd_configs:\n      - names: ["%s"]\n        type: AAAA\n        port: %s\n' \
      "$scheme" "$host" "$port" >> "$config" ;;
  *) echo "MODEL_SERVER_DISCOVERY must be static or dns, not '${MODEL_SERVER_DISCOVERY}'" >&2; exit 2 ;;
esac
exec prometheus \
  --config.file="$config" \
  --storage.tsdb.path="${PROMETHEUS_STORAGE:-/prometheus}" \
  --web.listen-address=":${PORT:-9090}" \
  --web.console.templates="$config_dir/consoles" \
  --web.console.libraries="$config_dir/console_libraries" \
  "$@"

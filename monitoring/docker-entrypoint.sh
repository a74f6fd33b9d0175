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
#   PUSHGATEWAY_TARGET      host:port of a Prometheus Pushgateway (optional), e.g. pushgateway:9091: scraped as job
#                           churn-batch with honor_labels, so the batch jobs' pushed job/period labels stay
#                           (what monitoring/alerting.py's with_alerting adds for `make serve`)
#   ALERTMANAGER_TARGET     host:port of an Alertmanager (optional), e.g. alertmanager:9093: where alerts are sent
#   PORT                    port Prometheus listens on (Railway sets it; default 9090)
#   PROMETHEUS_CONFIG_DIR, PROMETHEUS_STORAGE  default /etc/prometheus and /prometheus
set -eu
# host_port NAME VALUE: exit 2 with a message unless VALUE is host:port with a numeric port.
host_port() {
  h="${2%:*}"; p="${2##*:}"
  case "$p" in ''|*[!0-9]*) p="" ;; esac
  if [ -z "$h" ] || [ -z "$p" ] || [ "$h" = "$2" ]; then echo "$1 must be host:port, not '$2'" >&2; exit 2; fi
}
pushgateway="${PUSHGATEWAY_TARGET:-}"
alertmanager="${ALERTMANAGER_TARGET:-}"
[ -z "$pushgateway" ] || host_port PUSHGATEWAY_TARGET "$pushgateway"
[ -z "$alertmanager" ] || host_port ALERTMANAGER_TARGET "$alertmanager"
: "${MODEL_SERVER_TARGET:?set MODEL_SERVER_TARGET to the model server host:port, e.g. customer-model.railway.internal:8501}"
scheme="${MODEL_SERVER_SCHEME:-http}"
case "$scheme" in http|https) ;; *) echo "MODEL_SERVER_SCHEME must be http or https, not '$scheme'" >&2; exit 2 ;; esac
config_dir="${PROMETHEUS_CONFIG_DIR:-/etc/prometheus}"
config="$config_dir/prometheus.yml"
case "${MODEL_SERVER_DISCOVERY:-static}" in
  static)
    printf '[\n  {"targets": ["%s"], "labels": {"__scheme__": "%s"}}\n]\n' "$MODEL_SERVER_TARGET" "$scheme" \
      > "$config_dir/targets/model-server.json"
    if [ -n "$pushgateway$alertmanager" ]; then
      # prometheus.yml as is, written beside the targets file (the one folder the image's user may write):
      # rule and targets paths one folder down; the Pushgateway job and the Alertmanager are added below.
      config="$config_dir/targets/prometheus-alerting.yml"
      { echo "# Generated at start by docker-entrypoint.sh (PUSHGATEWAY_TARGET/ALERTMANAGER_TARGET) from ../prometheus.yml."
        sed -e 's|^  - rules/|  - ../rules/|' -e 's|files: \[targets/|files: [|' "$config_dir/prometheus.yml"; } > "$config"
    fi ;;
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
# scrape_configs is the config's last key, so a job appended here joins it (as in the dns case above).
if [ -n "$pushgateway" ]; then
  printf '  - job_name: churn-batch\n    honor_labels: true\n    static_configs:\n      - targets: ["%s"]\n' \
    "$pushgateway" >> "$config"
fi
if [ -n "$alertmanager" ]; then
  printf 'alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ["%s"]\n' "$alertmanager" >> "$config"
fi
exec prometheus \
  --config.file="$config" \
  --storage.tsdb.path="${PROMETHEUS_STORAGE:-/prometheus}" \
  --web.listen-address=":${PORT:-9090}" \
  --web.console.templates="$config_dir/consoles" \
  --web.console.libraries="$config_dir/console_libraries" \
  "$@"

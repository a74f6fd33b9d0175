"""Names, ports and paths shared by the pipeline (which pushes models), the model server (which serves them),
monitoring and insights (which read and scrape them).

The values mirror TensorFlow Serving's defaults so the same folder and URLs work with either server
(TF Serving: `tensorflow_serving/model_servers/main.cc` flag defaults, docs/serving.md).
"""
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The repository root (the pipeline image's WORKDIR, where it is copied as is)."""

MODEL_NAME = "customer-model"
"""Model name in URLs (`/v1/models/customer-model:predict`) and the folder under the serving dir."""

DEFAULT_SERVING_DIR = PROJECT_ROOT / "serving_model"
"""Pusher writes `<serving dir>/<MODEL_NAME>/<version>/`, TF Serving's base-path layout."""

CONTAINER_MODEL_ROOT = "/models"
"""Where the official TF Serving image keeps models (its `MODEL_BASE_PATH`); `serving/config/models.config`
names `/models/customer-model`, and `make serve` maps that root to DEFAULT_SERVING_DIR (deploy/local_config.py)."""

DEFAULT_HOST = "127.0.0.1"
"""Address both server ports (and the local Prometheus) bind to unless `--host` says otherwise."""
GRPC_PORT = 8500
"""TF Serving's default `--port` (gRPC)."""
REST_PORT = 8501
"""TF Serving's default `--rest_api_port`."""
PROMETHEUS_PORT = 9090
"""Prometheus' default `--web.listen-address` port (`make serve`, docker-compose.yml, the monitoring image)."""
PUSHGATEWAY_PORT = 9091
"""The Prometheus Pushgateway's default port, where batch jobs push (`make serve`, docker-compose.yml, Kubernetes)."""
ALERTMANAGER_PORT = 9093
"""Alertmanager's default port, where Prometheus sends alerts (`make serve`, docker-compose.yml, Kubernetes)."""
METRICS_PATH = "/monitoring/prometheus/metrics"
"""Where the server exposes Prometheus metrics (`serving/config/monitoring.config`) and Prometheus scrapes them."""
MONITORING_CONFIG_FILE = PROJECT_ROOT / "serving" / "config" / "monitoring.config"
"""The model server's `--monitoring_config_file` that turns its Prometheus metrics on (`make serve`, `--monitor`)."""
BATCH_SOURCE, REST_SOURCE, GRPC_SOURCE = "batch", "rest", "grpc"
"""Where a stored prediction was made (the prediction store's `source`): `insights score`, the model server's
REST API or its gRPC API."""
PREDICTION_SOURCES = (BATCH_SOURCE, REST_SOURCE, GRPC_SOURCE)

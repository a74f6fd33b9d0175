"""Names, ports and paths shared by the pipeline (which pushes models) and the server (which serves them).

The values mirror TensorFlow Serving's defaults so the same folder and URLs work with either server.
"""
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

MODEL_NAME = "customer-model"
"""Model name in URLs (`/v1/models/customer-model:predict`) and the folder under the serving dir."""

DEFAULT_SERVING_DIR = PROJECT_ROOT / "serving_model"
"""Pusher writes `<serving dir>/<MODEL_NAME>/<version>/`, TF Serving's base-path layout."""

CONTAINER_MODEL_ROOT = "/models"
"""Where the official TF Serving image keeps models (its `MODEL_BASE_PATH`); `serving/config/models.config`
names `/models/customer-model`, and `make serve` maps that root to DEFAULT_SERVING_DIR (deploy/local_config.py)."""

DEFAULT_HOST = "127.0.0.1"
"""Address both ports bind to unless `--host` says otherwise."""
GRPC_PORT = 8500
REST_PORT = 8501
METRICS_PATH = "/monitoring/prometheus/metrics"

DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024
"""REST body limit (after gzip decoding); larger requests get 413."""
DEFAULT_MAX_INSTANCES = 10_000
"""Rows (instances / examples / columnar dim 0) allowed in one request."""
DEFAULT_SETTLE_SECONDS = 5.0
"""Our extension (`--file_system_settle_seconds`): how long a version folder's files must stay
unchanged before it is loaded (serving/core/source.py)."""

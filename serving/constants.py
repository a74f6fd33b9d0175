"""Names, ports and paths shared by the pipeline (which pushes models) and the server (which serves them).

The values mirror TensorFlow Serving's defaults so the same folder and URLs work with either server.
"""
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

MODEL_NAME = "customer-model"
"""Model name in URLs (`/v1/models/customer-model:predict`) and the folder under the serving dir."""

DEFAULT_SERVING_DIR = PROJECT_ROOT / "serving_model"
"""Pusher writes `<serving dir>/<MODEL_NAME>/<version>/`, TF Serving's base-path layout."""

GRPC_PORT = 8500
REST_PORT = 8501
METRICS_PATH = "/monitoring/prometheus/metrics"

"""The model server's own defaults. Facts it shares with the pipeline, monitoring and clients (host, ports,
metrics path) live in `common.facts`; the server knows no model name, churn output or id column (those come
from its flags and config files).
"""

DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024
"""REST body limit (after gzip decoding); larger requests get 413."""
DEFAULT_MAX_INSTANCES = 10_000
"""Rows (instances / examples / columnar dim 0) allowed in one request."""
DEFAULT_SETTLE_SECONDS = 5.0
"""Our extension (`--file_system_settle_seconds`): how long a version folder's files must stay
unchanged before it is loaded (serving/core/source.py)."""

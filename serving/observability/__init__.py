"""Metrics (TF Serving's names), the Prometheus text exposition, model metrics and the request log."""

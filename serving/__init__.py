"""Model server wire-compatible with TensorFlow Serving (REST + gRPC + Prometheus metrics)."""

"""Command-line client of a TF Serving-compatible server (`python -m client.tf_serving`)."""

"""Prometheus monitoring of the model server: config, rules, console, Grafana, launcher, drift check.

`prometheus.yml`, `rules/`, `consoles/` and `grafana/` are used as they are by `make serve`
(`monitoring.serve`), the Docker image in `monitoring/Dockerfile` and `docker-compose.yml`.
"""

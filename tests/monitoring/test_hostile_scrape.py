"""Nothing a client sends can break or bloat the exposition: a real Prometheus scrapes it after hostile requests.

Covers serving/observability/prometheus_text.py (label escaping) and metrics.py (unknown model_name cap).
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from common.facts import MODEL_NAME
from monitoring import prometheus as prom
from serving.core.manager import ModelConfig
from serving.main import ModelServer
from serving.observability.metrics import OVERFLOW_MODEL_NAME, REQUEST_COUNT, exported_name
from tests.monitoring.conftest import query_prometheus, require, running_prometheus
from tests.serving.conftest import make_config
from tests.serving.http_util import call

MAX_UNKNOWN = 5
HOSTILE = ["%FF", "a%0Ab", "q%22%5C", "%00z", "tab%09cr%0D", "%C3%A9t%C3%A9"]
"""Raw model names in request paths: invalid UTF-8, line feed, quote and backslash, NUL, tab/CR, valid UTF-8."""
COUNT = exported_name(REQUEST_COUNT)


@pytest.fixture(scope="module")
def server(model_base: Path) -> Iterator[ModelServer]:
    server = ModelServer(make_config((ModelConfig(MODEL_NAME, model_base),), max_unknown_model_names=MAX_UNKNOWN),
                         CollectorRegistry())
    server.start()
    yield server
    server.stop()


def test_prometheus_scrapes_every_label_after_hostile_requests(server: ModelServer, tmp_path: Path) -> None:
    require("prometheus")  # fail early, before the hostile requests
    port = server.rest_port
    for name in HOSTILE:
        assert call(port, "GET", f"/v1/models/{name}")[0] == 404
        assert call(port, "POST", f"/v1/models/{name}:predict", b'{"instances": [1]}')[0] == 404
    for i in range(3 * MAX_UNKNOWN):
        call(port, "GET", f"/v1/models/unknown{i}")
    status, _, body = call(port, "GET", server.config.metrics_path)  # type: ignore[arg-type]
    assert status == 200
    body.decode("utf-8")  # valid UTF-8 whatever the clients sent
    assert b'model_name="\\\\xff"' in body and b'model_name="a\\nb"' in body

    config = prom.prepare(tmp_path, f"127.0.0.1:{port}", server.config.metrics_path, "1s")  # type: ignore[arg-type]
    with running_prometheus(config, tmp_path) as prometheus_port:
        deadline = time.monotonic() + 60
        while True:
            try:
                up = query_prometheus(prometheus_port, f'up{{job="{prom.job_name()}"}}')
            except OSError:
                up = []
            if up:
                break
            assert time.monotonic() < deadline, "Prometheus never scraped the server"
            time.sleep(0.5)
        assert up[0]["value"][1] == "1", "the scrape failed"
        names = {r["metric"].get("model_name", "")
                 for r in query_prometheus(prometheus_port, f'{{__name__="{COUNT}"}}')}
    # the first MAX_UNKNOWN unknown names are kept, as Prometheus reads them back; the rest share one value
    assert {"\\xff", "a\nb"} <= names
    assert OVERFLOW_MODEL_NAME in names
    assert len(names - {MODEL_NAME, OVERFLOW_MODEL_NAME, ""}) == MAX_UNKNOWN

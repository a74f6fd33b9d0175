"""The client's CSV input: read by the pipeline's reader, so a file that trains can be sent as it is."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from client.tf_serving import NOT_RUNNING_HINT, ClientError, read_csv_rows, to_instances
from common import exit_codes
from common.facts import PROJECT_ROOT
from modules.features import WITH_IDS_SIGNATURE
from monitoring.prediction_store import PredictionStore
from serving.core.manager import ModelConfig
from serving.main import ModelServer
from tests.field_cases import SEMICOLON, SPACES_IN_NAMES
from tests.serving.conftest import make_config
from tests.serving.models import WITH_IDS_THRESHOLD, build_churn_with_ids_model

USER_ENV = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
"""The client as a user runs it: TF's log level is the CLI's own default, not the tests'."""
DTYPES = {"Age": "DT_INT64", "Total_Spend": "DT_FLOAT", "Gender": "DT_STRING"}


def test_csv_columns_get_the_served_input_names_and_european_numbers_are_read() -> None:
    spaces = to_instances(read_csv_rows(SPACES_IN_NAMES)[:2], DTYPES)
    european = to_instances(read_csv_rows(SEMICOLON)[:2], DTYPES)
    assert spaces == european == [{"Age": 23, "Total_Spend": 222.35, "Gender": "Male"},
                                  {"Age": 33, "Total_Spend": 2595.78, "Gender": "Female"}]
    assert read_csv_rows(SPACES_IN_NAMES)[0]["Customer_ID"] == "1"  # `Customer ID` as the served name


def test_unreadable_csv_is_a_client_error(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a,a\n1,2\n")
    with pytest.raises(ClientError, match="repeats column names: 'a'"):
        read_csv_rows(tmp_path / "d.csv")
    (tmp_path / "h.csv").write_text("a,b\n")
    with pytest.raises(ClientError, match="has no customers"):
        read_csv_rows(tmp_path / "h.csv")


@pytest.fixture(scope="module")
def served_with_ids(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    """Our server (TF Serving's API) on a churn-like model with `serving_with_ids`, version 4."""
    base = tmp_path_factory.mktemp("client") / "m"
    build_churn_with_ids_model(base / "4")
    server = ModelServer(make_config((ModelConfig("m", base),)), CollectorRegistry())
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_predict_record_keeps_the_answers_with_their_ids(served_with_ids: ModelServer, tmp_path: Path,
                                                         transport: str) -> None:
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text("Customer_ID,Age,Gender,Annual_Income,Total_Spend,Target_Churn\n"
                        "11,30,Male,50.5,900,0\n12,71,Female,20,10.5,1\n")
    url = f"sqlite:///{tmp_path / 'p.sqlite'}"
    port = served_with_ids.grpc_port if transport == "grpc" else served_with_ids.rest_port
    done = subprocess.run([sys.executable, "-m", "client.tf_serving", "--port", str(port), "--model", "m",
                           *(["--grpc"] if transport == "grpc" else []), "predict", "--csv", str(csv_path), "--record",
                           "--store", url], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
                          env=USER_ENV)
    assert done.returncode == 0, done.stderr
    printed = re.findall(r"^customer (\d+): churn probability (\d\.\d{4})$", done.stdout, re.MULTILINE)
    with PredictionStore(url) as store:
        kept = store.read().sort_values("customer_id").to_dict("records")
    assert [(r["customer_id"], r["model_version"], r["source"], r["signature"]) for r in kept] == [
        ("11", 4, transport, WITH_IDS_SIGNATURE), ("12", 4, transport, WITH_IDS_SIGNATURE)]
    assert printed == [(r["customer_id"], f"{r['probability']:.4f}") for r in kept]
    assert [r["decision"] for r in kept] == [int(r["probability"] >= WITH_IDS_THRESHOLD) for r in kept]


def test_predict_record_without_ids_is_one_line_and_exit_1(served_with_ids: ModelServer, tmp_path: Path) -> None:
    csv_path = tmp_path / "no_ids.csv"
    csv_path.write_text("Age,Gender,Annual_Income,Total_Spend\n30,Male,50.5,900\n")
    done = subprocess.run([sys.executable, "-m", "client.tf_serving", "--port", str(served_with_ids.rest_port),
                           "--model", "m", "predict", "--csv", str(csv_path), "--record", "--store",
                           f"sqlite:///{tmp_path / 'p.sqlite'}"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=120, env=USER_ENV)
    assert done.returncode == exit_codes.FAILED and done.stdout == ""
    assert done.stderr.splitlines() == ["error: --record needs every customer's Customer_ID"]


@pytest.mark.parametrize("transport", [[], ["--grpc"]])
def test_no_server_is_one_line_naming_the_address_and_how_to_start_one(transport: list[str]) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = subprocess.run([sys.executable, "-m", "client.tf_serving", "--port", str(port), *transport, "--timeout",
                           "5", "status"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, env=USER_ENV)
    assert done.returncode == exit_codes.FAILED and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("error: Cannot reach the model server at ") and f"127.0.0.1:{port}" in line
    assert line.endswith(NOT_RUNNING_HINT) and "make serve" in NOT_RUNNING_HINT

"""Warmup (serving/api/warmup.py): records built per signature, TF Serving's file rules, replay before AVAILABLE."""
from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from prometheus_client import CollectorRegistry, generate_latest
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from serving.api import warmup
from serving.config.server_config import from_args
from serving.core.errors import ServingError
from serving.core.manager import ModelConfig
from serving.core.servable import Servable
from serving.core.types import ModelState, ServableId
from tests.serving.conftest import ServerFactory, install
from tests.serving.http_util import wait_for

ROW = {"x": 4.0, "Age": 30, "Gender": "Male", "Annual_Income": 50.5, "Total_Spend": 2000.0, "s": "abc"}
TF1_SIGNATURES = ("serving_default", "classify_x_to_y", "regress_x_to_y")  # not `blocking` (it never returns)


def write(version_dir: Path, logs: list[prediction_log_pb2.PredictionLog]) -> Path:
    return warmup.write_warmup_file(version_dir, logs)


def bad_predict(signature: str = "serving_default") -> prediction_log_pb2.PredictionLog:
    """A predict record whose request fails (an input the signature does not have)."""
    request = predict_pb2.PredictRequest()
    request.model_spec.signature_name = signature
    request.inputs["nope"].CopyFrom(tf.make_tensor_proto(np.array([1.0], np.float32)))
    return prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))


def test_builder_covers_every_signature_with_one_request_each(model_store: Path) -> None:
    defs = warmup.signature_defs(model_store / "tf2_v1")
    logs = warmup.build_warmup_records(defs, ROW, model_name="half")
    served = sorted(n for n in defs if n != "__saved_model_init_op")
    assert [log.predict_log.request.model_spec.signature_name for log in logs] == served
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == "half"
        assert set(request.inputs) == set(defs[request.model_spec.signature_name].inputs)
        for tensor in request.inputs.values():
            assert tf.make_ndarray(tensor).shape == (1,)
    churn = next(log for log in logs if log.predict_log.request.model_spec.signature_name == "churn")
    assert tf.make_ndarray(churn.predict_log.request.inputs["Gender"]).tolist() == [b"Male"]
    assert tf.make_ndarray(churn.predict_log.request.inputs["Age"]).dtype == np.int64


def test_builder_makes_classify_and_regress_requests_from_examples(model_store: Path) -> None:
    defs = warmup.signature_defs(model_store / "tf1")
    logs = warmup.build_warmup_records(defs, {"x": 4.0}, only=TF1_SIGNATURES)
    kinds = {log.WhichOneof("log_type") for log in logs}
    assert kinds == {"predict_log", "classify_log", "regress_log"}
    classify = next(log for log in logs if log.HasField("classify_log")).classify_log.request
    example = classify.input.example_list.examples[0]
    assert list(example.features.feature["x"].float_list.value) == [4.0]
    predict = next(log for log in logs if log.HasField("predict_log")).predict_log.request
    assert tf.make_ndarray(predict.inputs["x"]).shape == (1, 1)  # declared [-1, 1]


def test_classify_and_regress_records_replay(model_store: Path) -> None:
    servable = Servable.load(ServableId("tf1", 1), model_store / "tf1")
    logs = warmup.build_warmup_records(warmup.signature_defs(model_store / "tf1"), {"x": 4.0},
                                       only=TF1_SIGNATURES)
    for log in logs:
        warmup.run_warmup_record(servable, log)  # raises on any failure
    assert {log.WhichOneof("log_type") for log in logs} == {"predict_log", "classify_log", "regress_log"}


def test_builder_refuses_a_signature_the_row_cannot_fill(model_store: Path) -> None:
    defs = warmup.signature_defs(model_store / "tf2_v1")
    with pytest.raises(ValueError, match="signature churn: input Age"):
        warmup.build_warmup_records(defs, {"x": 1.0, "s": "a"})


def test_builder_refuses_a_value_of_the_wrong_type(model_store: Path) -> None:
    defs = warmup.signature_defs(model_store / "tf2_v1")
    with pytest.raises(ValueError, match=r"signature churn: input Age \(int64\) cannot hold 'forty'"):
        warmup.build_warmup_records(defs, {**ROW, "Age": "forty"})


def test_written_file_parses_under_tf_serving_rules(tmp_path: Path, model_store: Path) -> None:
    version = tmp_path / "1"
    shutil.copytree(model_store / "tf2_v1", version)
    logs = warmup.build_warmup_records(warmup.signature_defs(version), ROW)
    path = write(version, logs)
    assert path == version / "assets.extra" / "tf_serving_warmup_requests"
    records = [bytes(r.numpy()) for r in tf.data.TFRecordDataset(str(path))]  # plain TFRecord framing
    assert 0 < len(records) <= warmup.MAX_WARMUP_RECORDS
    for raw in records:
        log = prediction_log_pb2.PredictionLog.FromString(raw)
        assert log.WhichOneof("log_type") in warmup.SUPPORTED_LOG_TYPES
    servable = Servable.load(ServableId("m", 1), version)
    assert warmup.replay(servable) == len(logs)  # every request runs on the real signatures


def test_no_file_means_no_warmup(model_store: Path) -> None:
    assert warmup.replay(Servable.load(ServableId("m", 1), model_store / "tf2_v1")) is None


@pytest.mark.parametrize("case, code, message", [
    ("too_many", "INVALID_ARGUMENT",
     r"Number of warmup records exceeds the maximum \(1000\) at .*tf_serving_warmup_requests"),
    ("session_run_log", "UNIMPLEMENTED", r"Unsupported log_type for warmup: session_run_log"),
    ("not_tfrecord", "DATA_LOSS", r"Please verify your warmup data is in TFRecord format\.$"),
    ("not_a_prediction_log", "INVALID_ARGUMENT", r"Failed to parse warmup record: .* from "),
    ("failing_request", "INVALID_ARGUMENT", r"input tensor alias not found in signature: nope"),
    ("bad_tensor", "INVALID_ARGUMENT", r"Invalid tensor for input x: "),
])
def test_replay_fails_as_tf_serving_does(tmp_path: Path, model_store: Path, case: str, code: str,
                                         message: str) -> None:
    version = tmp_path / "1"
    shutil.copytree(model_store / "tf2_v1", version)
    good = warmup.build_warmup_records(warmup.signature_defs(version), ROW, only=["serving_default"])
    path = warmup.warmup_path(version)
    if case == "too_many":
        write(version, good * (warmup.MAX_WARMUP_RECORDS + 1))
    elif case == "session_run_log":
        write(version, [prediction_log_pb2.PredictionLog(session_run_log=prediction_log_pb2.SessionRunLog())])
    elif case == "not_tfrecord":
        path.parent.mkdir(parents=True)
        path.write_bytes(b"this is not a TFRecord file at all")
    elif case == "not_a_prediction_log":
        path.parent.mkdir(parents=True)
        with tf.io.TFRecordWriter(str(path)) as writer:
            writer.write(b"\xff\xff\xff")
    elif case == "bad_tensor":  # declares 3 floats, holds 1: the record must fail the load, not hang it
        log = bad_predict()
        del log.predict_log.request.inputs["nope"]
        tensor = log.predict_log.request.inputs["x"]
        tensor.dtype = tf.float32.as_datatype_enum
        tensor.tensor_shape.dim.add(size=3)
        tensor.tensor_content = b"\x00" * 4
        write(version, [log])
    else:
        write(version, good + [bad_predict()])
    servable = Servable.load(ServableId("m", 1), version)
    with pytest.raises(ServingError) as err:
        warmup.replay(servable)
    assert err.value.code.name == code
    assert re.search(message, err.value.message), err.value.message


def test_exactly_the_maximum_is_accepted(tmp_path: Path, model_store: Path) -> None:
    version = tmp_path / "1"
    shutil.copytree(model_store / "tf2_v1", version)
    one = warmup.build_warmup_records(warmup.signature_defs(version), ROW, only=["serving_default"])
    write(version, one * warmup.MAX_WARMUP_RECORDS)
    assert warmup.replay(Servable.load(ServableId("m", 1), version)) == warmup.MAX_WARMUP_RECORDS


def warmup_samples(registry: CollectorRegistry, path: Path) -> int:
    """`model_warmup_latency_count` for `path` with status OK."""
    text = generate_latest(registry).decode()
    pattern = (rf':tensorflow:serving:model_warmup_latency_count\{{model_path="{re.escape(str(path))}",'
               rf'status="OK"\}} (\S+)')
    found = re.search(pattern, text)
    return int(float(found.group(1))) if found else 0


def test_server_replays_before_a_version_becomes_available(tmp_path: Path, model_store: Path,
                                                           server_factory: ServerFactory) -> None:
    base = tmp_path / "m"
    v1 = install(model_store, "tf2_v1", base, 1)
    write(v1, warmup.build_warmup_records(warmup.signature_defs(v1), ROW))
    registry = CollectorRegistry()
    server = server_factory((ModelConfig("m", base),), registry=registry)
    assert warmup_samples(registry, v1) == 1  # start() returned: v1 is AVAILABLE and was warmed up
    # Hot swap: whenever v2 is first seen AVAILABLE, its warmup must already be recorded.
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            states = {s.version: s.state for s in server.manager.status("m")}
            if states.get(2) is ModelState.AVAILABLE:
                seen.append(warmup_samples(registry, base / "2"))
                return

    watcher = threading.Thread(target=watch)
    watcher.start()
    staging = tmp_path / "staging"
    shutil.copytree(model_store / "tf2_v2", staging)
    write(staging, warmup.build_warmup_records(warmup.signature_defs(staging), ROW))
    staging.rename(base / "2")
    watcher.join(timeout=60)
    stop.set()
    assert seen == [1]


def test_a_version_whose_warmup_fails_is_never_served(tmp_path: Path, model_store: Path,
                                                      server_factory: ServerFactory) -> None:
    base = tmp_path / "m"
    install(model_store, "tf2_v1", base, 1)
    server = server_factory((ModelConfig("m", base),))
    staging = tmp_path / "staging"
    shutil.copytree(model_store / "tf2_v2", staging)
    write(staging, [bad_predict()])
    staging.rename(base / "2")
    wait_for(lambda: {s.version: s.state for s in server.manager.status("m")}.get(2) is ModelState.END)
    status = {s.version: s for s in server.manager.status("m")}
    assert status[2].error is not None and "input tensor alias not found" in status[2].error.message
    assert status[1].state is ModelState.AVAILABLE and server.manager.get("m").id.version == 1


def test_warmup_can_be_switched_off(tmp_path: Path, model_store: Path, server_factory: ServerFactory) -> None:
    base = tmp_path / "m"
    v1 = install(model_store, "tf2_v1", base, 1)
    write(v1, [bad_predict()])
    server = server_factory((ModelConfig("m", base),), enable_model_warmup=False)
    assert server.manager.get("m").id.version == 1


def test_warmup_flag_defaults_to_on_as_in_tf_serving(tmp_path: Path) -> None:
    assert from_args(["--model_base_path", str(tmp_path)]).enable_model_warmup is True
    assert from_args(["--model_base_path", str(tmp_path), "--enable_model_warmup=false"]).enable_model_warmup is False


def test_classify_and_regress_records_replay_from_the_file(tmp_path: Path, model_store: Path) -> None:
    version = tmp_path / "1"
    shutil.copytree(model_store / "tf1", version)
    write(version, warmup.build_warmup_records(warmup.signature_defs(version), {"x": 4.0}, only=TF1_SIGNATURES))
    assert warmup.replay(Servable.load(ServableId("m", 1), version)) == len(TF1_SIGNATURES)

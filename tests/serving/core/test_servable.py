"""TF Serving's runtime semantics: request tensors go to the session as they are, and the answer
or error is the runtime's (contract section 6.3, "Model-side errors during Session::Run")."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2, predict_pb2, prediction_service_pb2_grpc

from serving.core.batching import BatchingOptions
from serving.core.errors import Code, ServingError
from serving.core.manager import ModelConfig
from serving.core.servable import Servable
from serving.core.types import ServableId
from tests.field_cases import REST_LIST_WRAPPED
from tests.serving.conftest import ServerFactory, install
from tests.serving.http_util import error_of, post

CHURN = "/v1/models/half:predict"
ROWS = [{"Age": 62, "Gender": "Female", "Annual_Income": 38.5, "Total_Spend": 1210.0},
        {"Age": 30, "Gender": "Male", "Annual_Income": 80.0, "Total_Spend": 15.5}]


def _dtype(value: Any) -> tf.DType:
    return tf.string if isinstance(value, str) else tf.int64 if isinstance(value, int) else tf.float32


def build_flattening_model(export_dir: Path, row: dict[str, Any]) -> None:
    """A model over the field case's features that, like the pipeline's `as_parsed`, reshapes every
    input to `[-1]` before use, so its graph accepts one-element lists per value."""
    names = sorted(row)

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], _dtype(row[k]), name=k) for k in names])
        def serve(self, *columns: tf.Tensor) -> dict:
            z = tf.zeros([1])
            for column in columns:
                flat = tf.reshape(column, [-1])
                z = z + (tf.cast(tf.strings.length(flat), tf.float32) if flat.dtype == tf.string
                         else tf.cast(flat, tf.float32)) * 1e-3
            p = tf.sigmoid(z - 1.0)
            return {"churn_probability": p, "churn": tf.cast(p > 0.5, tf.int64)}

    model = Model()
    tf.saved_model.save(model, str(export_dir), signatures={"serving_default": model.serve})


@pytest.fixture(scope="module")
def port(served) -> int:  # type: ignore[no-untyped-def]
    return served.rest_port


def test_field_case_list_wrapped_values_get_the_runtime_answer(tmp_path: Path,
                                                               server_factory: ServerFactory) -> None:
    wrapped = json.loads(REST_LIST_WRAPPED.read_text())
    plain_row = {k: v[0] for k, v in wrapped["instances"][0].items()}
    build_flattening_model(tmp_path / "m" / "1", plain_row)
    port = server_factory((ModelConfig("m", tmp_path / "m"),)).rest_port
    status, _, body = post(port, "/v1/models/m:predict", wrapped)
    assert status == 200, body
    plain = post(port, "/v1/models/m:predict", {"instances": [plain_row]})
    assert plain[0] == 200 and json.loads(body) == json.loads(plain[2])  # the graph flattens [1, 1] to [1]


def test_list_wrapped_rows_run_as_rank_two_tensors(port: int) -> None:
    plain = post(port, CHURN, {"signature_name": "churn", "instances": ROWS})
    wrapped = post(port, CHURN, {"signature_name": "churn",
                                 "instances": [{k: [v] for k, v in row.items()} for row in ROWS]})
    assert plain[0] == 200 and wrapped[0] == 200, wrapped[2]
    expected = [{k: [v] for k, v in row.items()} for row in json.loads(plain[2])["predictions"]]
    assert json.loads(wrapped[2])["predictions"] == expected  # elementwise graph: [2, 1] in, [2, 1] out


def test_scalar_columnar_inputs_for_a_none_input_run(port: int) -> None:
    status, _, body = post(port, CHURN, {"inputs": 3.0})
    assert status == 200 and json.loads(body) == {"outputs": 3.5}
    status, _, body = post(port, CHURN, {"signature_name": "churn", "inputs": ROWS[0]})
    outputs = json.loads(body)["outputs"]
    assert status == 200 and set(outputs) == {"churn", "churn_probability"}
    assert isinstance(outputs["churn_probability"], float)  # rank 0 in, rank 0 out


def test_shape_errors_carry_the_runtime_message(port: int) -> None:
    columns = {"Age": [1, 2], "Gender": ["a", "b"], "Annual_Income": [1.0, 2.0, 3.0], "Total_Spend": [1.0, 2.0]}
    reply = post(port, CHURN, {"signature_name": "churn", "inputs": columns})
    assert reply[0] == 400
    message = error_of(reply)
    assert "Incompatible shapes" in message and "Cannot feed" not in message


def test_batching_refuses_scalar_inputs_with_tf_servings_message(tmp_path: Path, model_store: Path,
                                                                  server_factory: ServerFactory) -> None:
    install(model_store, "tf2_v1", tmp_path / "m", 1)
    port = server_factory((ModelConfig("m", tmp_path / "m"),), batching=BatchingOptions()).rest_port
    reply = post(port, "/v1/models/m:predict", {"inputs": 3.0})
    assert reply[0] == 400
    assert error_of(reply) == "Batching session Run() input tensors must have at least one dimension"
    ok = post(port, "/v1/models/m:predict", {"instances": [[1.0]]})
    assert ok[0] == 200 and json.loads(ok[2]) == {"predictions": [[2.5]]}


@pytest.fixture(scope="module")
def stub(served):  # type: ignore[no-untyped-def]
    channel = grpc.insecure_channel(f"127.0.0.1:{served.grpc_port}")
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    channel.close()


def _predict(stub, shape: list, **content: Any) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half"
    tensor = request.inputs["x"]
    tensor.dtype = tf.float32.as_datatype_enum
    for size in shape:
        tensor.tensor_shape.dim.add(size=size)
    for field, value in content.items():
        if field == "tensor_content":
            tensor.tensor_content = value
        else:
            getattr(tensor, field).extend(value)
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(request, timeout=30)
    return err.value


@pytest.mark.parametrize("shape, content", [
    ([1, 2**40], {"float_val": [1.0]}),  # TF would try to allocate 4 TiB
    ([2, 2**31, 2**31, 2**31], {}),  # more elements than int64 holds
    ([-5], {"float_val": [1.0]}),
    ([2], {"tensor_content": b"\x00\x00\x80"}),  # 3 bytes for two floats
], ids=["unallocatable", "overflow", "negative", "short-content"])
def test_grpc_tensor_that_cannot_be_built_is_invalid_argument(stub, shape: list,  # type: ignore[no-untyped-def]
                                                              content: dict[str, Any]) -> None:
    error = _predict(stub, shape, **content)
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "tensor parsing error: x")


def test_grpc_honours_max_instances_per_request(stub, served) -> None:  # type: ignore[no-untyped-def]
    limit = served.config.max_instances
    error = _predict(stub, [limit + 1], float_val=[1.0])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (f"Request has {limit + 1} instances, more than the limit of {limit} per request "
                               "(--max_instances_per_request)")
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "tf1"
    request.model_spec.signature_name = "classify_x_to_y"
    for _ in range(limit + 1):
        request.input.example_list.examples.add().features.feature["x"].float_list.value.append(1.0)
    with pytest.raises(grpc.RpcError) as err:
        stub.Classify(request, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "--max_instances_per_request" in err.value.details()
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.ones(limit, np.float32)))
    assert len(tf.make_ndarray(stub.Predict(request, timeout=30).outputs["y"])) == limit


def test_signature_run_converts_inputs_to_the_placeholder_dtype(model_store: Path) -> None:
    """Values already in the input's dtype go to the session as they are; others are converted
    (int64 and float64 for the float32 `x`); a value that cannot be converted is INVALID_ARGUMENT."""
    signature = Servable.load(ServableId("tf2", 1), model_store / "tf2_v1").signatures["serving_default"]
    for array in (np.array([2.0, 4.0], np.float32), np.array([2, 4], np.int64), np.array([2.0, 4.0])):
        assert signature.run({"x": array})["y"].tolist() == [3.0, 4.0]  # y = x/2 + 2
    with pytest.raises(ServingError) as refused:
        signature.run({"x": np.array(["two"], object)})
    assert refused.value.code == Code.INVALID_ARGUMENT

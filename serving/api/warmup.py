"""SavedModel warmup: TF Serving's `assets.extra/tf_serving_warmup_requests`, written and replayed.

The file is a TFRecord of `tensorflow.serving.PredictionLog` records. TF Serving
(`servables/tensorflow/saved_model_warmup_util.cc`, `saved_model_warmup.cc`, release 2.20) replays
it while a version loads, before the version becomes AVAILABLE, with these rules, which `replay`
copies:

* no file: nothing to do (warmup data is optional);
* every record must parse as a `PredictionLog` (else INVALID_ARGUMENT `Failed to parse warmup
  record ...`); a corrupt TFRecord is DATA_LOSS `... Please verify your warmup data is in TFRecord
  format.`;
* at most `MAX_WARMUP_RECORDS` (1,000) records (else INVALID_ARGUMENT `Number of warmup records
  exceeds the maximum (1000) at <path>`);
* log types `predict_log`, `classify_log`, `regress_log` and `multi_inference_log` run their
  request; any other (e.g. `session_run_log`) is UNIMPLEMENTED `Unsupported log_type for warmup: ...`;
* any failed request fails the load, so a version whose warmup fails is never served.

`build_warmup_records` is our own builder (TFX's `RequestSpec(make_warmup=True)` only builds
serialized-example requests): one request per served signature, from one synthetic row.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import classification_pb2, predict_pb2, prediction_log_pb2, regression_pb2

from serving.api.service import classifications, examples_tensor, method_signature, regressions
from serving.codec.examples import example_bytes
from serving.core.errors import Code, InvalidArgumentError, ServingError, UnimplementedError
from serving.core.servable import (
    CLASSIFY_METHOD,
    DEFAULT_SIGNATURE,
    INIT_OP_SIGNATURE,
    REGRESS_METHOD,
    Servable,
    status_from_exception,
)

ASSETS_EXTRA_DIR = "assets.extra"
"""TF's `kSavedModelAssetsExtraDirectory`."""
WARMUP_FILE = "tf_serving_warmup_requests"
"""TF Serving's `WarmupConsts::kRequestsFileName`."""
MAX_WARMUP_RECORDS = 1000
"""TF Serving's `WarmupConsts::kMaxNumRecords`."""
SUPPORTED_LOG_TYPES = ("predict_log", "classify_log", "regress_log", "multi_inference_log")
"""The `PredictionLog.log_type` cases TF Serving's warmup executes."""

Row = Mapping[str, Any]
"""One synthetic customer: raw feature name -> a Python scalar (int, float or str)."""


def warmup_path(version_dir: Path) -> Path:
    """`<version>/assets.extra/tf_serving_warmup_requests`."""
    return Path(version_dir) / ASSETS_EXTRA_DIR / WARMUP_FILE


# ---- reading and replaying -------------------------------------------------------------------

def read_warmup_records(path: Path) -> Iterator[prediction_log_pb2.PredictionLog]:
    """The file's records, checked as TF Serving checks them while reading.

    Raises:
      ServingError: DATA_LOSS for a corrupt TFRecord, INVALID_ARGUMENT for an unparsable record
        or more than `MAX_WARMUP_RECORDS` records (raised on reading record 1,001).
    """
    count = 0
    try:
        for tensor in tf.data.TFRecordDataset(str(path)):
            record = tensor.numpy()
            log = prediction_log_pb2.PredictionLog()
            try:
                log.ParseFromString(record)
            except Exception:  # protobuf's DecodeError; TF Serving: ParseFromArray returned false
                raise InvalidArgumentError(f"Failed to parse warmup record: {record[:64]!r} from {path}") from None
            count += 1
            if count > MAX_WARMUP_RECORDS:
                raise InvalidArgumentError(
                    f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}")
            yield log
    except tf.errors.DataLossError as err:
        raise ServingError(f"{err.message}. Please verify your warmup data is in TFRecord format.",
                           Code.DATA_LOSS) from None
    except tf.errors.OpError as err:
        raise ServingError(err.message, Code(err.error_code)) from None


def _run_predict(servable: Servable, request: predict_pb2.PredictRequest) -> None:
    name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    signature = servable.signatures.get(name)
    if signature is None:
        raise InvalidArgumentError(f'Serving signature name: "{name}" not found in signature def')
    inputs = {}
    for alias, proto in request.inputs.items():
        if alias not in signature.inputs:
            raise InvalidArgumentError(f"input tensor alias not found in signature: {alias}. Inputs expected "
                                       f"to be in the set {{{','.join(signature.inputs)}}}.")
        try:
            inputs[alias] = tf.make_ndarray(proto)
        except (ValueError, TypeError) as err:
            raise InvalidArgumentError(f"Invalid tensor for input {alias}: {err}") from None
    signature.run(inputs, output_filter=list(request.output_filter) or None)


def _run_examples(servable: Servable, request: Any, method: str, kind: str) -> None:
    signature = method_signature(servable, request.model_spec.signature_name, method, kind)
    examples = example_bytes(request.input)
    outputs = signature.run(examples_tensor(examples))
    if method == CLASSIFY_METHOD:
        classifications(outputs, len(examples))
    else:
        regressions(outputs, len(examples))


def run_warmup_record(servable: Servable, log: prediction_log_pb2.PredictionLog) -> None:
    """Runs one record's request on `servable` (no manager, no batching: the version is not served yet).

    Raises:
      ServingError: the request's own error, or UNIMPLEMENTED for an unsupported log type.
    """
    kind = log.WhichOneof("log_type")
    if kind == "predict_log":
        _run_predict(servable, log.predict_log.request)
    elif kind == "classify_log":
        _run_examples(servable, log.classify_log.request, CLASSIFY_METHOD, "classification")
    elif kind == "regress_log":
        _run_examples(servable, log.regress_log.request, REGRESS_METHOD, "regression")
    elif kind == "multi_inference_log":
        request = log.multi_inference_log.request
        for task in request.tasks:
            if task.method_name == CLASSIFY_METHOD:
                single: Any = classification_pb2.ClassificationRequest(model_spec=task.model_spec, input=request.input)
                _run_examples(servable, single, CLASSIFY_METHOD, "classification")
            else:
                single = regression_pb2.RegressionRequest(model_spec=task.model_spec, input=request.input)
                _run_examples(servable, single, REGRESS_METHOD, "regression")
    else:
        raise UnimplementedError(f"Unsupported log_type for warmup: {kind}")


def replay(servable: Servable, num_request_iterations: int = 1) -> int | None:
    """Replays `servable`'s warmup file (TF Serving's `RunSavedModelWarmup`).

    Args:
      servable: a loaded, not yet served version.
      num_request_iterations: runs per record (`ModelWarmupOptions.num_request_iterations`, default 1).

    Returns:
      The number of records replayed, or None when the version has no warmup file.

    Raises:
      ServingError: see the module docstring; the load then fails.
    """
    path = warmup_path(servable.path)
    if not path.is_file():
        return None
    count = 0
    for log in read_warmup_records(path):
        for _ in range(num_request_iterations):
            try:
                run_warmup_record(servable, log)
            except Exception as err:  # every failure must fail the load, never leave it LOADING
                raise status_from_exception(err) from None
        count += 1
    return count


# ---- building --------------------------------------------------------------------------------

def _input_value(info: meta_graph_pb2.TensorInfo, value: Any) -> tf.compat.v1.TensorProto:
    """One row's value for a `[None]`-like input, as a tensor proto of the declared dtype."""
    dtype = tf.dtypes.as_dtype(info.dtype)
    dims = [] if info.tensor_shape.unknown_rank else [int(d.size) for d in info.tensor_shape.dim]
    shape = [1 if d < 0 else d for d in dims] if dims else [1]
    if dtype == tf.string:
        value = str(value).encode()
    array = np.full(shape, value, dtype=object if dtype == tf.string else dtype.as_numpy_dtype)
    return tf.make_tensor_proto(array, dtype=dtype)


_EXAMPLE_LOGS = {
    CLASSIFY_METHOD: (classification_pb2.ClassificationRequest, "classify_log", prediction_log_pb2.ClassifyLog),
    REGRESS_METHOD: (regression_pb2.RegressionRequest, "regress_log", prediction_log_pb2.RegressLog),
}
"""Example-based signature methods -> (request type, PredictionLog field, log type)."""


def to_example(row: Row) -> tf.train.Example:
    """A `tf.train.Example` of the row: ints -> int64_list, floats -> float_list, others -> bytes_list."""
    example = tf.train.Example()
    for key, value in row.items():
        feature = example.features.feature[key]
        if isinstance(value, (bool, np.bool_)):
            feature.int64_list.value.append(int(value))
        elif isinstance(value, (int, np.integer)):
            feature.int64_list.value.append(int(value))
        elif isinstance(value, (float, np.floating)):
            feature.float_list.value.append(float(value))
        else:
            feature.bytes_list.value.append(str(value).encode())
    return example


def build_warmup_records(signature_defs: Mapping[str, meta_graph_pb2.SignatureDef], row: Row,
                         model_name: str = "",
                         only: Iterable[str] | None = None) -> list[prediction_log_pb2.PredictionLog]:
    """One `PredictionLog` per served signature (or per name in `only`), each a one-row request from `row`.

    Predict signatures get a `PredictRequest`: every input named like a feature of `row` gets that
    value (shape `[1]`, or the declared shape with unknown dims as 1); a single string input not
    named like a feature (e.g. `examples`) gets the row as one serialized `tf.Example`. Classify
    and regress signatures get a `ClassificationRequest` / `RegressionRequest` holding the row as
    a `tf.Example`.

    Raises:
      ValueError: a predict signature input that the row cannot fill (names the signature and input).
    """
    logs = []
    example = to_example(row)
    serialized = example.SerializeToString()
    for name in sorted(signature_defs if only is None else only):
        sig = signature_defs[name]
        if name == INIT_OP_SIGNATURE or not sig.inputs:
            continue
        if sig.method_name in _EXAMPLE_LOGS:  # classify / regress: the row as one tf.Example
            request_type, log_field, log_type = _EXAMPLE_LOGS[sig.method_name]
            request = request_type()
            request.model_spec.name, request.model_spec.signature_name = model_name, name
            request.input.example_list.examples.add().CopyFrom(example)
            logs.append(prediction_log_pb2.PredictionLog(**{log_field: log_type(request=request)}))
            continue
        predict = predict_pb2.PredictRequest()
        predict.model_spec.name, predict.model_spec.signature_name = model_name, name
        for alias, info in sorted(sig.inputs.items()):
            if alias in row:
                try:
                    predict.inputs[alias].CopyFrom(_input_value(info, row[alias]))
                except (ValueError, TypeError) as err:
                    raise ValueError(
                        f"Cannot build a warmup request for signature {name}: input {alias} "
                        f"({tf.dtypes.as_dtype(info.dtype).name}) cannot hold {row[alias]!r}: {err}") from None
            elif len(sig.inputs) == 1 and info.dtype == tf.string.as_datatype_enum:
                predict.inputs[alias].CopyFrom(tf.make_tensor_proto([serialized], dtype=tf.string))
            else:
                raise ValueError(f"Cannot build a warmup request for signature {name}: "
                                 f"input {alias} is not a feature of the synthetic row.")
        logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=predict)))
    if len(logs) > MAX_WARMUP_RECORDS:
        raise ValueError(f"{len(logs)} warmup records; TF Serving reads at most {MAX_WARMUP_RECORDS}.")
    return logs


def write_warmup_file(version_dir: Path, logs: list[prediction_log_pb2.PredictionLog]) -> Path:
    """Writes `logs` as `<version_dir>/assets.extra/tf_serving_warmup_requests`; returns its path."""
    path = warmup_path(version_dir)
    os.makedirs(path.parent, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


def signature_defs(version_dir: Path | str, tags: str = "serve") -> dict[str, meta_graph_pb2.SignatureDef]:
    """The SignatureDefs of a SavedModel's `tags` MetaGraph, read from `saved_model.pb` alone.

    `version_dir` may be any path TF's file system layer reads (a local path, or gs://... as a str).

    Raises:
      ValueError: no MetaGraph carries `tags`. TF's own errors if there is no readable SavedModel.
    """
    from tensorflow.python.saved_model import loader_impl  # the proto reader; no session, no variables

    saved_model = loader_impl.parse_saved_model(str(version_dir))
    for meta_graph in saved_model.meta_graphs:
        if tags in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise ValueError(f"{version_dir}: no MetaGraph tagged {tags!r}")

"""Transport-neutral facade used by both REST and gRPC adapters (TF Serving's `*Impl` classes).

It resolves servables and signatures with TF Serving's messages, runs signatures through a
runner (direct thread pool or dynamic batching), checks classify/regress signatures and outputs,
records runtime latency, and builds the status/metadata protos both transports serialize.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from tensorflow.core.framework import types_pb2 as dt
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_pb2

from serving.constants import DEFAULT_MAX_REQUEST_BYTES
from serving.core.errors import Code, FailedPreconditionError, InvalidArgumentError, ServingError
from serving.core.manager import ModelManager
from serving.core.servable import CLASSIFY_METHOD, DEFAULT_SIGNATURE, REGRESS_METHOD, Servable, Signature
from serving.core.types import Done, TensorMap
from serving.observability.metrics import ServingMetrics
from serving.observability.model_metrics import ModelMetrics

LOG = logging.getLogger(__name__)
ClassifyResult = list[list[tuple[str, float]]]
SESSION_RUN_THREAD_PREFIX = "session-run"
"""Name prefix of `DirectRunner`'s worker threads (`session-run_0`, ...)."""
_Work = tuple[Signature, TensorMap, int, Done]


class Runner(Protocol):
    """Runs a signature off the caller's thread and calls `done(outputs, None)` or
    `done(None, ServingError)` there. Refusals (queue full, batch too large) raise at once, except
    a full batch queue met on an event loop's thread, which `BatchScheduler` answers through `done`
    once the loop turn's requests are queued (serving/core/batching.py)."""

    def submit(self, signature: Signature, inputs: TensorMap, timeout_ms: int, done: Done) -> None:
        ...


class DirectRunner:
    """One session run per request on `num_threads` worker threads (TF releases the GIL inside the run).

    The threads take requests from one `queue.SimpleQueue` (put and get are C calls): a
    `concurrent.futures.ThreadPoolExecutor` builds a `Future` per request, with its condition
    variable, lock and idle-thread semaphore, about 25 Python calls per request on the event loop
    and the worker that nobody here reads, since `done` already carries the outcome (the same reason
    `serving.core.types.Done` is a callback; measured in docs/performance.md, "Model server").
    Like TF Serving's session-run threads they start with the server, not on first use.
    """

    def __init__(self, num_threads: int, thread_name_prefix: str = SESSION_RUN_THREAD_PREFIX) -> None:
        """`num_threads` >= 1 (`--rest_api_num_threads`); threads are named `<prefix>_<i>`.

        Raises:
          ValueError: `num_threads` < 1.
        """
        if num_threads < 1:
            raise ValueError(f"num_threads must be at least 1, got {num_threads}")
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._stopped = False
        self._threads = [threading.Thread(target=self._work, name=f"{thread_name_prefix}_{i}", daemon=True)
                         for i in range(num_threads)]
        for thread in self._threads:
            thread.start()

    @property
    def threads(self) -> tuple[threading.Thread, ...]:
        """The worker threads (alive until `shutdown`)."""
        return tuple(self._threads)

    def submit(self, signature: Signature, inputs: TensorMap, timeout_ms: int, done: Done) -> None:
        """Queues one run; `done` is called on a worker thread.

        Raises:
          ServingError: UNAVAILABLE after `shutdown` (the run is not queued).
        """
        if self._stopped:
            raise ServingError("Server is shutting down", Code.UNAVAILABLE)
        self._queue.put((signature, inputs, timeout_ms, done))

    def _work(self) -> None:
        get = self._queue.get
        while True:
            work = get()
            if work is None:
                return
            try:
                _run_one(*work)
            except Exception:  # a failing `done` costs its request (answered at the deadline), never the thread
                LOG.exception("Unhandled error finishing a session run")
            del work  # drop the request's tensors before waiting for the next one

    def shutdown(self) -> None:
        """Drops queued runs that have not started (their `done` is never called, as
        `ThreadPoolExecutor.shutdown(cancel_futures=True)` did) and stops the threads once their
        current run is done; does not wait for them."""
        self._stopped = True
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        for _ in self._threads:
            self._queue.put(None)


def _run_one(signature: Signature, inputs: TensorMap, timeout_ms: int, done: Done) -> None:
    try:
        outputs = signature.run(inputs, timeout_ms)
    except ServingError as err:
        done(None, err)
    else:
        done(outputs, None)


def _then(done: Done, convert: Callable[[TensorMap], Any]) -> Done:
    """A callback that hands `convert(outputs)` to `done`; a conversion failure becomes the error."""

    def converted(outputs: Any, error: Exception | None) -> None:
        if error is None:
            try:
                outputs = convert(outputs)
            except Exception as err:  # every failure must reach the waiting request
                outputs, error = None, err
        done(outputs, error)

    return converted


class PredictionService:
    """Predict/Classify/Regress/GetModelStatus/GetModelMetadata over the model manager."""

    def __init__(self, manager: ModelManager, runner: Runner, metrics: ServingMetrics,
                 max_instances: int, timeout_ms: int, model_metrics: ModelMetrics,
                 max_tensor_elements: int = DEFAULT_MAX_REQUEST_BYTES) -> None:
        self.manager = manager
        self.runner = runner
        self.metrics = metrics
        self.model_metrics = model_metrics
        self.max_instances = max_instances
        self.max_tensor_elements = max_tensor_elements
        """Elements a gRPC request tensor may declare (`grpc_service.tensor_from_proto`)."""
        self.timeout_ms = timeout_ms

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable for a request, leased (`ModelManager.get`): call `servable.release()` once
        done with it. Runs started with it (`predict`, `classify`, `regress`) hold their own lease."""
        return self.manager.get(name, version, label)

    @staticmethod
    def predict_signature(servable: Servable, name: str) -> Signature:
        """`GetInfoMap`: the named (default `serving_default`) signature, which needs inputs."""
        signature = servable.signatures.get(name or DEFAULT_SIGNATURE)
        if signature is None:
            raise InvalidArgumentError(
                f'Serving signature name: "{name or DEFAULT_SIGNATURE}" not found in signature def'
            )
        if not signature.inputs:
            raise InvalidArgumentError(f"Failed to get input map for signature: {name or 'DEFAULT'}")
        return signature

    def _submit(self, servable: Servable, api: str, signature: Signature, inputs: TensorMap,
                done: Done, observe: bool = False, source: str | None = None) -> None:
        """Runs the signature; on success records runtime latency (and, for predict, the model
        metrics) before `done` answers, so a scrape after the answer already sees them."""
        started = time.perf_counter()
        name = servable.id.name

        def finished(outputs: Any, error: Exception | None) -> None:
            servable.release()
            if error is None:
                self.metrics.record_runtime_latency(name, api, (time.perf_counter() - started) * 1e6)
                if observe:
                    self.model_metrics.observe_predict(servable.id, signature, inputs, outputs, source,
                                                       servable.path)
            done(outputs, error)

        servable.hold()  # the session stays open until this run is done, even past a timeout
        try:
            self.runner.submit(signature, inputs, self.timeout_ms, finished)
        except BaseException:
            servable.release()
            raise

    def predict(self, servable: Servable, signature: Signature, inputs: TensorMap, done: Done,
                source: str | None = None) -> None:
        """`done(outputs, error)` on a worker thread; refusals raise here. `source` (`rest` or `grpc`,
        `serving/observability/prediction_log.SOURCES`) says which API answered, for the prediction store."""
        self._submit(servable, "Predict", signature, inputs, done, observe=True, source=source)

    def classify(self, servable: Servable, signature_name: str, examples: Sequence[bytes],
                 done: Done) -> None:
        signature = method_signature(servable, signature_name, CLASSIFY_METHOD, "classification")
        if len(signature.outputs) not in (1, 2):
            raise InvalidArgumentError(
                f"Expected one or two output Tensors, found {len(signature.outputs)}")
        if "inputs" not in signature.inputs:
            raise FailedPreconditionError(
                f"No classification inputs found in SignatureDef: {signature.name}")
        if not {"classes", "scores"} & set(signature.outputs):
            raise FailedPreconditionError(
                f"No classification outputs found in SignatureDef: {signature.name}")
        self._submit(servable, "Classify", signature, examples_tensor(examples),
                     _then(done, lambda out: classifications(out, len(examples))))

    def regress(self, servable: Servable, signature_name: str, examples: Sequence[bytes],
                done: Done) -> None:
        signature = method_signature(servable, signature_name, REGRESS_METHOD, "regression")
        if len(signature.outputs) != 1:
            raise InvalidArgumentError("Expected one output Tensor.")
        if "inputs" not in signature.inputs:
            raise FailedPreconditionError(f"No regression inputs found in SignatureDef: {signature.name}")
        if "outputs" not in signature.outputs:
            raise FailedPreconditionError(f"No regression outputs found in SignatureDef: {signature.name}")
        self._submit(servable, "Regress", signature, examples_tensor(examples),
                     _then(done, lambda out: regressions(out, len(examples))))

    def model_status(self, name: str, version: int | None) -> get_model_status_pb2.GetModelStatusResponse:
        response = get_model_status_pb2.GetModelStatusResponse()
        for status in self.manager.status(name, version):
            entry = response.model_version_status.add(version=status.version)
            entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(status.state.value)
            entry.status.SetInParent()  # TF Serving always fills status, so OK prints too
            if status.error is not None:
                entry.status.error_code = int(status.error.code)
                entry.status.error_message = status.error.message
        return response

    @staticmethod
    def model_metadata(servable: Servable) -> tuple[model_pb2.ModelSpec, get_model_metadata_pb2.SignatureDefMap]:
        spec = model_pb2.ModelSpec(name=servable.id.name)
        spec.version.value = servable.id.version
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        for name, sig in servable.signature_defs.items():
            sig_map.signature_def[name].CopyFrom(sig)
        return spec, sig_map


def method_signature(servable: Servable, name: str, method: str, kind: str) -> Signature:
    """The Classify/Regress signature `name` (default `serving_default`) of `servable`, checked as
    TF Serving's `classifier.cc`/`regressor.cc` check it (one input; `kind` is "classification" or
    "regression" for the message).

    Raises:
      InvalidArgumentError: no such signature, another method name, or not exactly one input.
    """
    signature = servable.signatures.get(name or DEFAULT_SIGNATURE)
    if signature is None:
        raise InvalidArgumentError(f"No signature was found with the name: {name or DEFAULT_SIGNATURE}")
    if signature.method_name != method:
        raise InvalidArgumentError(
            f"Expected {kind} signature method_name to be {method}. Was: {signature.method_name}")
    if len(signature.inputs) != 1:
        raise InvalidArgumentError("Expected one input Tensor.")
    return signature


def examples_tensor(examples: Sequence[bytes]) -> TensorMap:
    """Serialized tf.Examples as the `inputs` string tensor of shape [len(examples)] that
    Classify/Regress signatures take."""
    array = np.empty(len(examples), dtype=object)
    array[:] = list(examples)
    return {"inputs": array}


def _check_batch(array: npt.NDArray[Any], batch: int) -> None:
    if array.ndim == 0 or array.shape[0] != batch:
        got = array.shape[0] if array.ndim else 0
        raise InvalidArgumentError(f"Input batch size did not match output batch size: {batch} vs. {got}")


def classifications(outputs: TensorMap, batch: int) -> ClassifyResult:
    """A classify signature's `scores` [batch, classes] (DT_FLOAT) and/or `classes` (DT_STRING)
    as (label, score) pairs per row (`classifier.cc` `PostProcessClassificationResult`).

    Raises:
      ServingError: INVALID_ARGUMENT for a wrong dtype, batch size or rank.
    """
    scores, classes = outputs.get("scores"), outputs.get("classes")
    for name, array, kind in (("scores", scores, "f"), ("classes", classes, "O")):
        if array is None:
            continue
        if array.dtype.kind != kind:
            wanted = dt.DataType.Name(dt.DT_FLOAT if kind == "f" else dt.DT_STRING)
            raise ServingError(f"Expected {name} Tensor of {wanted}.", Code.INVALID_ARGUMENT)
        _check_batch(array, batch)
        if array.ndim != 2:
            raise InvalidArgumentError(
                f"Expected Tensor shape: [batch_size num_classes] but got {list(array.shape)}")
    width = (scores if scores is not None else classes).shape[1]  # type: ignore[union-attr]
    results = []
    for row in range(batch):
        labels = [classes[row][i].decode("utf-8", "surrogateescape") if classes is not None else ""
                  for i in range(width)]
        values = [float(scores[row][i]) if scores is not None else 0.0 for i in range(width)]
        results.append(list(zip(labels, values, strict=True)))
    return results


def regressions(outputs: TensorMap, batch: int) -> list[float]:
    """A regress signature's `outputs` ([batch] or [batch, 1], DT_FLOAT) as one float per row
    (`regressor.cc` `PostProcessRegressionResult`).

    Raises:
      InvalidArgumentError: a wrong dtype, batch size or shape.
    """
    array = outputs["outputs"]
    if array.dtype.kind != "f":
        raise InvalidArgumentError(f"Expected output Tensor of {dt.DataType.Name(dt.DT_FLOAT)}.")
    _check_batch(array, batch)
    if array.ndim > 2 or (array.ndim == 2 and array.shape[1] != 1):
        raise InvalidArgumentError(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] "
            f"but got {list(array.shape)}")
    return [float(v) for v in array.reshape(-1).tolist()]

"""gRPC adapter: the official `PredictionService` and `ModelService` servicers over `service.py`.

Only proto <-> numpy conversion and status mapping live here. Predict/Classify/Regress are
counted in `request_count` (and timed with `entrypoint="GRPC"`) as TF Serving does.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from tensorflow_serving.config import model_server_config_pb2

from common.facts import GRPC_SOURCE
from common.limits import INT64_MAX
from serving.api.service import PredictionService
from serving.codec.decode import check_rows
from serving.codec.examples import example_bytes
from serving.core.errors import DeadlineExceededError, InvalidArgumentError, ServingError
from serving.core.servable import DEFAULT_SIGNATURE, Servable
from serving.core.types import Done, dtype_name


def tensor_from_proto(proto: tensor_pb2.TensorProto, alias: str, max_rows: int,
                      max_elements: int) -> npt.NDArray[Any]:
    """A request's `TensorProto` as numpy, failing as TF Serving's `Tensor::FromProto` does.

    TF Serving answers INVALID_ARGUMENT `tensor parsing error: <alias>` (`predict_util.cc`) when
    the proto's shape is invalid (negative or unknown dimensions, unknown rank, more than int64
    elements), its content does not match the shape, or the tensor cannot be allocated. We do
    the same, and check before allocating: a shape with more than `max_elements` elements
    (`--max_request_bytes`: every element takes at least one byte on the wire unless TF's
    repeat-the-last-value rule is used) is refused rather than allocated. Our extension:
    dim 0 over `max_rows` (`--max_instances_per_request`) is refused as on REST.

    Args:
      proto: the request tensor; alias: its input name (for messages).
      max_rows: rows allowed in dim 0; max_elements: elements allowed in the whole tensor.
    Returns:
      The tensor as a numpy array of `proto.dtype`, shaped as `proto.tensor_shape`.
    Raises:
      InvalidArgumentError: any of the above.
    """
    parsing_error = InvalidArgumentError(f"tensor parsing error: {alias}")
    shape = proto.tensor_shape
    dims = [d.size for d in shape.dim]
    elements = 1
    for d in dims:
        elements *= d
    if shape.unknown_rank or any(d < 0 for d in dims) or elements > INT64_MAX:
        raise parsing_error
    if dims:
        check_rows(dims[0], max_rows)
    if elements > max_elements:
        raise parsing_error
    try:
        array: npt.NDArray[Any] = tf.make_ndarray(proto)
        return array
    except (ValueError, TypeError, MemoryError):
        raise parsing_error from None


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict, Classify, Regress and GetModelMetadata."""

    def __init__(self, service: PredictionService) -> None:
        self._service = service

    def _call(self, api: str, request: Any, context: grpc.ServicerContext,
              body: Callable[[Servable], Any], counted: bool = True) -> Any:
        started = time.perf_counter()
        spec = request.model_spec
        try:
            version = spec.version.value if spec.HasField("version") else None
            label = spec.version_label if spec.WhichOneof("version_choice") == "version_label" else None
            servable = self._service.resolve(spec.name, version, label)
            try:
                response = body(servable)
            finally:
                servable.release()  # a run started meanwhile holds its own lease
        except ServingError as err:
            if counted:
                self._service.metrics.record_request(spec.name, err.code.name)
            context.abort(grpc.StatusCode[err.code.name], err.message)
        if counted:
            self._service.metrics.record_request(spec.name, "OK")
            micros = (time.perf_counter() - started) * 1e6
            self._service.metrics.record_request_latency(spec.name, api, "GRPC", micros)
        return response

    def _wait(self, start: Callable[[Done], None], context: grpc.ServicerContext) -> Any:
        """Runs `start(done)` and blocks this gRPC thread until `done` or the deadline."""
        future: futures.Future[Any] = futures.Future()

        def done(result: Any, error: Exception | None) -> None:
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

        start(done)
        timeout = self._service.timeout_ms / 1000
        remaining = context.time_remaining()
        if remaining is not None:
            timeout = min(timeout, remaining)
        try:
            return future.result(timeout=timeout)
        except futures.TimeoutError:
            raise DeadlineExceededError("Deadline Exceeded") from None

    @staticmethod
    def _fill_spec(response: Any, servable: Servable, signature_name: str) -> None:
        response.model_spec.name = servable.id.name
        response.model_spec.version.value = servable.id.version
        response.model_spec.signature_name = signature_name

    def Predict(self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext) -> Any:
        def body(servable: Servable) -> predict_pb2.PredictResponse:
            signature = self._service.predict_signature(servable, request.model_spec.signature_name)
            expected = "{" + ",".join(signature.inputs) + "}"
            inputs = {}
            for index, (alias, proto) in enumerate(sorted(request.inputs.items())):
                spec = signature.inputs.get(alias)
                if spec is None:
                    raise InvalidArgumentError(
                        f"input tensor alias not found in signature: {alias}. "
                        f"Inputs expected to be in the set {expected}.")
                if proto.dtype != spec.dtype:
                    raise InvalidArgumentError(
                        f"Expects arg[{index}] to be {dtype_name(spec.dtype)} but "
                        f"{dtype_name(proto.dtype)} is provided")
                inputs[alias] = tensor_from_proto(proto, alias, self._service.max_instances,
                                                  self._service.max_tensor_elements)
            wanted = list(request.output_filter) or list(signature.outputs)
            for alias in wanted:
                if alias not in signature.outputs:
                    raise InvalidArgumentError(
                        f"output tensor alias not found in signature: {alias} Outputs expected to be "
                        f"in the set {{{','.join(signature.outputs)}}}.")
            outputs = self._wait(
                lambda done: self._service.predict(servable, signature, inputs, done, source=GRPC_SOURCE), context)
            response = predict_pb2.PredictResponse()
            self._fill_spec(response, servable, signature.name)
            for alias in wanted:
                response.outputs[alias].CopyFrom(tf.make_tensor_proto(np.asarray(outputs[alias])))
            return response

        return self._call("Predict", request, context, body)

    def Classify(self, request: classification_pb2.ClassificationRequest, context: grpc.ServicerContext) -> Any:
        def body(servable: Servable) -> classification_pb2.ClassificationResponse:
            name = request.model_spec.signature_name
            examples = example_bytes(request.input, self._service.max_instances)
            results = self._wait(lambda done: self._service.classify(servable, name, examples, done), context)
            response = classification_pb2.ClassificationResponse()
            self._fill_spec(response, servable, name or DEFAULT_SIGNATURE)
            for classes in results:
                entry = response.result.classifications.add()
                for label, score in classes:
                    entry.classes.add(label=label, score=score)
            return response

        return self._call("Classify", request, context, body)

    def Regress(self, request: regression_pb2.RegressionRequest, context: grpc.ServicerContext) -> Any:
        def body(servable: Servable) -> regression_pb2.RegressionResponse:
            name = request.model_spec.signature_name
            examples = example_bytes(request.input, self._service.max_instances)
            results = self._wait(lambda done: self._service.regress(servable, name, examples, done), context)
            response = regression_pb2.RegressionResponse()
            self._fill_spec(response, servable, name or DEFAULT_SIGNATURE)
            for value in results:
                response.result.regressions.add(value=value)
            return response

        return self._call("Regress", request, context, body)

    def GetModelMetadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest,
                         context: grpc.ServicerContext) -> Any:
        def body(servable: Servable) -> get_model_metadata_pb2.GetModelMetadataResponse:
            if not request.metadata_field:
                raise InvalidArgumentError("GetModelMetadataRequest must specify at least one metadata_field")
            for name in request.metadata_field:
                if name != "signature_def":
                    raise InvalidArgumentError(f"Metadata field {name} is not supported")
            spec, sig_map = self._service.model_metadata(servable)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.CopyFrom(spec)
            response.metadata["signature_def"].Pack(sig_map)
            return response

        return self._call("", request, context, body, counted=False)


ReloadConfig = Callable[[model_server_config_pb2.ModelServerConfig], None]
"""Applies a new `ModelServerConfig` or raises `ServingError` (ModelServer.reload_config)."""


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus and HandleReloadConfigRequest (UNIMPLEMENTED when no `reload` is given)."""

    def __init__(self, service: PredictionService, reload: ReloadConfig | None = None) -> None:
        self._service = service
        self._reload = reload

    def HandleReloadConfigRequest(self, request: model_management_pb2.ReloadConfigRequest,
                                  context: grpc.ServicerContext) -> Any:
        """TF Serving's `ModelServiceImpl::HandleReloadConfigRequest`: the outcome is both the
        response's `status` and the call's gRPC status; only `model_config_list` is accepted."""
        if self._reload is None:
            return super().HandleReloadConfigRequest(request, context)
        response = model_management_pb2.ReloadConfigResponse()
        response.status.SetInParent()  # OK is error_code 0 with an empty message
        try:
            if request.config.WhichOneof("config") != "model_config_list":
                raise InvalidArgumentError("ServerModelConfig type not supported by HandleReloadConfigRequest. "
                                           "Only ModelConfigList is currently supported")
            self._reload(request.config)
        except ServingError as err:
            response.status.error_code = int(err.code)
            response.status.error_message = err.message
            context.set_code(grpc.StatusCode[err.code.name])
            context.set_details(err.message)
        return response

    def GetModelStatus(self, request: get_model_status_pb2.GetModelStatusRequest,
                       context: grpc.ServicerContext) -> Any:
        spec = request.model_spec
        version: int | None = spec.version.value if spec.HasField("version") else None
        try:
            return self._service.model_status(spec.name, version)
        except ServingError as err:
            context.abort(grpc.StatusCode[err.code.name], err.message)


def create_grpc_server(service: PredictionService, host: str, port: int, num_threads: int,
                       max_message_bytes: int, reload: ReloadConfig | None = None) -> tuple[grpc.Server, int]:
    """A ready (not yet started) gRPC server and the port it bound.

    Raises:
      OSError: the port cannot be bound (`main` prints one line and exits 1).
    """
    options = [("grpc.max_receive_message_length", max_message_bytes),
               ("grpc.max_send_message_length", -1)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=num_threads, thread_name_prefix="grpc"),
                         options=options)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(service), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(service, reload), server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:  # grpcio >= 1.60 raises where older versions returned 0
        bound = 0
    if bound == 0:
        raise OSError(f"Could not bind gRPC port {host}:{port} (address in use or not available)")
    return server, bound

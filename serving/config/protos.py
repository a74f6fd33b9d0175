"""TF Serving config protos that the `tensorflow-serving-api` wheel does not ship.

`MonitoringConfig` (`config/monitoring_config.proto`) and `BatchingParameters`
(`servables/tensorflow/session_bundle_config.proto`, fields 1-7) are declared here with the same
package, names and field numbers, so the same text-proto files parse here and in TF Serving.
`ModelServerConfig` comes from the wheel (`tensorflow_serving.config`).
"""
from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

from common.facts import METRICS_PATH

_F = descriptor_pb2.FieldDescriptorProto
_Field = tuple[str, int, int, str, int]  # name, number, type, type_name, label


def _message(name: str, fields: list[_Field]) -> descriptor_pb2.DescriptorProto:
    msg = descriptor_pb2.DescriptorProto(name=name)
    for field_name, number, kind, type_name, label in fields:
        field = msg.field.add(name=field_name, number=number, type=kind, label=label)
        if type_name:
            field.type_name = type_name
    return msg


def _build() -> dict[str, Any]:
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    opt, rep = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
    i64 = ".google.protobuf.Int64Value"
    files = {
        "tensorflow_serving/config/monitoring_config.proto": [
            _message("PrometheusConfig", [
                ("enable", 1, _F.TYPE_BOOL, "", opt), ("path", 2, _F.TYPE_STRING, "", opt)]),
            _message("MonitoringConfig", [
                ("prometheus_config", 1, _F.TYPE_MESSAGE, ".tensorflow.serving.PrometheusConfig", opt)]),
        ],
        "tensorflow_serving/servables/tensorflow/session_bundle_config.proto": [
            _message("BatchingParameters", [
                ("max_batch_size", 1, _F.TYPE_MESSAGE, i64, opt),
                ("batch_timeout_micros", 2, _F.TYPE_MESSAGE, i64, opt),
                ("max_enqueued_batches", 3, _F.TYPE_MESSAGE, i64, opt),
                ("num_batch_threads", 4, _F.TYPE_MESSAGE, i64, opt),
                ("thread_pool_name", 5, _F.TYPE_MESSAGE, ".google.protobuf.StringValue", opt),
                ("allowed_batch_sizes", 6, _F.TYPE_INT64, "", rep),
                ("pad_variable_length_inputs", 7, _F.TYPE_BOOL, "", opt),
            ]),
        ],
    }
    for file_name, messages in files.items():
        proto = descriptor_pb2.FileDescriptorProto(
            name=file_name, package="tensorflow.serving", syntax="proto3",
            dependency=["google/protobuf/wrappers.proto"])
        proto.message_type.extend(messages)
        pool.Add(proto)
    factory = message_factory.MessageFactory(pool)
    return {
        name: factory.GetPrototype(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))
        for name in ("MonitoringConfig", "BatchingParameters")
    }


_CLASSES = _build()
MonitoringConfig = _CLASSES["MonitoringConfig"]
BatchingParameters = _CLASSES["BatchingParameters"]


def prometheus_path(config: Any) -> str | None:
    """The metrics path a `MonitoringConfig` enables (TF Serving's default if empty), else None.

    Here rather than in `serving.config.server_config` so `monitoring.serve` can read it without importing TensorFlow.
    """
    prometheus = config.prometheus_config
    if not prometheus.enable:
        return None
    return prometheus.path or METRICS_PATH

"""One loaded SavedModel version, run through a TF1 session as TF Serving does (`runtime="TF1"`).

Signatures are resolved once at load time into `Signature` objects holding a pre-built
`Session.make_callable` (feeds/fetches fixed), so a request costs one C++ call that releases the
GIL. The servable knows nothing about HTTP or gRPC.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple

import tensorflow as tf
from google.protobuf import message as proto_message
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2

from serving.errors import Code, InvalidArgumentError, ServingError
from serving.types import ServableId, TensorMap, TensorSpec

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
DEFAULT_SIGNATURE = "serving_default"
INIT_OP_SIGNATURE = "__saved_model_init_op"


def _spec(info: meta_graph_pb2.TensorInfo) -> TensorSpec:
    shape = None
    if not info.tensor_shape.unknown_rank:
        shape = tuple(int(d.size) for d in info.tensor_shape.dim)
    return TensorSpec(tensor_name=info.name, dtype=int(info.dtype), shape=shape)


def status_from_exception(err: BaseException) -> ServingError:
    """Maps a TF/loader exception to a status (TF errors keep their code and message)."""
    if isinstance(err, ServingError):
        return err
    if isinstance(err, tf.errors.OpError):
        return ServingError(err.message, Code(err.error_code))
    if isinstance(err, (OSError, IOError)):
        return ServingError(str(err), Code.NOT_FOUND)
    if isinstance(err, proto_message.DecodeError):
        return ServingError(f"Could not parse SavedModel: {err}", Code.DATA_LOSS)
    if isinstance(err, (ValueError, TypeError)):
        return InvalidArgumentError(str(err))
    return ServingError(f"{type(err).__name__}: {err}", Code.INTERNAL)


class Signature:
    """A SignatureDef bound to its session: aliases, specs and a pre-resolved callable."""

    def __init__(self, name: str, sig: meta_graph_pb2.SignatureDef, session: tf.compat.v1.Session) -> None:
        self.name = name
        self.method_name = sig.method_name
        self.inputs: Dict[str, TensorSpec] = {k: _spec(v) for k, v in sorted(sig.inputs.items())}
        self.outputs: Dict[str, TensorSpec] = {k: _spec(v) for k, v in sorted(sig.outputs.items())}
        self._session = session
        self._callables: Dict[Tuple[Tuple[str, ...], Tuple[str, ...]], object] = {}
        self._lock = threading.Lock()
        self._default_key = (tuple(self.inputs), tuple(self.outputs))

    def _callable(self, key: Tuple[Tuple[str, ...], Tuple[str, ...]]) -> object:
        fn = self._callables.get(key)
        if fn is None:
            with self._lock:
                graph = self._session.graph
                feeds = [graph.get_tensor_by_name(self.inputs[a].tensor_name) for a in key[0]]
                fetches = [graph.get_tensor_by_name(self.outputs[a].tensor_name) for a in key[1]]
                fn = self._session.make_callable(fetches, feeds, accept_options=True)
                self._callables[key] = fn
        return fn

    def run(self, inputs: TensorMap, timeout_ms: int = 0,
            output_filter: Optional[Iterable[str]] = None) -> TensorMap:
        """Runs the signature; `inputs` are keyed by alias, outputs come back keyed by alias."""
        in_keys = tuple(sorted(inputs))
        out_keys = tuple(sorted(output_filter)) if output_filter else self._default_key[1]
        key = (in_keys, out_keys)
        options = config_pb2.RunOptions(timeout_in_ms=timeout_ms) if timeout_ms > 0 else None
        try:
            fn = self._callable(key)
            values = fn(*[inputs[k] for k in in_keys], options=options)  # type: ignore[operator]
        except Exception as err:  # TF raises many types; each becomes a status.
            raise status_from_exception(err) from None
        return dict(zip(out_keys, values))


class Servable:
    """A loaded version: its session, signature map and the raw SignatureDefs for metadata."""

    def __init__(self, servable_id: ServableId, path: Path, session: tf.compat.v1.Session,
                 meta_graph: meta_graph_pb2.MetaGraphDef) -> None:
        self.id = servable_id
        self.path = path
        self.signature_defs = meta_graph.signature_def
        self._session = session
        self.signatures: Dict[str, Signature] = {
            name: Signature(name, sig, session)
            for name, sig in meta_graph.signature_def.items()
            if name != INIT_OP_SIGNATURE
        }

    @classmethod
    def load(cls, servable_id: ServableId, path: Path, tags: Tuple[str, ...] = ("serve",),
             session_config: Optional[config_pb2.ConfigProto] = None) -> "Servable":
        """Loads `path` into a fresh graph and session; raises `ServingError` on any failure."""
        graph = tf.Graph()
        session = tf.compat.v1.Session(graph=graph, config=session_config)
        try:
            with graph.as_default():
                meta_graph = tf.compat.v1.saved_model.loader.load(session, list(tags), str(path))
        except Exception as err:  # corrupt, partial or foreign files all end here
            session.close()
            raise status_from_exception(err) from None
        return cls(servable_id, path, session, meta_graph)

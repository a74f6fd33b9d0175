"""One loaded SavedModel version, run through a TF1 session as TF Serving does (`runtime="TF1"`).

Signatures are bound once into `Signature` objects holding their feeds and fetches as the TF C
API takes them, so a request costs one C++ call that releases the GIL. The servable knows
nothing about HTTP or gRPC.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf
from google.protobuf import message as proto_message
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
from tensorflow.python.client import pywrap_tf_session as tf_session
from tensorflow.python.saved_model import loader_impl

from serving.core.errors import Code, InvalidArgumentError, ServingError
from serving.core.types import ServableId, TensorMap, TensorSpec

PREDICT_METHOD = tf.saved_model.PREDICT_METHOD_NAME
CLASSIFY_METHOD = tf.saved_model.CLASSIFY_METHOD_NAME
REGRESS_METHOD = tf.saved_model.REGRESS_METHOD_NAME
DEFAULT_SIGNATURE = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
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


class _Feed:
    """One input placeholder as the C API takes it.

    Only the dtype is converted here; shapes are not checked. TF Serving feeds request tensors to
    `Session::Run` as they come (`predict_util.cc` checks aliases and dtypes, never shapes), so a
    `[1, 1]` value for a `[None]` input or a scalar runs if the graph accepts it, and a shape the
    graph cannot take fails with the runtime's own message (as `status_from_exception` maps it).
    Python's `Session.run` would reject both ("Cannot feed value of shape ..."); TF Serving does not.
    """

    __slots__ = ("output", "np_dtype", "name", "feedable")

    def __init__(self, tensor: tf.Tensor) -> None:
        self.output = tensor._as_tf_output()  # pylint: disable=protected-access
        self.np_dtype = np.dtype(tensor.dtype.as_numpy_dtype)
        self.name = tensor.name
        self.feedable = tensor.graph.is_feedable(tensor)

    def value(self, array: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """`array` in the placeholder's dtype; raises InvalidArgumentError for unfeedable tensors."""
        if array.dtype != self.np_dtype:
            array = np.asarray(array, dtype=self.np_dtype)
        if not self.feedable:
            raise InvalidArgumentError(f"Tensor {self.name} may not be fed.")
        return array


class Signature:
    """A SignatureDef bound to its session: aliases, specs and pre-resolved feeds and fetches.

    `run` calls the session's C entry point directly: `Session.run` and `make_callable` with feeds
    spend GIL-holding Python on every call re-validating the graph, which capped the server's
    throughput (docs/performance.md, "Model server"). Errors are then the runtime's own messages, as TF Serving
    returns them.
    """

    def __init__(self, name: str, sig: meta_graph_pb2.SignatureDef, session: tf.compat.v1.Session) -> None:
        self.name = name
        self.method_name = sig.method_name
        self.inputs: dict[str, TensorSpec] = {k: _spec(v) for k, v in sorted(sig.inputs.items())}
        self.outputs: dict[str, TensorSpec] = {k: _spec(v) for k, v in sorted(sig.outputs.items())}
        self._session = session
        self._feeds: dict[str, _Feed] = {}
        self._fetches: dict[str, object] = {}
        self._lock = threading.Lock()
        self._output_keys = tuple(self.outputs)

    def unbind(self) -> None:
        """Drops the session and the graph tensors (the servable is closing its session)."""
        with self._lock:
            self._feeds.clear()
            self._fetches.clear()
            self._session = None

    def _resolve(self, in_keys: Iterable[str], out_keys: Iterable[str]) -> None:
        """Looks tensors up once (lazily, as a signature may name tensors a graph lacks)."""
        with self._lock:
            graph = self._session.graph
            for alias in in_keys:
                if alias not in self._feeds:
                    self._feeds[alias] = _Feed(graph.get_tensor_by_name(self.inputs[alias].tensor_name))
            for alias in out_keys:
                if alias not in self._fetches:
                    tensor = graph.get_tensor_by_name(self.outputs[alias].tensor_name)
                    self._fetches[alias] = tensor._as_tf_output()  # pylint: disable=protected-access
            self._session._extend_graph()  # pylint: disable=protected-access

    def run(self, inputs: TensorMap, timeout_ms: int = 0,
            output_filter: Iterable[str] | None = None) -> TensorMap:
        """Runs the signature; `inputs` are keyed by alias, outputs come back keyed by alias."""
        out_keys = tuple(sorted(output_filter)) if output_filter else self._output_keys
        try:
            if not (self._feeds.keys() >= inputs.keys() and self._fetches.keys() >= set(out_keys)):
                self._resolve(inputs, out_keys)
            feeds = {}
            for alias, array in inputs.items():
                feed = self._feeds[alias]
                # the usual input (a placeholder, already in its dtype) goes as it is, without a
                # Python call per input; `_Feed.value` converts the others or refuses them
                feeds[feed.output] = array if feed.feedable and array.dtype == feed.np_dtype else feed.value(array)
            fetches = [self._fetches[k] for k in out_keys]
            values = self._session._call_tf_sessionrun(  # pylint: disable=protected-access
                _run_options(timeout_ms), feeds, fetches, [], None)
        except Exception as err:  # TF raises many types; each becomes a status.
            raise status_from_exception(err) from None
        return dict(zip(out_keys, values, strict=True))


_RUN_OPTIONS: dict[int, object] = {}


def _run_options(timeout_ms: int) -> object:
    """Serialized `RunOptions` for a deadline (0: none), built once per distinct value.

    `inter_op_thread_pool=-1` runs the graph on the calling thread (a batch or session-run
    thread that only waits meanwhile) instead of handing every op to TF's inter-op pool: for a
    graph this small the two thread hand-offs per run cost more than the ops, and the pool's
    spinning threads took CPU from request handling. The deadline still cancels a blocked run.
    The buffers live as long as the process; callers use a handful of distinct deadlines.
    """
    options = _RUN_OPTIONS.get(timeout_ms)
    if options is None:
        proto = config_pb2.RunOptions(timeout_in_ms=max(timeout_ms, 0), inter_op_thread_pool=-1)
        options = _RUN_OPTIONS.setdefault(
            timeout_ms, tf_session.TF_NewBufferFromString(proto.SerializeToString()))
    return options


class Servable:
    """A loaded version: its session, signature map and the raw SignatureDefs for metadata.

    Leases keep the session open while requests use it: the manager hands out a servable only
    with a lease (`acquire`), each holder `release`s it once, and a session run holds its own
    (`hold`). Once the manager unloads the version (`retire`), the session is closed as soon as
    the last lease goes, so an unloaded version's memory is released without failing a request
    that had already resolved it (TF Serving's manager likewise unloads only once no handle
    refers to the servable: `basic_manager.cc`, `ServableHandle`).
    """

    def __init__(self, servable_id: ServableId, path: Path, session: tf.compat.v1.Session,
                 meta_graph: meta_graph_pb2.MetaGraphDef,
                 load_stage_micros: dict[str, float] | None = None) -> None:
        self.id = servable_id
        self.path = path
        self.load_stage_micros = load_stage_micros or {}
        """Wall time of TF's loader stages (`restore_graph`, `init_graph`), for the load metrics."""
        self.signature_defs = meta_graph.signature_def
        self._session = session
        self.signatures: dict[str, Signature] = {
            name: Signature(name, sig, session)
            for name, sig in meta_graph.signature_def.items()
            if name != INIT_OP_SIGNATURE
        }
        # One entry per lease: `list.append` and `list.pop` are atomic under the GIL, so taking
        # and returning a lease costs no lock on the request path (four per request).
        self._leases: list[None] = []
        self._retired = False
        self._close_lock = threading.Lock()
        self.closed = False
        """True once the session is closed (retired and no lease left)."""

    def acquire(self) -> bool:
        """Takes a lease for a request; False once the version is retired (look it up again)."""
        self._leases.append(None)
        if self._retired:  # retired meanwhile: it may have seen no lease, so never use the session
            self.release()
            return False
        return True

    def hold(self) -> None:
        """Takes another lease for work started under one the caller already holds."""
        self._leases.append(None)

    def release(self) -> None:
        """Returns one lease; closes the session if it was the last one of a retired version."""
        self._leases.pop()
        if self._retired and not self._leases:
            self._close()

    def retire(self) -> None:
        """Called once the manager no longer serves this version: closes the session now or
        when the last lease is released.

        Lock-free leases stay safe: a successful `acquire` added its entry before it read
        `_retired` as False, so before `retire` set it and looked for entries; whoever then
        sees no entry left (here or in `release`) closes, at most once (`_close`)."""
        self._retired = True
        if not self._leases:
            self._close()

    @property
    def graph(self) -> tf.Graph | None:
        """The version's loaded graph; None once the session is closed (`closed`)."""
        return None if self._session is None else self._session.graph

    def _close(self) -> None:
        with self._close_lock:  # `release` and `retire` may both see the last lease go
            if self.closed:
                return
            self.closed = True
        for signature in self.signatures.values():
            signature.unbind()
        self._session.close()
        self._session = None  # the graph goes with the last reference

    @classmethod
    def load(cls, servable_id: ServableId, path: Path, tags: tuple[str, ...] = ("serve",),
             session_config: config_pb2.ConfigProto | None = None) -> Servable:
        """Loads `path` into a fresh graph and session; raises `ServingError` on any failure."""
        graph = tf.Graph()
        session = tf.compat.v1.Session(graph=graph, config=session_config)
        try:  # tf.compat.v1.saved_model.loader.load, split into TF's `loader.cc` timing stages
            started = time.perf_counter()
            loader = loader_impl.SavedModelLoader(str(path))
            with graph.as_default():
                saver, _ = loader.load_graph(graph, list(tags))
                loader.restore_variables(session, saver)
                restored = time.perf_counter()
                loader.run_init_ops(session, list(tags))
            meta_graph = loader.get_meta_graph_def_from_tags(list(tags))
        except Exception as err:  # corrupt, partial or foreign files all end here
            session.close()
            raise status_from_exception(err) from None
        stages = {"restore_graph": (restored - started) * 1e6, "init_graph": (time.perf_counter() - restored) * 1e6}
        return cls(servable_id, path, session, meta_graph, stages)

"""ServingCheck: the pipeline's serving check before push (TFX InfraValidator's job, without Docker or Kubernetes).

TFX's stock InfraValidator can only start TF Serving in Docker or Kubernetes. This component does the
same job with our own model server (serving/, wire-compatible with TF Serving), in-process:

1. copies the candidate SavedModel into its `InfraBlessing` artifact (`<uri>/stamped_model`, where
   InfraValidator's `RequestSpec(make_warmup=True)` puts it) and writes TF Serving's warmup file,
   `assets.extra/tf_serving_warmup_requests`, there: one request per served signature
   (serving/api/warmup.py), made from one synthetic customer whose every feature is the training
   split's median (numeric) or mode (categorical) from StatisticsGen, so no real customer is inside
   the model;
2. loads that copy in `serving.main.ModelServer` (gRPC on an ephemeral loopback port, REST off),
   which replays the warmup file before the version can become AVAILABLE, as TF Serving does; the copy
   is complete before the server starts, so it is loaded on the first poll, without the server's
   wait for a version folder to settle (`--file_system_settle_seconds`, 5 s by default);
3. sends every warmup request again through gRPC with the official `tensorflow-serving-api` stubs;
4. marks the artifact as InfraValidator does: custom property `blessed` 1 or 0, an `INFRA_BLESSED`
   or `INFRA_NOT_BLESSED` file, and `has_model` 1 when the stamped model is inside.

TFX's Pusher (and pipeline/pusher.py's AtomicPusher, its subclass) given `infra_blessing` and no
`model` pushes only a blessed check's stamped model (`Executor.CheckBlessing`, `GetModelPath`), so
every pushed version carries its warmup file. On Kubeflow/Vertex the component runs in the pipeline
image, which therefore ships the server package (pipeline/Dockerfile).
"""

import gc
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import ExampleStatistics, InfraBlessing, Model

from pipeline import config as cfg

LOG = logging.getLogger(__name__)

BLESSED_KEY = "blessed"
"""InfraValidator's custom property (`tfx.components.util.model_utils.is_infra_validated` reads it)."""
HAS_MODEL_KEY = "has_model"
"""InfraValidator's flag that the blessing holds the stamped model (the Pusher's `GetModelPath` reads it)."""
ERROR_KEY = "serving_check_error"
"""Our custom property: why the check failed (absent when it passed)."""
BLESSED_FILE, NOT_BLESSED_FILE = "INFRA_BLESSED", "INFRA_NOT_BLESSED"
CHECK_VERSION = 1
"""Version folder the candidate is served from during the check."""

_INT, _FLOAT = 0, 1  # tensorflow_metadata FeatureNameStatistics.Type


class ServingCheckError(Exception):
    """The candidate cannot be served: the message says which step failed and why."""


SYNTHETIC_ID = 0
"""What an id column holds in the synthetic row (never a median or mode of real customers' ids)."""


def synthetic_row(statistics: Any, id_keys: Sequence[str] = ()) -> dict[str, Any]:
    """One made-up customer from a split's `DatasetFeatureStatistics`: medians and modes, no real row.

    Numeric features take the split's median (`num_stats.median`, rounded for INT features);
    categorical ones (`string_stats`) their most frequent value (`top_values[0]`); id columns
    (`id_keys`) hold `SYNTHETIC_ID` (as text for string ids), so no real customer's id appears.

    Raises:
      ServingCheckError: a feature has neither statistic (e.g. it was empty in every row).
    """
    row: dict[str, Any] = {}
    for feature in statistics.features:
        name = feature.path.step[0] if feature.path.step else feature.name
        kind = feature.WhichOneof("stats")
        if name in id_keys:
            row[name] = SYNTHETIC_ID if feature.type in (_INT, _FLOAT) else str(SYNTHETIC_ID)
        elif kind == "num_stats":
            median = feature.num_stats.median
            row[name] = int(round(median)) if feature.type == _INT else float(median)
        elif kind == "string_stats" and feature.string_stats.top_values:
            mode = feature.string_stats.top_values[0].value
            row[name] = int(mode) if feature.type == _INT else mode
        else:
            raise ServingCheckError(f"feature {name}: no median or mode in the statistics to build a warmup row from")
    return row


def stamp(model_dir: str, stamped_dir: str, statistics: Any, model_name: str, id_keys: Sequence[str] = ()) -> int:
    """Copies the SavedModel to `stamped_dir` and writes its warmup file; returns the record count."""
    from tfx.utils import io_utils

    from serving.api import warmup

    io_utils.copy_dir(model_dir, stamped_dir)
    row = synthetic_row(statistics, id_keys)
    try:
        logs = warmup.build_warmup_records(warmup.signature_defs(model_dir), row, model_name=model_name)
    except ValueError as err:
        raise ServingCheckError(str(err)) from None
    local = Path(tempfile.mkdtemp(prefix="warmup-"))
    written = warmup.write_warmup_file(local, logs)  # written locally, then copied: stamped_dir may be gs://
    io_utils.copy_file(str(written), os.path.join(stamped_dir, warmup.ASSETS_EXTRA_DIR, warmup.WARMUP_FILE), True)
    return len(logs)


def check_serving(stamped_dir: str, model_name: str) -> int:
    """Serves `stamped_dir` with our model server and replays its warmup requests over gRPC.

    Returns:
      The number of requests answered over gRPC.

    Raises:
      ServingCheckError: the version did not become AVAILABLE (load or warmup replay failed), or a
        request failed over gRPC; the message carries the server's status.
    """
    import grpc
    from prometheus_client import CollectorRegistry
    from tensorflow_serving.apis import prediction_service_pb2_grpc
    from tfx.utils import io_utils

    from serving.api import warmup
    from serving.config.server_config import ServerConfig
    from serving.constants import DEFAULT_MAX_INSTANCES, DEFAULT_MAX_REQUEST_BYTES
    from serving.core.manager import ModelConfig
    from serving.core.servable import DEFAULT_SIGNATURE
    from serving.main import ModelServer, StartupError

    with tempfile.TemporaryDirectory(prefix="serving-check-") as tmp:
        base = Path(tmp) / model_name
        version_dir = base / str(CHECK_VERSION)
        io_utils.copy_dir(stamped_dir, str(version_dir))  # a local TF Serving base path, whatever the URI
        config = ServerConfig(
            host="127.0.0.1", grpc_port=0, rest_port=None, models=(ModelConfig(model_name, base),),
            poll_seconds=0, rest_timeout_ms=30_000, num_threads=2, batching=None, metrics_path=None,
            enable_cors=False, max_request_bytes=DEFAULT_MAX_REQUEST_BYTES, max_instances=DEFAULT_MAX_INSTANCES,
            max_load_retries=0, load_retry_interval_seconds=0.0, intra_op_threads=0, inter_op_threads=0,
            enable_model_warmup=True,
            settle_seconds=0.0,  # the folder is complete before the server starts: load it on the first poll
        )
        thresholds = gc.get_threshold()
        server = ModelServer(config, CollectorRegistry())
        try:
            try:
                server.start()
            except StartupError as err:
                raise ServingCheckError(f"the model server could not load the candidate: {err}") from None
            channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            answered = 0
            try:
                for log in warmup.read_warmup_records(warmup.warmup_path(version_dir)):
                    kind = log.WhichOneof("log_type")
                    request = getattr(log, kind).request
                    call = {"predict_log": stub.Predict, "classify_log": stub.Classify,
                            "regress_log": stub.Regress, "multi_inference_log": stub.MultiInference}[kind]
                    try:
                        call(request, timeout=60)
                    except grpc.RpcError as err:
                        raise ServingCheckError(
                            f"{kind} request to signature {request.model_spec.signature_name or DEFAULT_SIGNATURE} "
                            f"failed over gRPC: {err.code().name}: {err.details()}") from None
                    answered += 1
            finally:
                channel.close()
        finally:
            server.stop()
            gc.unfreeze()  # ModelServer.start tunes the collector for serving; not for the rest of this run
            gc.set_threshold(*thresholds)
    return answered


@component
def ServingCheck(  # noqa: N802 (TFX component name)
    model: InputArtifact[Model],
    statistics: InputArtifact[ExampleStatistics],
    blessing: OutputArtifact[InfraBlessing],
    id_keys: Parameter[str] = "[]",
) -> None:
    """Stamps the candidate with warmup requests, serves it with our model server, blesses it if it answers.

    `id_keys`: a JSON list of the id columns (`PipelineConfig.id_keys`), left out of the medians and modes.
    """
    from tfx.components.statistics_gen import stats_artifact_utils
    from tfx.utils import io_utils, path_utils

    from common.facts import MODEL_NAME

    stamped = path_utils.stamped_model_path(blessing.uri)
    try:
        stats = stats_artifact_utils.load_statistics(statistics, cfg.TRAIN_SPLIT).proto().datasets[0]
        records = stamp(path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model)),
                        stamped, stats, MODEL_NAME, json.loads(id_keys))
        answered = check_serving(stamped, MODEL_NAME)
    except ServingCheckError as err:
        LOG.error("Serving check failed: %s", err)
        io_utils.write_string_file(os.path.join(blessing.uri, NOT_BLESSED_FILE), "")
        blessing.set_int_custom_property(BLESSED_KEY, 0)
        blessing.set_string_custom_property(ERROR_KEY, str(err))
        return
    LOG.info("Serving check passed: %d warmup records replayed at load, %d answered over gRPC", records, answered)
    io_utils.write_string_file(os.path.join(blessing.uri, BLESSED_FILE), "")
    blessing.set_int_custom_property(BLESSED_KEY, 1)
    blessing.set_int_custom_property(HAS_MODEL_KEY, 1)

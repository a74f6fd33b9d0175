"""Command-line flags (tensorflow_model_server's names) and config files -> `ServerConfig`.

`--model_config_file` is a `ModelServerConfig` text proto (official proto from
`tensorflow_serving.config`); `--monitoring_config_file` a `MonitoringConfig`;
`--batching_parameters_file` a `BatchingParameters`. Every problem raises `ConfigError` with a
sentence naming the flag or file, which `main` prints before exiting non-zero.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from google.protobuf import text_format
from google.protobuf.message import Message
from tensorflow_serving.config import model_server_config_pb2

from common.facts import DEFAULT_HOST, DEFAULT_SERVING_DIR, GRPC_PORT, MODEL_NAME, REST_PORT
from serving.config.protos import BatchingParameters, MonitoringConfig, prometheus_path
from serving.constants import DEFAULT_MAX_INSTANCES, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_SETTLE_SECONDS
from serving.core.batching import BatchingOptions
from serving.core.manager import ModelConfig
from serving.core.version_policy import PolicyKind, VersionPolicy
from serving.http.limits import JSON_DEPTH_FLAG, JSON_NUMBER_DIGITS_FLAG, MAX_JSON_DEPTH_CEILING, HttpLimits
from serving.observability.metrics import DEFAULT_MAX_UNKNOWN_MODEL_NAMES

_Message = TypeVar("_Message", bound=Message)


class ConfigError(Exception):
    """A bad flag or config file; the message is shown to the user as-is."""


@dataclass(frozen=True)
class ServerConfig:
    host: str
    grpc_port: int
    rest_port: int | None
    """None disables REST (flag value 0); 0 here means an ephemeral port."""
    models: tuple[ModelConfig, ...]
    poll_seconds: float
    rest_timeout_ms: int
    num_threads: int
    batching: BatchingOptions | None
    metrics_path: str | None
    enable_cors: bool
    max_request_bytes: int
    max_instances: int
    max_load_retries: int
    load_retry_interval_seconds: float
    intra_op_threads: int
    inter_op_threads: int
    request_log_file: Path | None = None
    """Our extension (no TF Serving flag): predicted rows appended as JSON lines; None = off."""
    observed_output: str | None = None
    """Our extension (`--observed_output`): the predict output (a probability) that the model metrics'
    histogram and the request log record; None records none. The launcher names it (monitoring/serve.py
    passes the churn model's), so the server itself knows no model's outputs."""
    prediction_store_url: str | None = None
    """Our extension (`--prediction_store_url`): a SQLAlchemy URL; each predicted row of a signature that
    carries ids is appended to the prediction store there (serving/observability/prediction_log.py); None = off."""
    prediction_id_output: str | None = None
    """Our extension (`--prediction_id_output`): the output holding the customer id; None: the one output that
    echoes an input of the same name (a `serving_with_ids` signature's id column)."""
    settle_seconds: float = DEFAULT_SETTLE_SECONDS
    """Our extension (`--file_system_settle_seconds`): a version folder is loaded once its files
    have stayed unchanged this long (serving/core/source.py)."""
    # ---- warmup and config reload (issue 14) ----
    enable_model_warmup: bool = True
    """`--enable_model_warmup`: replay `assets.extra/tf_serving_warmup_requests` before AVAILABLE."""
    model_config_file: Path | None = None
    """`--model_config_file`, kept so it can be re-read; None with `--model_base_path`."""
    model_config_poll_seconds: float = 0.0
    """`--model_config_file_poll_wait_seconds`: re-read the config file this often; <= 0 reads it once."""
    http_limits: HttpLimits = HttpLimits()
    """Our extension (TF Serving's libevent server has no such flags): REST framing and connection limits."""
    max_unknown_model_names: int = DEFAULT_MAX_UNKNOWN_MODEL_NAMES
    """Our extension: distinct `model_name` label values kept for models the server does not serve."""


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(f"{message}\n{self.format_usage().strip()}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m serving", description="TF-Serving-compatible model server.")
    flag = p.add_argument
    flag("--port", type=int, default=GRPC_PORT, help="gRPC port")
    flag("--rest_api_port", type=int, default=REST_PORT, help="REST port (0 disables REST)")
    flag("--host", default=DEFAULT_HOST, help="address to bind both ports to")
    flag("--model_name", default=MODEL_NAME)
    flag("--model_base_path", default=None,
         help=f"default: {DEFAULT_SERVING_DIR / MODEL_NAME} (ignored with --model_config_file)")
    flag("--model_config_file", default=None, help="ModelServerConfig text proto")
    flag("--monitoring_config_file", default=None, help="MonitoringConfig text proto")
    flag("--file_system_poll_wait_seconds", type=float, default=1.0)
    flag("--enable_batching", type=_bool, nargs="?", const=True, default=False)
    flag("--batching_parameters_file", default=None, help="BatchingParameters text proto")
    flag("--rest_api_timeout_in_ms", type=int, default=30000)
    flag("--rest_api_num_threads", type=int, default=4 * (os.cpu_count() or 1))
    flag("--rest_api_enable_cors_support", type=_bool, nargs="?", const=True, default=False)
    flag("--max_num_load_retries", type=int, default=5)
    flag("--load_retry_interval_micros", type=int, default=60_000_000)
    flag("--tensorflow_intra_op_parallelism", type=int, default=0)
    flag("--tensorflow_inter_op_parallelism", type=int, default=0)
    flag("--max_request_bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES)
    flag("--max_instances_per_request", type=int, default=DEFAULT_MAX_INSTANCES)
    flag("--request_log_file", default=None,
         help="not a TF Serving flag: append each predicted row (inputs and churn probability) to this "
              "file as a JSON line, for `python -m monitoring.drift`; off by default; needs --observed_output")
    flag("--observed_output", default=None,
         help="not a TF Serving flag: the predict output (a probability in [0, 1], e.g. churn_probability) "
              "whose values the churn_model_prediction_probability histogram and the request log record; "
              "unset: none (`make serve` sets it)")
    flag("--prediction_store_url", default=None,
         help="not a TF Serving flag: a SQLAlchemy URL (sqlite:///path, postgresql+psycopg2://user@host/db); "
              "each predicted row of a signature carrying ids (e.g. serving_with_ids) is appended to the "
              "prediction store there by a background writer (drops are counted, requests never wait); "
              "off by default; needs --observed_output")
    flag("--prediction_id_output", default=None,
         help="not a TF Serving flag: the output holding the customer id for --prediction_store_url; "
              "unset: the one output that returns an input of the same name")
    _lifecycle_flags(p)
    _add_reload_and_warmup_flags(p)
    _add_http_limit_flags(p)
    return p


def _lifecycle_flags(p: argparse.ArgumentParser) -> None:
    """Model lifecycle flags that are our extensions (TF Serving has no equivalent)."""
    p.add_argument(
        "--file_system_settle_seconds", type=float, default=DEFAULT_SETTLE_SECONDS,
        help="not a TF Serving flag: load a version folder only once its files have stayed unchanged "
             "this long (or were all written at least this long ago), so a folder still being copied is "
             f"not loaded half-written; default {DEFAULT_SETTLE_SECONDS:g}")


def _add_reload_and_warmup_flags(p: argparse.ArgumentParser) -> None:
    """TF Serving's warmup and config-reload flags (same names, defaults and meaning)."""
    p.add_argument("--enable_model_warmup", type=_bool, nargs="?", const=True, default=True,
                   help="replay each version's assets.extra/tf_serving_warmup_requests before it becomes "
                        "AVAILABLE (default true, as TF Serving)")
    p.add_argument("--model_config_file_poll_wait_seconds", type=float, default=0,
                   help="re-read --model_config_file this often and apply changed models, version policies "
                        "and labels without a restart; 0 (default) reads it once")



_LIMIT_FLAGS = (
    # (flag, HttpLimits field, type, help)
    ("--rest_api_max_header_bytes", "max_header_bytes", int,
     "request line plus headers, bytes; a larger head gets 431 and the connection is closed"),
    ("--rest_api_max_decompressed_bytes", "max_decompressed_bytes", int,
     "a gzip request body may inflate to at most this many bytes (413 past it)"),
    ("--rest_api_max_connections", "max_connections", int,
     "open REST connections; a connection past the cap gets 503 and is closed, open ones keep working"),
    ("--rest_api_header_timeout_seconds", "header_timeout_seconds", float,
     "time allowed to send a request's line and headers (408 and close past it)"),
    ("--rest_api_idle_timeout_seconds", "idle_timeout_seconds", float,
     "an idle keep-alive REST connection is closed after this long"),
    ("--rest_api_offload_body_bytes", "offload_body_bytes", int,
     "REST bodies larger than this are decoded on a worker thread instead of the event loop"),
    ("--drain_timeout_seconds", "drain_seconds", float,
     "on SIGTERM/SIGINT, how long requests already received may take to be answered before exit"),
    (JSON_DEPTH_FLAG, "max_json_depth", int,
     f"nesting levels (arrays, objects) a REST JSON body may have, at most {MAX_JSON_DEPTH_CEILING}; "
     "deeper gets 400"),
    (JSON_NUMBER_DIGITS_FLAG, "max_json_number_digits", int,
     "digits one number in a REST JSON body may have (strings do not count), at most Python's "
     "sys.get_int_max_str_digits(); more gets 400"),
)


def _add_http_limit_flags(p: argparse.ArgumentParser) -> None:
    """Our extensions (tensorflow_model_server has no such flags); defaults from `HttpLimits`."""
    group = p.add_argument_group("REST limits (not TF Serving flags)")
    defaults = HttpLimits()
    for flag, field, kind, text in _LIMIT_FLAGS:
        group.add_argument(flag, type=kind, default=getattr(defaults, field), help=f"{text} (default: %(default)s)")
    group.add_argument("--max_unknown_model_names", type=int, default=DEFAULT_MAX_UNKNOWN_MODEL_NAMES,
                       help="distinct model_name label values recorded for models this server does not serve; "
                            "later unknown names are counted under one overflow value (default: %(default)s)")


def _http_limits(args: argparse.Namespace) -> HttpLimits:
    values = {}
    for flag, field, _, _ in _LIMIT_FLAGS:
        value = getattr(args, flag[2:])
        if not value > 0:
            raise ConfigError(f"{flag} must be > 0.")
        values[field] = value
    _at_most(JSON_DEPTH_FLAG, values["max_json_depth"], MAX_JSON_DEPTH_CEILING)
    _at_most(JSON_NUMBER_DIGITS_FLAG, values["max_json_number_digits"], sys.get_int_max_str_digits())
    if args.max_unknown_model_names < 0:
        raise ConfigError("--max_unknown_model_names must be >= 0.")
    return HttpLimits(**values)


def _at_most(flag: str, value: int, ceiling: int) -> None:
    """Raises ConfigError past `ceiling` (where another limit, not the flag, would apply)."""
    if value > ceiling:
        raise ConfigError(f"{flag} must be <= {ceiling}.")


def _read(path: str, flag: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as err:
        raise ConfigError(f"Cannot read {flag} {path}: {err.strerror or err}") from None


def _parse_text(path: str, flag: str, message: _Message) -> _Message:
    try:
        return text_format.Parse(_read(path, flag), message)
    except text_format.ParseError as err:
        raise ConfigError(f"Invalid {flag} {path}: {err}") from None


def _policy(config: model_server_config_pb2.ModelConfig) -> VersionPolicy:
    policy = config.model_version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return VersionPolicy(PolicyKind.ALL)
    if kind == "specific":
        if not policy.specific.versions:
            raise ConfigError(f"Model {config.name}: specific version policy lists no versions.")
        return VersionPolicy(PolicyKind.SPECIFIC, versions=frozenset(policy.specific.versions))
    num = policy.latest.num_versions if kind == "latest" else 1
    if num < 1:
        raise ConfigError(f"Model {config.name}: latest.num_versions must be >= 1.")
    return VersionPolicy(PolicyKind.LATEST, num_versions=num)


def load_model_config(path: str) -> tuple[ModelConfig, ...]:
    """Parses a `ModelServerConfig` text proto into model configs."""
    proto = _parse_text(path, "--model_config_file", model_server_config_pb2.ModelServerConfig())
    return models_from_proto(proto, path)


def models_from_proto(proto: model_server_config_pb2.ModelServerConfig, path: str) -> tuple[ModelConfig, ...]:
    """Model configs from a parsed `ModelServerConfig` (`path` names its origin in error messages).

    Raises:
      ConfigError: not a `model_config_list`, a model without name or base path, an unsupported
        platform, a duplicate name, a bad version policy, or no model at all.
    """
    if proto.WhichOneof("config") != "model_config_list":
        raise ConfigError(f"{path}: only model_config_list is supported.")
    models: list[ModelConfig] = []
    for entry in proto.model_config_list.config:
        if not entry.name or not entry.base_path:
            raise ConfigError(f"{path}: every model needs a name and a base_path.")
        if entry.model_platform not in ("", "tensorflow"):
            raise ConfigError(f"{path}: model {entry.name}: platform {entry.model_platform!r} is not supported.")
        if any(m.name == entry.name for m in models):
            raise ConfigError(f"{path}: model {entry.name} is listed twice.")
        models.append(ModelConfig(entry.name, Path(entry.base_path), _policy(entry),
                                  dict(entry.version_labels)))
    if not models:
        raise ConfigError(f"{path}: no models configured.")
    return tuple(models)


def load_metrics_path(path: str | None) -> str | None:
    """The Prometheus path if the monitoring config enables it, else None."""
    if path is None:
        return None
    return prometheus_path(_parse_text(path, "--monitoring_config_file", MonitoringConfig()))


def load_batching(path: str | None) -> BatchingOptions:
    """`BatchingOptions` from a `BatchingParameters` file; unset fields keep TF's defaults."""
    if path is None:
        return BatchingOptions()
    proto = _parse_text(path, "--batching_parameters_file", BatchingParameters())
    values = {}
    for name in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads",
                 "thread_pool_name"):
        if proto.HasField(name):
            values[name] = getattr(proto, name).value
    if proto.allowed_batch_sizes:
        values["allowed_batch_sizes"] = tuple(proto.allowed_batch_sizes)
    if proto.pad_variable_length_inputs:
        raise ConfigError(f"{path}: pad_variable_length_inputs is not supported.")
    try:
        return BatchingOptions(**values)
    except ValueError as err:
        raise ConfigError(f"{path}: {err}") from None


def check_base_paths(models: Sequence[ModelConfig]) -> None:
    """Raises ConfigError unless every base path is absolute (`ServerCore::ValidateModelConfigList`).

    A missing base path is not a config error: it is logged and polled (as TF Serving)."""
    for model in models:
        if not model.base_path.is_absolute():
            raise ConfigError(f"Expected model {model.name} to have an absolute path or URI; "
                              f"got base_path()={model.base_path}")


def from_args(argv: Sequence[str]) -> ServerConfig:
    """Builds the server config from tensorflow_model_server-style flags."""
    args = build_parser().parse_args(list(argv))
    if args.batching_parameters_file and not args.enable_batching:
        raise ConfigError("--batching_parameters_file is set without setting --enable_batching to true.")
    for name in ("port", "rest_api_port"):
        if not 0 <= getattr(args, name) <= 65535:
            raise ConfigError(f"--{name} must be between 0 and 65535.")
    for name in ("rest_api_timeout_in_ms", "rest_api_num_threads", "max_request_bytes",
                 "max_instances_per_request"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name} must be >= 1.")
    if args.model_config_file:
        models = load_model_config(args.model_config_file)
    else:
        base = Path(args.model_base_path) if args.model_base_path else DEFAULT_SERVING_DIR / args.model_name
        models = (ModelConfig(args.model_name, base),)
    check_base_paths(models)
    request_log = Path(args.request_log_file) if args.request_log_file else None
    if request_log is not None and not request_log.parent.is_dir():
        raise ConfigError(f"--request_log_file: folder {request_log.parent} does not exist.")
    if request_log is not None and not args.observed_output:
        raise ConfigError("--request_log_file needs --observed_output: the output whose values it records.")
    store_url = _prediction_store_url(args.prediction_store_url, args.observed_output)
    rest_port = args.rest_api_port
    if rest_port and rest_port == args.port:
        raise ConfigError("--rest_api_port cannot be the same as --port.")
    return ServerConfig(
        host=args.host, grpc_port=args.port, rest_port=rest_port or None, models=models,
        poll_seconds=args.file_system_poll_wait_seconds, rest_timeout_ms=args.rest_api_timeout_in_ms,
        num_threads=args.rest_api_num_threads,
        batching=load_batching(args.batching_parameters_file) if args.enable_batching else None,
        metrics_path=load_metrics_path(args.monitoring_config_file),
        enable_cors=args.rest_api_enable_cors_support, max_request_bytes=args.max_request_bytes,
        max_instances=args.max_instances_per_request, max_load_retries=max(args.max_num_load_retries, 0),
        load_retry_interval_seconds=max(args.load_retry_interval_micros, 0) / 1e6,
        intra_op_threads=args.tensorflow_intra_op_parallelism,
        inter_op_threads=args.tensorflow_inter_op_parallelism,
        request_log_file=request_log,
        observed_output=args.observed_output or None,
        prediction_store_url=store_url,
        prediction_id_output=args.prediction_id_output or None,
        settle_seconds=_settle_seconds(args.file_system_settle_seconds),
        enable_model_warmup=args.enable_model_warmup,
        model_config_file=Path(args.model_config_file) if args.model_config_file else None,
        model_config_poll_seconds=args.model_config_file_poll_wait_seconds if args.model_config_file else 0.0,
        http_limits=_http_limits(args),
        max_unknown_model_names=args.max_unknown_model_names,
    )


def _prediction_store_url(url: str | None, observed_output: str | None) -> str | None:
    """`--prediction_store_url`, checked to be a database URL (the database itself is opened by the writer,
    so one that is down delays recording, not serving)."""
    if not url:
        return None
    if not observed_output:
        raise ConfigError("--prediction_store_url needs --observed_output: the output whose values it records.")
    import sqlalchemy as sa

    try:
        sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigError(f"--prediction_store_url: not a database URL: {url!r} "
                          "(e.g. sqlite:////var/lib/churn/predictions.sqlite)") from None
    return url


def _settle_seconds(value: float) -> float:
    if not value >= 0:  # also refuses NaN
        raise ConfigError("--file_system_settle_seconds must be >= 0.")
    return value

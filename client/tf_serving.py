"""Command-line client: `python -m client.tf_serving status|metadata|predict [--grpc]`.

`predict` takes one customer (`--json '{"Age": 30, ...}'` or a JSON file) or a CSV file
(`--csv customers.csv`, read by the pipeline's reader: any delimiter, decimal mark and encoding it
detects, column names mapped to the served input names as in training), converts each value to the dtype
the model's signature declares (read
from the metadata API, never hard-coded), ignores columns the signature does not take (such as
Customer_ID or the label), and prints the churn probability per customer.
Errors (server down, HTTP/gRPC error) print one line and exit 1.

`predict --record` keeps what the server answered in the prediction store (monitoring/prediction_store.py;
`--store URL`, else $CHURN_PREDICTION_STORE, else the embedded SQLite file): it calls the newest AVAILABLE
version by number through `serving_with_ids` (so each answer row carries its customer id, and the version
recorded is the one that answered) and appends one row per customer with source `rest` or `grpc`. This
works against real TensorFlow Serving too, which keeps no predictions itself.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import exit_codes
from common.facts import GRPC_PORT, MODEL_NAME, REST_PORT
from modules.features import ID_KEYS, PROBABILITY_OUTPUT, WITH_IDS_SIGNATURE

# --grpc imports TensorFlow for its protos: its start-up chatter is not for a command-line user.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore", category=FutureWarning)

NOT_RUNNING_HINT = "is it running? `make serve` starts it on the pushed model (or pass --host/--port)"
"""The next step named when no server answers: a new user's first call often comes before `make serve`."""
SIGNATURE = "serving_default"  # tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY; REST needs no TensorFlow import
_INT_TYPES = {"DT_INT64", "DT_INT32", "DT_INT16", "DT_INT8", "DT_UINT8"}
_FLOAT_TYPES = {"DT_FLOAT", "DT_DOUBLE"}


class ClientError(Exception):
    """Anything that should end the command with a one-line message."""


def _convert(value: Any, dtype: str, column: str) -> Any:
    try:
        if dtype in _INT_TYPES:
            return int(float(value)) if isinstance(value, str) else int(value)
        if dtype in _FLOAT_TYPES:
            return float(value)
        if dtype == "DT_BOOL":
            return str(value).strip().lower() in ("1", "true", "yes")
        return str(value)
    except (TypeError, ValueError):
        raise ClientError(f"Column {column}: cannot convert {value!r} to {dtype}") from None


def to_instances(rows: list[dict[str, Any]], input_dtypes: dict[str, str]) -> list[dict[str, Any]]:
    """Keeps the signature's inputs, converted to their dtypes; missing inputs are an error."""
    instances = []
    for number, row in enumerate(rows, 1):
        missing = sorted(set(input_dtypes) - set(row))
        if missing:
            raise ClientError(f"Customer {number} is missing: {', '.join(missing)}")
        instances.append({k: _convert(row[k], d, k) for k, d in input_dtypes.items()})
    return instances


class RestClient:
    def __init__(self, host: str, port: int, model: str, timeout: float) -> None:
        self._base = f"http://{host}:{port}/v1/models/{model}"
        self._timeout = timeout

    def _request(self, url: str, body: bytes | None = None) -> Any:
        request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            detail = err.read().decode("utf-8", "replace")
            try:
                detail = json.loads(detail)["error"]
            except (ValueError, KeyError, TypeError):
                pass
            raise ClientError(f"Server answered HTTP {err.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ClientError(f"Cannot reach the model server at {url}: {reason}; {NOT_RUNNING_HINT}") from None

    def status(self) -> Any:
        return self._request(self._base)

    def metadata(self) -> Any:
        return self._request(self._base + "/metadata")

    def input_dtypes(self, signature: str = SIGNATURE) -> dict[str, str]:
        sigs = self.metadata()["metadata"]["signature_def"]["signature_def"]
        if signature not in sigs:
            raise ClientError(f"the served model has no {signature} signature (re-run the pipeline to export it)")
        return {k: v["dtype"] for k, v in sigs[signature]["inputs"].items()}

    def predict(self, instances: list[dict[str, Any]], signature: str = SIGNATURE,
                version: int | None = None) -> list[Any]:
        """REST rows of `signature`'s answer; `version` calls that version (`/versions/N:predict`)."""
        body = json.dumps({"signature_name": signature, "instances": instances}).encode()
        url = self._base + (f"/versions/{version}" if version is not None else "") + ":predict"
        return self._request(url, body)["predictions"]


class GrpcClient:
    def __init__(self, host: str, port: int, model: str, timeout: float) -> None:
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        self._grpc = grpc
        self._channel = grpc.insecure_channel(f"{host}:{port}")
        self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)
        self._model = model
        self._timeout = timeout
        self._target = f"{host}:{port}"
        self._dtypes: dict[str, int] = {}

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request, timeout=self._timeout)
        except self._grpc.RpcError as err:
            if err.code() == self._grpc.StatusCode.UNAVAILABLE:
                raise ClientError(f"Cannot reach the model server at {self._target}: {err.details()}; "
                                  f"{NOT_RUNNING_HINT}") from None
            raise ClientError(f"Server answered {err.code().name}: {err.details()}") from None

    def status(self) -> Any:
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = self._model
        return json_format.MessageToDict(self._call(self._models.GetModelStatus, request),
                                         preserving_proto_field_name=True)

    def _signature_defs(self) -> Any:
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = self._model
        response = self._call(self._predict.GetModelMetadata, request)
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(sig_map)
        return sig_map

    def metadata(self) -> Any:
        from google.protobuf import json_format

        return json_format.MessageToDict(self._signature_defs(), preserving_proto_field_name=True)

    def input_dtypes(self, signature: str = SIGNATURE) -> dict[str, str]:
        from tensorflow.core.framework import types_pb2

        defs = self._signature_defs().signature_def
        if signature not in defs:
            raise ClientError(f"the served model has no {signature} signature (re-run the pipeline to export it)")
        inputs = defs[signature].inputs
        self._dtypes = {k: v.dtype for k, v in inputs.items()}
        return {k: types_pb2.DataType.Name(v.dtype) for k, v in inputs.items()}

    def predict(self, instances: list[dict[str, Any]], signature: str = SIGNATURE,
                version: int | None = None) -> list[Any]:
        """`signature`'s answer as REST rows; `version` calls that version (`model_spec.version`)."""
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        request.model_spec.name = self._model
        request.model_spec.signature_name = signature
        if version is not None:
            request.model_spec.version.value = version
        for key in instances[0]:
            values = [i[key] for i in instances]
            request.inputs[key].CopyFrom(tf.make_tensor_proto(values, dtype=tf.as_dtype(self._dtypes[key])))
        response = self._call(self._predict.Predict, request)
        outputs = {k: tf.make_ndarray(v).tolist() for k, v in response.outputs.items()}
        if len(outputs) == 1:  # same shape as REST's row format
            return next(iter(outputs.values()))
        return [{k: v[i] for k, v in outputs.items()} for i in range(len(instances))]


def newest_available(status: Any) -> int:
    """The highest AVAILABLE version in a model status answer (REST or gRPC, as `status()` returns it)."""
    versions = [int(v["version"]) for v in status.get("model_version_status", []) if v.get("state") == "AVAILABLE"]
    if not versions:
        raise ClientError("the model has no AVAILABLE version")
    return max(versions)


def predict_and_record(client: RestClient | GrpcClient, rows: list[dict[str, Any]], store: Any,
                       source: str, model: str = MODEL_NAME, serving_dir: Path | None = None) -> list[Any]:
    """Scores `rows` (each with the id column) through the newest version's `serving_with_ids` and appends the
    answer to `store` (a `PredictionStore`), one row per customer; returns the answer rows.

    The recorded threshold is the pushed version's own (`<serving_dir>/<model>/<version>`, default
    `serving_model/`) when that folder is here, else the fallback; the decision is the model's `churn` output
    either way.
    Raises ClientError (no id column, no such signature, server errors) or PredictionStoreError (write failed).
    """
    from common.facts import DEFAULT_SERVING_DIR
    from monitoring.prediction_store import model_threshold, predictions_from_rows

    version = newest_available(client.status())
    dtypes = client.input_dtypes(WITH_IDS_SIGNATURE)
    id_keys = [k for k in ID_KEYS if k in dtypes]
    if any(row.get(k) in (None, "") for row in rows for k in id_keys):
        raise ClientError(f"--record needs every customer's {', '.join(id_keys)}")
    answer = client.predict(to_instances(rows, dtypes), WITH_IDS_SIGNATURE, version)
    store.append(predictions_from_rows(answer, version, WITH_IDS_SIGNATURE, source,
                                       threshold=model_threshold((serving_dir or DEFAULT_SERVING_DIR) / model
                                                                 / str(version))))
    return answer


def read_csv_rows(path: Path) -> list[dict[str, Any]]:
    """The customers of a CSV as {TensorFlow column name: cell text}, read as the pipeline reads its data
    (pipeline/reader.py: dialect, encoding, column names mapped to the served input names, missing values
    as "", thousands separators and decimal commas removed). ClientError for an unreadable file."""
    from pipeline import reader

    try:
        dialect = reader.detect_dialect(path)
        header = reader.read_header(path, dialect)
        rows: list[dict[str, Any]] = []
        for _, chunk in reader.read_chunks(path, dialect, header, 10_000):
            rows.extend(reader.normalize_cells(chunk, dialect, path).to_dict("records"))
    except reader.ReadError as err:
        raise ClientError(str(err)) from None
    if not rows:
        raise ClientError(f"{path} has no customers")
    return rows


def _read_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.csv:
        return read_csv_rows(Path(args.csv))
    text = Path(args.json).read_text() if Path(args.json).is_file() else args.json
    try:
        value = json.loads(text)
    except ValueError as err:
        raise ClientError(f"--json is neither a file nor valid JSON: {err}") from None
    rows = value if isinstance(value, list) else [value]
    if not all(isinstance(r, dict) for r in rows):
        raise ClientError("--json must be a JSON object (one customer) or a list of objects")
    return rows


def _format(prediction: Any) -> str:
    if isinstance(prediction, dict) and PROBABILITY_OUTPUT in prediction:
        return f"{float(prediction[PROBABILITY_OUTPUT]):.4f}"
    return json.dumps(prediction)


def _print(rows: list[dict[str, Any]], predictions: list[Any]) -> None:
    for number, (row, prediction) in enumerate(zip(rows, predictions, strict=False), 1):
        label = next((row[k] for k in ID_KEYS if row.get(k) not in (None, "")), number)
        print(f"customer {label}: churn probability {_format(prediction)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m client.tf_serving", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help=f"default {REST_PORT} (REST) / {GRPC_PORT} (gRPC)")
    parser.add_argument("--model", default=MODEL_NAME)
    parser.add_argument("--grpc", action="store_true", help="use the gRPC API")
    parser.add_argument("--timeout", type=float, default=30.0)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="model version states")
    commands.add_parser("metadata", help="signatures")
    predict = commands.add_parser("predict", help="churn probability per customer")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--json", help="one customer as a JSON object, or a JSON file")
    source.add_argument("--csv", help="CSV file with one customer per row")
    predict.add_argument("--record", action="store_true",
                         help="keep the answers in the prediction store (through serving_with_ids; needs the id "
                              "column)")
    predict.add_argument("--store", metavar="URL",
                         help="prediction store SQLAlchemy URL for --record (default: $CHURN_PREDICTION_STORE, "
                              "else .predictions/predictions.sqlite)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    port = args.port or (GRPC_PORT if args.grpc else REST_PORT)
    client = (GrpcClient if args.grpc else RestClient)(args.host, port, args.model, args.timeout)
    try:
        if args.command == "status":
            print(json.dumps(client.status(), indent=1))
        elif args.command == "metadata":
            print(json.dumps(client.metadata(), indent=1))
        elif args.record:
            from common.facts import GRPC_SOURCE, REST_SOURCE
            from monitoring.prediction_store import PredictionStore, PredictionStoreError, resolve_url

            rows = _read_rows(args)
            try:
                with PredictionStore(resolve_url(args.store)) as store:
                    predictions = predict_and_record(client, rows, store, GRPC_SOURCE if args.grpc else REST_SOURCE,
                                                     args.model)
            except PredictionStoreError as err:
                raise ClientError(f"prediction store: {err}") from None
            _print(rows, predictions)
        else:
            rows = _read_rows(args)
            predictions = client.predict(to_instances(rows, client.input_dtypes()))
            _print(rows, predictions)
    except ClientError as err:
        print(f"error: {err}", file=sys.stderr)
        return exit_codes.FAILED
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())

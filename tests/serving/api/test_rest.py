"""REST wire contract (contract sections 1-6) against an in-process server with tiny models."""
from __future__ import annotations

import gzip
import json

import pytest

from tests.serving.http_util import call, error_of, get, post

PREDICT = "/v1/models/half:predict"


@pytest.fixture(scope="module")
def port(served) -> int:  # type: ignore[no-untyped-def]
    return served.rest_port


def test_predict_row_format_exact_bytes(port: int) -> None:
    status, headers, body = post(port, PREDICT, {"instances": [1.0, 2.0, 5.0]})
    assert status == 200 and headers["content-type"] == "application/json"
    assert body == b'{\n    "predictions": [2.5, 3.0, 4.5\n    ]\n}'


def test_predict_columnar_format_exact_bytes(port: int) -> None:
    status, _, body = post(port, PREDICT, {"signature_name": "serving_default", "inputs": [3.0, 4.0]})
    assert status == 200
    assert body == b'{\n    "outputs": [\n        3.5,\n        4.0\n    ]\n}'


def test_predict_tf1_rows_of_lists(port: int) -> None:
    status, _, body = post(port, "/v1/models/tf1:predict", {"instances": [[1.0], [3.0]]})
    assert status == 200
    assert body == b'{\n    "predictions": [[2.5], [3.5]\n    ]\n}'


def test_predict_multi_input_multi_output_rows(port: int) -> None:
    row = {"Age": 30, "Gender": "Male", "Annual_Income": 50000, "Total_Spend": 100.5}
    status, _, body = post(port, PREDICT, {"signature_name": "churn", "instances": [row, row]})
    assert status == 200
    parsed = json.loads(body)["predictions"]
    assert len(parsed) == 2 and set(parsed[0]) == {"churn", "churn_probability"}
    assert body.startswith(b'{\n    "predictions": [\n        {\n            "churn": 1,\n')


def test_predict_b64_input_and_bytes_output(port: int) -> None:
    status, _, body = post(port, PREDICT, {"signature_name": "bytes", "instances": [{"b64": "aGVsbG8="}, "hi"]})
    assert status == 200
    assert json.loads(body) == {"predictions": [
        {"echo_bytes": {"b64": "aGVsbG8="}, "length": 5}, {"echo_bytes": {"b64": "aGk="}, "length": 2}]}


def test_predict_nan_and_infinity_round_trip(port: int) -> None:
    status, _, body = post(port, PREDICT, b'{"instances": [NaN, Infinity, -Infinity]}')
    assert status == 200
    assert body == b'{\n    "predictions": [NaN, Infinity, -Infinity\n    ]\n}'


def test_predict_trailing_bytes_are_ignored(port: int) -> None:
    assert post(port, PREDICT, b'{"instances": [1.0]}X')[0] == 200


def test_float_formatting_matches_write_decimal(port: int) -> None:
    _, _, body = post(port, PREDICT, {"instances": [17999996.0, 0.6666667, 2.0]})
    assert body == b'{\n    "predictions": [9e+06, 2.33333325, 3.0\n    ]\n}'


def test_gzip_request_body(port: int) -> None:
    data = gzip.compress(b'{"instances": [1.0]}')
    status, _, body = call(port, "POST", PREDICT, data, {"Content-Encoding": "gzip"})
    assert status == 200 and json.loads(body) == {"predictions": [2.5]}


@pytest.mark.parametrize("path, status, message", [
    ("/v1/models/half", 200, None),
    ("/v1/models/half/versions/123", 200, None),
    ("/v1/models/nope", 404, "Could not find any versions of model nope"),
    ("/v1/models/half/versions/7", 404, "Could not find version 7 of model half"),
    ("/v1/models", 400, "Missing model name in request."),
    ("/v1/models/half/versions/18446744073709551615", 400,
     "Failed to convert version: 18446744073709551615 to numeric."),
    ("/v1/foo", 400, "Malformed request: GET /v1/foo"),
    ("/v1/models/debug/model_name", 400, "Malformed request: GET /v1/models/debug/model_name"),
    ("/v1/models/foo:predict", 400, "Malformed request: GET /v1/models/foo:predict"),
    ("/v1/models/nope/metadata", 404, "Servable not found for request: Latest(nope)"),
    ("/v1/models/half/versions/9/metadata", 404, "Servable not found for request: Specific(half, 9)"),
    ("/v1/models/half/labels/nolabel/metadata", 400, "Unrecognized servable version label: nolabel"),
])
def test_get_routes(port: int, path: str, status: int, message: str) -> None:
    reply = get(port, path)
    assert reply[0] == status
    if message is not None:
        assert error_of(reply) == message


def test_status_body_exact(port: int) -> None:
    _, _, body = get(port, "/v1/models/half")
    assert body == (b'{\n "model_version_status": [\n  {\n   "version": "123",\n   "state": "AVAILABLE",\n'
                    b'   "status": {\n    "error_code": "OK",\n    "error_message": ""\n   }\n  }\n ]\n}')


def test_metadata_layout(port: int) -> None:
    status, _, body = get(port, "/v1/models/half/labels/stable/metadata")
    assert status == 200
    assert body.startswith(b'{\n"model_spec":{') and body.endswith(b"}\n}\n")
    doc = json.loads(body)
    assert doc["model_spec"] == {"name": "half", "signature_name": "", "version": "123"}
    sig = doc["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["method_name"] == "tensorflow/serving/predict"
    assert sig["inputs"]["x"]["dtype"] == "DT_FLOAT"
    assert sig["inputs"]["x"]["tensor_shape"] == {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}


@pytest.mark.parametrize("method, path, body, status, message", [
    ("POST", "/v1/models/nope:predict", b"", 400, "JSON Parse error: The document is empty"),
    ("POST", PREDICT, b"instances = [1, 2]", 400, "JSON Parse error: Invalid value. at offset: 0"),
    ("POST", PREDICT, b'{"instances": [1 2]}', 400,
     "JSON Parse error: Missing a comma or ']' after an array element. at offset: 17"),
    ("POST", PREDICT, b'{"instances": [1] "a": 1}', 400,
     "JSON Parse error: Missing a comma or '}' after an object member. at offset: 18"),
    ("POST", PREDICT, b"[1]", 400, "JSON Value: [1] Is not object"),
    ("POST", PREDICT, b'{"signature_name": 5, "instances": [1]}', 400,
     "JSON Value: {\n    \"signature_name\": 5,\n    \"instances\": [1]\n} not formatted correctly. "
     "'signature_name' key must be a string value."),
    ("POST", "/v1/models/nope:predict", b'{"instances": [1]}', 404,
     "Servable not found for request: Latest(nope)"),
    ("POST", "/v1/models/half/versions/5:predict", b'{"instances": [1]}', 404,
     "Servable not found for request: Specific(half, 5)"),
    ("POST", "/v1/models/half/labels/x:predict", b'{"instances": [1]}', 400,
     "Unrecognized servable version label: x"),
    ("POST", PREDICT, b'{"signature_name": "zz", "instances": [1]}', 400,
     'Serving signature name: "zz" not found in signature def'),
    ("POST", PREDICT, b'{"x": 1}', 400, "Missing 'inputs' or 'instances' key"),
    ("POST", PREDICT, b'{"instances": [1], "inputs": [1]}', 400,
     "JSON Value: {\n    \"instances\": [1],\n    \"inputs\": [1]\n} Not formatted correctly expecting only "
     "one of 'inputs' or 'instances' keys to exist "),
    ("POST", PREDICT, b'{"instances": 1}', 400,
     "JSON Value: {\n    \"instances\": 1\n} Expecting 'instances' to be an list/array"),
    ("POST", PREDICT, b'{"instances": []}', 400,
     "JSON Value: {\n    \"instances\": []\n} No values in 'instances' array"),
    ("POST", PREDICT, b'{"instances": ["x"]}', 400,
     "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: \"x\" "
     "Type: String is not of expected type: float"),
    ("POST", PREDICT, b'{"inputs": "x"}', 400, "JSON Value: \"x\" Type: String is not of expected type: float"),
    ("POST", PREDICT, b'{"instances": [[1.0], [1.0, 2.0]]}', 400,
     "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 1 but got: 2"),
    ("POST", PREDICT, b'{"instances": [1.0, {"x": 1.0}]}', 400,
     "Expecting value/list but got object at item 1 of input list"),
    ("POST", PREDICT, b'{"instances": [{"x": 1.0}, 1.0]}', 400,
     "Expecting object but got list at item 1 of input list"),
    ("POST", PREDICT, b'{"instances": [{"age": 1.0}]}', 400,
     "Failed to process element: 0 key: age of 'instances' list. Error: INVALID_ARGUMENT: JSON object: "
     "does not have named input: age"),
    ("POST", PREDICT, b'{"signature_name": "churn", "instances": [1]}', 400,
     "instances is a plain list, but expecting list of objects as multiple input tensors required as per "
     "tensorinfo_map"),
    ("POST", PREDICT, b'{"signature_name": "churn", "inputs": [1]}', 400,
     "inputs is a plain value/list, but expecting an object as multiple input tensors required as per "
     "tensorinfo_map"),
    ("POST", PREDICT, b'{"signature_name": "churn", "inputs": {"Age": [1]}}', 400,
     "Missing named input: Annual_Income in 'inputs' object."),
    ("POST", PREDICT, b'{"signature_name": "churn", "instances": [{"Age": 1}]}', 400,
     "Failed to process element: 0 of 'instances' list. JSON object: {\n    \"Age\": 1\n} keys must be equal "
     "to: Age,Annual_Income,Gender,Total_Spend"),
    ("POST", PREDICT, b'{"signature_name": "bytes", "instances": [{"b64": "!!"}]}', 400,
     "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: Unable to base64 decode"),
    ("POST", "/v1/models/half:PREDICT", b'{"instances": [1]}', 400, "Malformed request: POST /v1/models/half:PREDICT"),
    ("POST", "/v1/models/foo/version/50:predict", b"{}", 400,
     "Malformed request: POST /v1/models/foo/version/50:predict"),
    ("POST", "/v1/models/foo/versions/50/labels/x:regress", b"{}", 400,
     "Malformed request: POST /v1/models/foo/versions/50/labels/x:regress"),
    ("PUT", PREDICT, b"{}", 400, "Malformed request: PUT /v1/models/half:predict"),
    ("POST", "/v1/models", b"{}", 400, "Malformed request: POST /v1/models"),
    ("POST", "/v1/models/foo/metadata", b"{}", 400, "Malformed request: POST /v1/models/foo/metadata"),
])
def test_error_catalogue(port: int, method: str, path: str, body: bytes, status: int, message: str) -> None:
    reply = call(port, method, path, body)
    assert reply[0] == status
    assert error_of(reply) == message


def test_error_body_golden_bytes(port: int) -> None:
    _, headers, body = post(port, "/v1/models/nope:predict", {"instances": [1]})
    assert body == b'{\n    "error": "Servable not found for request: Latest(nope)"\n}'
    assert headers["content-length"] == str(len(body))


def test_non_v1_path_gets_libevent_404_html(port: int) -> None:
    status, headers, body = get(port, "/foo")
    assert status == 404 and headers["content-type"] == "text/html"
    assert body == b"<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n<H1>Not Found</H1>\n</BODY></HTML>\n"


def test_options_preflight(port: int) -> None:
    ok = call(port, "OPTIONS", PREDICT, headers={"Origin": "https://example.com"})
    assert ok[0] == 200 and ok[2] == b""
    bad = call(port, "OPTIONS", PREDICT)
    assert bad[0] == 400 and bad[2] == b"" and "content-type" not in bad[1]


def test_classify_and_regress(port: int) -> None:
    status, _, body = post(port, "/v1/models/tf1:classify",
                           {"signature_name": "classify_x_to_y", "examples": [{"x": 20.0}]})
    assert status == 200 and body == b'{\n    "results": [[["", 12.0]]\n    ]\n}'
    status, _, body = post(port, "/v1/models/tf1:regress",
                           {"signature_name": "regress_x_to_y", "examples": [{"x": 80.0}, {"x": 2.0}]})
    assert status == 200 and body == b'{\n    "results": [42.0, 3.0]\n}'


@pytest.mark.parametrize("verb, body, message", [
    ("classify", b'{"signature_name": "classify_x_to_y"}',
     "JSON Value: {\n    \"signature_name\": \"classify_x_to_y\"\n} When method is classify, key 'examples' is "
     "expected and was not found"),
    ("regress", b'{"examples": 1}',
     "JSON Value: {\n    \"examples\": 1\n} Expecting 'examples' value to be an list/array"),
    ("regress", b'{"examples": []}', "JSON Value: {\n    \"examples\": []\n} 'examples' value is an empty array"),
    ("regress", b'{"examples": [1]}', "Example must be JSON object but got JSON Number"),
    ("regress", b'{"examples": [{"x": null}]}', "Feature: x has element with unexpected JSON type: Null"),
    ("regress", b'{"examples": [{"x": [1, "a"]}]}', "Unexpected element type in feature: x expecting type: int64"),
    ("regress", b'{"signature_name": "q", "examples": [{"x": 1.0}]}', "No signature was found with the name: q"),
    ("classify", b'{"examples": [{"x": 1.0}]}',
     "Expected classification signature method_name to be tensorflow/serving/classify. "
     "Was: tensorflow/serving/predict"),
])
def test_classify_regress_errors(port: int, verb: str, body: bytes, message: str) -> None:
    reply = post(port, f"/v1/models/tf1:{verb}", body)
    assert reply[0] == 400
    assert error_of(reply) == message


def test_timeout_is_504(port: int) -> None:
    reply = post(port, "/v1/models/tf1:predict", {"signature_name": "blocking", "instances": [[1.0]]})
    assert reply[0] == 504
    assert error_of(reply)


def test_request_too_large_is_413(port: int) -> None:
    for _ in range(5):  # the answer must survive the client still sending its body
        reply = post(port, PREDICT, b'{"instances": [' + b"1.0," * 300_000 + b"1.0]}")
        assert reply[0] == 413


def test_too_many_instances_is_400(port: int) -> None:
    reply = post(port, PREDICT, {"instances": [1.0] * 1001})
    assert reply[0] == 400 and "limit of 1000" in error_of(reply)


def test_keep_alive_and_pipelining(port: int) -> None:
    import socket
    request = (b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n"
               b'{"instances": [1.0]}')
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request * 3)
        data = b""
        while data.count(b"predictions") < 3:
            chunk = sock.recv(65536)
            assert chunk
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 3


def test_malformed_http_gets_400(port: int) -> None:
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"garbage\r\n\r\n")
        assert sock.recv(1000).startswith(b"HTTP/1.1 400 Bad Request")

"""serving/http/server.py over real sockets: RFC 9112 framing, flow control, limits, half-close, drain."""
from __future__ import annotations

import gzip
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from common.facts import PROJECT_ROOT
from serving.constants import DEFAULT_MAX_REQUEST_BYTES
from serving.core.manager import ModelConfig
from serving.http.limits import HttpLimits
from serving.http.server import ACCEPT_ERROR_MESSAGE
from serving.main import ModelServer
from tests.helpers import free_port
from tests.serving.conftest import ServerFactory, install
from tests.serving.http_util import error_of, get, post

PREDICT = b'{"instances": [1.0]}'
SMUGGLED = b"GET /v1/models/half HTTP/1.1\r\nHost: x\r\n\r\n"


def exchange(port: int, data: bytes, shut_write: bool = False) -> bytes:
    """Sends `data` and reads until the server closes the connection (never hangs: 20 s timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(data)
        if shut_write:
            sock.shutdown(socket.SHUT_WR)
        return read_to_eof(sock)


def read_to_eof(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def responses(data: bytes) -> list[bytes]:
    """Status lines of every response in `data` (a body may be followed directly by the next one)."""
    return re.findall(rb"HTTP/1\.1 \d{3} [^\r\n]*", data)


ATTACKS = {
    "content-length and transfer-encoding": (
        b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED),
    "xchunked": (b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n"
                 b"0\r\n\r\n" + SMUGGLED),
    "chunked then identity": (b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\n"
                              b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + SMUGGLED),
    "chunked twice": (b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED),
    "unknown coding": (b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
                       + SMUGGLED),
    "hex prefix in chunk size": (b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n0x1ad\r\n" + SMUGGLED),
    "non-ASCII digit in content-length": (
        "POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\nContent-Length: \u0661\r\n\r\n".encode() + SMUGGLED),
    "signed content-length": (b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\nContent-Length: +20\r\n\r\n"
                              + PREDICT),
    "two different content-lengths": (
        b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\nContent-Length: 0\r\n\r\n"
        + PREDICT),
    "content-length overflow": (b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\n"
                                b"Content-Length: 99999999999999999999999\r\n\r\n"),
    "HTTP/1.9": b"GET /v1/models/half HTTP/1.9\r\nHost: x\r\n\r\n",
    "HTTP/2.0 request line": b"GET /v1/models/half HTTP/2.0\r\nHost: x\r\n\r\n",
    "HTTP/0.9 version": b"GET /v1/models/half HTTP/0.9\r\n\r\n",
    "no version": b"GET /v1/models/half\r\n\r\n",
    "garbage": b"garbage\r\n\r\n",
    "space before colon": b"GET /v1/models/half HTTP/1.1\r\nHost : x\r\n\r\n",
    "obsolete line folding": b"GET /v1/models/half HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
    "bare LF": b"GET /v1/models/half HTTP/1.1\nHost: x\n\n" + SMUGGLED,
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_bad_framing_is_400_closed_and_nothing_is_smuggled(served: ModelServer, name: str) -> None:
    data = exchange(served.rest_port, ATTACKS[name])
    statuses = responses(data)
    assert statuses[-1] == b"HTTP/1.1 400 Bad Request", data
    # at most the one well-formed request before the bad part (upgrade) is answered; never the smuggled GET
    assert len(statuses) <= 2 and b'"model_version_status"' not in data.split(b"HTTP/1.1 400")[-1]
    assert b"Connection: close" in data.split(b"HTTP/1.1 400")[-1]


def test_upgrade_is_ignored_and_nothing_after_it_is_read(served: ModelServer) -> None:
    data = exchange(served.rest_port, b"GET /v1/models/half HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                                      b"Upgrade: websocket\r\n\r\n" + SMUGGLED)
    assert responses(data) == [b"HTTP/1.1 200 OK"] and b"Connection: close\r\n" in data


def test_chunked_body_with_extensions_and_trailers_is_answered(served: ModelServer) -> None:
    request = (b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
               b"Connection: close\r\n\r\n5;ext=1\r\n" + PREDICT[:5] + b"\r\n" + b"%x\r\n" % (len(PREDICT) - 5)
               + PREDICT[5:] + b"\r\n0\r\nTrailer: y\r\n\r\n")
    data = exchange(served.rest_port, request)
    assert responses(data) == [b"HTTP/1.1 200 OK"] and b'"predictions"' in data


def test_trailer_fields_are_ignored_not_merged_into_the_head(served: ModelServer) -> None:
    # docs/serving.md: trailers are accepted and ignored; a trailing Content-Encoding must not gunzip the body
    request = (b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
               b"Connection: close\r\n\r\n" + b"%x\r\n" % len(PREDICT) + PREDICT
               + b"\r\n0\r\nContent-Encoding: gzip\r\n\r\n")
    data = exchange(served.rest_port, request)
    assert responses(data) == [b"HTTP/1.1 200 OK"] and b'"predictions"' in data


def test_one_byte_writes_are_answered(served: ModelServer) -> None:
    request = (b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n"
               b"Connection: close\r\n\r\n" + PREDICT)
    with socket.create_connection(("127.0.0.1", served.rest_port), timeout=20) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(request)):
            sock.send(request[i:i + 1])
        data = read_to_eof(sock)
    assert responses(data) == [b"HTTP/1.1 200 OK"] and b"[2.5]" in data.replace(b" ", b"").replace(b"\n", b"")


def test_half_closed_client_still_gets_its_answers(served: ModelServer) -> None:
    one = b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n" + PREDICT
    data = exchange(served.rest_port, one * 2, shut_write=True)
    assert responses(data) == [b"HTTP/1.1 200 OK"] * 2 and data.count(b'"predictions"') == 2


def test_headers_past_the_limit_are_431(served: ModelServer) -> None:
    big = b"X-Pad: " + b"a" * HttpLimits().max_header_bytes + b"\r\n"
    data = exchange(served.rest_port, b"GET /v1/models/half HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
    assert responses(data) == [b"HTTP/1.1 431 Request Header Fields Too Large"]


def test_a_slowly_sent_head_past_the_limit_is_431(served: ModelServer) -> None:
    with socket.create_connection(("127.0.0.1", served.rest_port), timeout=20) as sock:
        sock.sendall(b"GET /v1/models/half HTTP/1.1\r\nX-Pad: ")
        try:
            for _ in range(2 * HttpLimits().max_header_bytes // 1024):
                sock.sendall(b"a" * 1024)
                time.sleep(0.001)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the client finished
        assert responses(read_to_eof(sock)) == [b"HTTP/1.1 431 Request Header Fields Too Large"]


def test_chunked_body_past_the_limit_is_413_before_it_is_all_read(served: ModelServer) -> None:
    limit = served.config.max_request_bytes
    chunk = b"%x\r\n%s\r\n" % (limit // 2 + 1, b" " * (limit // 2 + 1))
    head = b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    data = exchange(served.rest_port, head + chunk * 2)
    assert responses(data) == [b"HTTP/1.1 413 Request Entity Too Large"]
    assert "larger than the limit" in json.loads(data.split(b"\r\n\r\n", 1)[1])["error"]


def test_gzip_body_past_the_decompressed_limit_is_413(tmp_path: Path, model_store: Path,
                                                      server_factory: ServerFactory) -> None:
    install(model_store, "tf2_v1", tmp_path / "half", 1)
    server = server_factory((ModelConfig("half", tmp_path / "half"),),
                            http_limits=HttpLimits(max_decompressed_bytes=100_000))
    small = gzip.compress(PREDICT)
    bomb = gzip.compress(b'{"instances": [' + b"1.0," * 100_000 + b"1.0]}")
    head = b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
    assert responses(exchange(server.rest_port, (head % len(small)) + small, shut_write=True)) == [
        b"HTTP/1.1 200 OK"]
    assert responses(exchange(server.rest_port, (head % len(bomb)) + bomb)) == [
        b"HTTP/1.1 413 Request Entity Too Large"]
    assert responses(exchange(server.rest_port, (head % 5) + b"nogzp")) == [b"HTTP/1.1 400 Bad Request"]


def test_large_bodies_decoded_off_the_loop_get_the_same_answers(tmp_path: Path, model_store: Path,
                                                               server_factory: ServerFactory) -> None:
    install(model_store, "tf2_v1", tmp_path / "half", 1)
    server = server_factory((ModelConfig("half", tmp_path / "half"),), max_instances=10,
                            http_limits=HttpLimits(offload_body_bytes=1))
    port = server.rest_port
    reply = post(port, "/v1/models/half:predict", {"instances": [1.0, 2.0]})
    assert reply[0] == 200 and json.loads(reply[2]) == {"predictions": [2.5, 3.0]}
    reply = post(port, "/v1/models/half:predict", {"instances": [1.0] * 11})
    assert reply[0] == 400 and "limit of 10" in error_of(reply)
    reply = post(port, "/v1/models/half:predict", b"{nope")
    assert reply[0] == 400 and error_of(reply).startswith("JSON Parse error")
    reply = post(port, "/v1/models/nope:predict", {"instances": [1.0]})
    assert reply[0] == 404


def test_a_15_mb_body_over_the_row_limit_is_400_and_others_are_answered_meanwhile(
        tmp_path: Path, model_store: Path, server_factory: ServerFactory) -> None:
    install(model_store, "tf2_v1", tmp_path / "half", 1)
    served = server_factory((ModelConfig("half", tmp_path / "half"),), max_request_bytes=DEFAULT_MAX_REQUEST_BYTES)
    rows = 15_000_000 // 4
    body = b'{"instances": [' + b"1.0," * (rows - 1) + b"1.0]}"  # 15 MB, under --max_request_bytes
    head = (b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    with socket.create_connection(("127.0.0.1", served.rest_port), timeout=60) as big:
        big.sendall(head + body[: len(body) // 2])
        assert post(served.rest_port, "/v1/models/half:predict", PREDICT)[0] == 200  # while the body arrives
        big.sendall(body[len(body) // 2:])
        assert post(served.rest_port, "/v1/models/half:predict", PREDICT)[0] == 200  # while it is decoded
        data = read_to_eof(big)
    assert responses(data) == [b"HTTP/1.1 400 Bad Request"]
    assert json.loads(data.split(b"\r\n\r\n", 1)[1]) == {"error": (
        f"Request has {rows} instances, more than the limit of {served.config.max_instances} per request "
        "(--max_instances_per_request)")}


def test_a_client_that_never_reads_holds_bounded_memory_and_others_are_served(served: ModelServer) -> None:
    many = b"GET /v1/models/half HTTP/1.1\r\nHost: x\r\n\r\n" * 50_000  # 2 MB of requests, 12 MB of answers
    hog = socket.socket()
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    hog.connect(("127.0.0.1", served.rest_port))
    hog.setblocking(False)
    try:
        sent, deadline = 0, time.monotonic() + 5
        while sent < len(many) and time.monotonic() < deadline:  # until the server stops reading
            try:
                sent += hog.send(many[sent:])
            except BlockingIOError:
                time.sleep(0.05)
        for _ in range(3):
            assert get(served.rest_port, "/v1/models/half")[0] == 200
        stuck = []
        for _ in range(100):
            stuck = [c for c in list(served.http.connections) if c.writing_paused]  # type: ignore[union-attr]
            if stuck:
                break
            time.sleep(0.1)
        assert len(stuck) == 1, "the hog's answers should be held up by its full window"
        conn = stuck[0]
        assert conn.reading_paused and conn.queued < 10_000
        assert conn.write_buffer_size < 1 << 20
    finally:
        hog.close()


def test_connections_past_the_cap_get_503_and_open_ones_keep_working(tmp_path: Path, model_store: Path,
                                                                     server_factory: ServerFactory) -> None:
    install(model_store, "tf2_v1", tmp_path / "half", 1)
    server = server_factory((ModelConfig("half", tmp_path / "half"),), http_limits=HttpLimits(max_connections=2))
    request = b"GET /v1/models/half HTTP/1.1\r\nHost: x\r\n\r\n"
    held = [socket.create_connection(("127.0.0.1", server.rest_port), timeout=20) for _ in range(2)]
    try:
        for sock in held:
            sock.sendall(request)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
        refused = exchange(server.rest_port, request)
        assert responses(refused) == [b"HTTP/1.1 503 Service Unavailable"]
        for sock in held:
            sock.sendall(request)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
    finally:
        for sock in held:
            sock.close()


def test_slow_request_head_times_out_with_408(tmp_path: Path, model_store: Path,
                                              server_factory: ServerFactory) -> None:
    install(model_store, "tf2_v1", tmp_path / "half", 1)
    server = server_factory((ModelConfig("half", tmp_path / "half"),),
                            http_limits=HttpLimits(header_timeout_seconds=0.3))
    assert responses(exchange(server.rest_port, b"GET /v1/models/ha")) == [b"HTTP/1.1 408 Request Timeout"]
    assert responses(exchange(server.rest_port, b"")) == [b"HTTP/1.1 408 Request Timeout"]
    assert get(server.rest_port, "/v1/models/half")[0] == 200


def start_server(tmp_path: Path, model_store: Path, *flags: str, grpc_port: int = 0) -> tuple[subprocess.Popen, int]:
    """`python -m serving` for model `half`, once its REST port is open."""
    install(model_store, "tf2_v1", tmp_path / "half", 1)
    rest = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "serving", f"--model_base_path={tmp_path / 'half'}", "--model_name=half",
         f"--port={grpc_port}", f"--rest_api_port={rest}", *flags],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:  # type: ignore[union-attr]
        if "Exporting HTTP/REST API" in line:
            return proc, rest
    raise AssertionError(f"server exited with {proc.wait()}")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def test_accept_failures_are_logged_once(tmp_path: Path, model_store: Path,
                                         processes: list[subprocess.Popen]) -> None:
    # No poll after start-up (the version just installed loads when it settles, not an hour later).
    proc, port = start_server(tmp_path, model_store, "--file_system_poll_wait_seconds=3600")
    processes.append(proc)
    soft, hard = resource.prlimit(proc.pid, resource.RLIMIT_NOFILE)
    open_fds = len(os.listdir(f"/proc/{proc.pid}/fd"))
    resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, (open_fds, hard))  # no descriptor left for accept()
    clients = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(8)]  # kernel backlog
    time.sleep(3.5)  # asyncio retries accept() every second
    resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, (soft, hard))
    try:
        clients[0].sendall(b"GET /v1/models/half HTTP/1.1\r\nHost: x\r\n\r\n")
        assert clients[0].recv(65536).startswith(b"HTTP/1.1 200 OK")
    finally:
        for sock in clients:
            sock.close()
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=30)[0]
    assert output.count("cannot accept connections") == 1, output
    assert "accepts connections again after" in output and ACCEPT_ERROR_MESSAGE not in output


def test_sigterm_answers_requests_in_flight_before_exit(tmp_path: Path, model_store: Path,
                                                       processes: list[subprocess.Popen]) -> None:
    params = tmp_path / "batching.config"  # batches wait 3 s for company: a request stays in flight that long
    params.write_text("max_batch_size { value: 64 }\nbatch_timeout_micros { value: 3000000 }\n")
    grpc_port = free_port()
    proc, port = start_server(tmp_path, model_store, "--enable_batching", f"--batching_parameters_file={params}",
                              grpc_port=grpc_port)
    processes.append(proc)
    request = (b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n" + PREDICT)
    rpc = predict_pb2.PredictRequest()
    rpc.model_spec.name = "half"
    rpc.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0], np.float32)))
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel, \
            socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        answer = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict.future(rpc, timeout=30)
        sock.sendall(request)
        time.sleep(0.5)  # both requests now wait in their batch
        proc.send_signal(signal.SIGTERM)
        data = read_to_eof(sock)
        assert tf.make_ndarray(answer.result().outputs["y"]).tolist() == [2.5]
    assert responses(data) == [b"HTTP/1.1 200 OK"] and b'"predictions"' in data
    assert proc.wait(timeout=30) == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


DEPTH_ERROR = "JSON Parse error: Document nesting too deep: more than 64 levels (--rest_api_max_json_depth)."
DIGITS_ERROR = ("JSON Parse error: Number too long: more than 1000 digits "
                "(--rest_api_max_json_number_digits).")


@pytest.mark.parametrize("body, message", [
    (b'{"instances": [' + b"1" * 1001 + b"]}", DIGITS_ERROR),
    (b'{"instances": [' + b"1" * 5000 + b"]}", DIGITS_ERROR),
    (b'{"instances": [0.' + b"5" * 999 + b"e1]}", DIGITS_ERROR),  # exponent digits count
    (b'{"instances": ' + b"[" * 65 + b"]" * 65 + b"}", DEPTH_ERROR),  # 66 levels with the object
    (b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", DEPTH_ERROR),
    (b'{"a": ' * 5000 + b"1" + b"}" * 5000, DEPTH_ERROR),
])
def test_json_nesting_and_number_length_limits_are_400(served: ModelServer, body: bytes, message: str) -> None:
    reply = post(served.rest_port, "/v1/models/half:predict", body)
    assert reply[0] == 400 and error_of(reply) == message


@pytest.mark.parametrize("body, status, message", [
    (b'{"instances": [' + b"1" * 19 + b"]}", 200, None),
    (b'{"instances": [0.' + b"5" * 999 + b"]}", 200, None),  # 1000 digits: at the limit
    (b'{"instances": [' + b"[" * 62 + b"1.0" + b"]" * 62 + b"]}", 400,  # 64 levels: parsed, then refused
     "Tensor of rank 63 is not supported: at most 32 dimensions."),
    (b'{"instances": [1.0], "note": "' + b"9" * 5000 + b"[" * 100 + b'\\"[[["}', 200, None),  # strings never count
])
def test_json_within_the_limits_is_parsed(served: ModelServer, body: bytes, status: int, message: str) -> None:
    reply = post(served.rest_port, "/v1/models/half:predict", body)
    assert reply[0] == status, reply
    if status != 200:
        error = error_of(reply)
        assert "Number too long" not in error and "nesting too deep" not in error
        assert message is None or error == message


@pytest.mark.parametrize("number", [b"1" * 1000, b"-1e400"])
def test_a_number_that_overflows_a_double_is_400_as_in_tf_serving(served: ModelServer, number: bytes) -> None:
    """rapidjson's kParseErrorNumberTooBig, at the number's offset (was: Infinity, then 200)."""
    reply = post(served.rest_port, "/v1/models/half:predict", b'{"instances": [' + number + b"]}")
    assert reply[0] == 400
    assert error_of(reply) == "JSON Parse error: Number too big to be stored in double. at offset: 15"


@pytest.mark.parametrize("offload", [None, 16])  # decoded on the loop / on the worker thread
def test_json_limits_reach_the_rest_api(server_factory: ServerFactory, model_store: Path, tmp_path: Path,
                                        offload: int) -> None:
    install(model_store, "tf2_v1", tmp_path / "half", 1)
    limits = HttpLimits(max_json_depth=3, max_json_number_digits=3, offload_body_bytes=offload or 1 << 20)
    server = server_factory((ModelConfig("half", tmp_path / "half"),), http_limits=limits)
    url = "/v1/models/half:predict"
    reply = post(server.rest_port, url, b'{"inputs": {"x": [100, 1.5, 2e1]}, "pad": "' + b"1" * 40 + b'"}')
    assert reply[0] == 200, reply
    assert json.loads(reply[2])["outputs"] == [52.0, 2.75, 12.0]
    reply = post(server.rest_port, url, b'{"inputs": {"x": [[1.0]]}}')
    assert reply[0] == 400 and error_of(reply) == (
        "JSON Parse error: Document nesting too deep: more than 3 levels (--rest_api_max_json_depth).")
    reply = post(server.rest_port, url, b'{"inputs": {"x": [1000]}}')
    assert reply[0] == 400 and error_of(reply) == (
        "JSON Parse error: Number too long: more than 3 digits (--rest_api_max_json_number_digits).")


def test_limit_flags_reach_the_server_config_and_bad_values_are_config_errors(tmp_path: Path) -> None:
    from serving.config.server_config import ConfigError, from_args

    base = [f"--model_base_path={tmp_path}"]
    config = from_args(base + ["--rest_api_max_connections=7", "--rest_api_header_timeout_seconds=2.5",
                               "--max_unknown_model_names=0"])
    assert config.http_limits == HttpLimits(max_connections=7, header_timeout_seconds=2.5)
    assert config.max_unknown_model_names == 0
    assert from_args(base).http_limits == HttpLimits()
    for bad in ("--rest_api_max_connections=0", "--rest_api_max_header_bytes=-1", "--drain_timeout_seconds=0"):
        with pytest.raises(ConfigError, match=bad.split("=")[0] + " must be > 0"):
            from_args(base + [bad])
    with pytest.raises(ConfigError, match="--max_unknown_model_names must be >= 0"):
        from_args(base + ["--max_unknown_model_names=-1"])


def test_json_limit_flags_reach_the_config_and_bad_values_exit_2(tmp_path: Path) -> None:
    from serving.config.server_config import ConfigError, from_args
    from serving.main import main

    base = [f"--model_base_path={tmp_path}"]
    most = sys.get_int_max_str_digits()
    config = from_args(base + ["--rest_api_max_json_depth=512", f"--rest_api_max_json_number_digits={most}"])
    assert config.http_limits == HttpLimits(max_json_depth=512, max_json_number_digits=most)
    defaults = from_args(base).http_limits
    assert (defaults.max_json_depth, defaults.max_json_number_digits) == (64, 1000)
    for bad, message in [("--rest_api_max_json_depth=0", "must be > 0"),
                         ("--rest_api_max_json_depth=-3", "must be > 0"),
                         ("--rest_api_max_json_number_digits=0", "must be > 0"),
                         ("--rest_api_max_json_depth=513", "must be <= 512"),
                         (f"--rest_api_max_json_number_digits={most + 1}", f"must be <= {most}")]:
        with pytest.raises(ConfigError, match=bad.split("=")[0] + " " + message):
            from_args(base + [bad])
        assert main(base + [bad]) == 2

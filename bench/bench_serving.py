"""Serving benchmark (prints figures; not a test).

Closed-loop load (wrk if installed, else a Python keep-alive loader) at several concurrencies
against `python -m serving` (with and without --enable_batching), the in-process signature call
rate, and a baseline Flask server doing one `tf.saved_model.load` signature call per request.

    .venv/bin/python bench/bench_serving.py [--model_base_path DIR] [--duration 20] [--repeats 3]
        [--reloads 20] [--reloads-only]

`--reloads N` first reports the server's resident memory over N version swaps (0 skips it).

On this 2-core machine the load generator shares the cores with the server, and a run's
throughput depends on how the scheduler places the threads: repeated runs of the same server
spread widely (docs/performance.md, "Model server"). The batching server is therefore started
`--repeats` times (a fresh process each); the table gives the median run per level, and the
spread is printed. One run of the other servers serves as reference.

Last section (own function, `first_requests_after_swap`): latency of the first requests sent to a
version right after it became AVAILABLE, with --enable_model_warmup true and false (`--swap-only`
runs just that section).

Before/after a server change, in one run (so both see the same machine load):
`--compare_with CHECKOUT` starts the server of another checkout (e.g. `git worktree add /tmp/before
HEAD~1`) and this tree's alternately, with and without batching; `--http_layer_only` measures the CPU
time per request of `serving/http/server.py` alone (with `--compare_with`: of both trees);
`--loop_calls` counts the Python calls per request on the REST event loop and on the model-run threads of
a real server under load (with `--compare_with`: both trees and the functions that differ; with
`--without_batching`: the server without batching), a figure machine load does not change.

Default model: serving_model/customer-model (the pipeline's push); if absent, a tiny model with
the same 13 raw-feature signature is built in a temporary directory.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common.facts import DEFAULT_SERVING_DIR, MODEL_NAME  # noqa: E402
from modules.features import PROBABILITY_OUTPUT  # noqa: E402

CUSTOMER = {
    "Age": 30, "Gender": "Male", "Annual_Income": 50.5, "Total_Spend": 2000.0, "Years_as_Customer": 3,
    "Num_of_Purchases": 20, "Average_Transaction_Amount": 100.0, "Num_of_Returns": 1,
    "Num_of_Support_Contacts": 2, "Satisfaction_Score": 4, "Last_Purchase_Days_Ago": 30,
    "Email_Opt_In": "True", "Promotion_Response": "Responded",
}
BODY = json.dumps({"instances": [CUSTOMER]})
PATH = f"/v1/models/{MODEL_NAME}:predict"


def build_fallback_model(base: Path) -> Path:
    """A small Keras-free model with the pipeline's raw-feature `serving_default` signature."""
    import tensorflow as tf

    dtypes = {k: (tf.string if isinstance(v, str) else tf.int64 if isinstance(v, int) else tf.float32)
              for k, v in CUSTOMER.items()}

    class Churn(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable(tf.random.normal([len(dtypes)], stddev=0.01, seed=1))

        @tf.function(input_signature=[tf.TensorSpec([None], d, name=k) for k, d in dtypes.items()])
        def serve(self, *features):  # type: ignore[no-untyped-def]
            cols = [tf.strings.to_hash_bucket_fast(f, 10) if f.dtype == tf.string else f for f in features]
            x = tf.stack([tf.cast(c, tf.float32) for c in cols], axis=1)
            p = tf.sigmoid(tf.reduce_sum(x * self.w, axis=1))
            return {"churn_probability": p, "churn": tf.cast(p > 0.5, tf.int64)}

    model = Churn()
    tf.saved_model.save(model, str(base / "1"), signatures={"serving_default": model.serve})
    return base


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("POST", PATH, BODY)
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("server did not become ready")


def run_wrk(port: int, concurrency: int, seconds: int) -> dict[str, float]:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(BODY)}\n'
                      'wrk.headers["Content-Type"] = "application/json"\n')
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s", str(script),
                          f"http://127.0.0.1:{port}{PATH}"], capture_output=True, text=True).stdout
    script.unlink()

    def ms(label: str) -> float:
        match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out)
        if not match:
            return float("nan")
        return float(match.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[match.group(2)]

    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|timeout|connect|read|write):? (\d+)", out))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50": ms("50%"), "p99": ms("99%"), "errors": errors, "requests": requests}


def run_python_loader(port: int, concurrency: int, seconds: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = [0]
    stop = time.time() + seconds
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        local: list[float] = []
        while time.time() < stop:
            started = time.perf_counter()
            try:
                conn.request("POST", PATH, BODY)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            local.append((time.perf_counter() - started) * 1e3)
            if not ok:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    pick = (lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]) if latencies else (lambda q: 0)
    return {"rps": len(latencies) / seconds, "p50": pick(0.5), "p99": pick(0.99), "errors": errors[0],
            "requests": len(latencies)}


def load(port: int, concurrency: int, seconds: int) -> dict[str, float]:
    return (run_wrk if shutil.which("wrk") else run_python_loader)(port, concurrency, seconds)


def in_process_rate(base: Path, seconds: float) -> float:
    import numpy as np

    from serving.core.servable import Servable
    from serving.core.types import NUMPY_DTYPES, ServableId

    version = max(int(p.name) for p in base.iterdir() if p.name.isdigit())
    servable = Servable.load(ServableId(MODEL_NAME, version), base / str(version))
    signature = servable.signatures["serving_default"]
    inputs = {k: np.array([CUSTOMER[k].encode() if isinstance(CUSTOMER[k], str) else CUSTOMER[k]],
                          dtype=NUMPY_DTYPES[s.dtype]) for k, s in signature.inputs.items()}
    calls, stop = 0, time.time() + seconds
    while time.time() < stop:
        signature.run(inputs)
        calls += 1
    return calls / seconds


def baseline_server(base: Path, port: int) -> None:
    """What a user might write: Flask + tf.saved_model.load, one signature call per request."""
    import tensorflow as tf
    from flask import Flask, jsonify, request

    version = max(int(p.name) for p in base.iterdir() if p.name.isdigit())
    fn = tf.saved_model.load(str(base / str(version))).signatures["serving_default"]
    app = Flask("baseline")

    @app.post(PATH)
    def predict():  # type: ignore[no-untyped-def]
        rows = request.get_json(force=True)["instances"]
        spec = fn.structured_input_signature[1]
        inputs = {k: tf.constant([r[k] for r in rows], dtype=s.dtype) for k, s in spec.items()}
        outputs = fn(**inputs)
        return jsonify({"predictions": [{k: v.numpy()[i].item() for k, v in outputs.items()}
                                        for i in range(len(rows))]})

    app.run("127.0.0.1", port, threaded=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


MONITORING_FLAG = "--monitoring_config_file=serving/config/monitoring.config"
"""Prometheus metrics on the REST port (path in that file), for `batch_totals`."""


def batch_totals(port: int) -> tuple[float, float]:
    """(sum, count) of the server's processed-batch-size histogram
    (`serving.observability.metrics.PROCESSED_BATCH_SIZE`), scraped from
    `/monitoring/prometheus/metrics`; (0, 0) when the server exports none (no batching)."""
    from serving.observability.metrics import PROCESSED_BATCH_SIZE, exported_name

    name = exported_name(PROCESSED_BATCH_SIZE)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/monitoring/prometheus/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    totals = {}
    for suffix in ("_sum", "_count"):
        match = re.search(rf"^{re.escape(name + suffix)}(?:{{[^}}]*}})? (\S+)$", text, re.M)
        totals[suffix] = float(match.group(1)) if match else 0.0
    return totals["_sum"], totals["_count"]


def bench_server(cmd: list[str], port: int, levels: list[int], seconds: int,
                 cwd: Path = ROOT) -> dict[int, dict[str, float]]:
    """Per concurrency level: req/s, p50/p99 ms, errors, requests, and `cpu_us`, the server
    process's CPU time per answered request (microseconds, all threads): unlike req/s it hardly
    depends on how much of the machine other work takes, so it is the figure to compare when the
    machine is shared. With `MONITORING_FLAG` in `cmd`, also `batch`: the mean processed batch
    size over the level's load run (0 without batching)."""
    monitored = MONITORING_FLAG in cmd
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, proc)
        load(port, max(levels), 2)  # warm-up
        results = {}
        for c in levels:
            batches = batch_totals(port) if monitored else (0.0, 0.0)
            cpu = cpu_seconds(proc.pid)
            result = load(port, c, seconds)
            result["cpu_us"] = (cpu_seconds(proc.pid) - cpu) / max(result["requests"], 1) * 1e6
            if monitored:
                rows, count = (a - b for a, b in zip(batch_totals(port), batches, strict=True))
                result["batch"] = rows / count if count else 0.0
            results[c] = result
        return results
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median req/s (upper median for an even count) with its latencies; errors of all runs."""
    middle = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
    return {**middle, "errors": sum(r["errors"] for r in runs)}


def rss_mb(pid: int) -> float:
    """Resident set size of a process (Linux /proc), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _served_versions(port: int) -> dict[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", f"/v1/models/{MODEL_NAME}")
    body = json.loads(conn.getresponse().read())
    return {int(v["version"]): v["state"] for v in body.get("model_version_status", [])}


def bench_reload_memory(base: Path, reloads: int) -> list[float]:
    """Resident memory of `python -m serving` over `reloads` version swaps (our lifecycle goal:
    an unloaded version's session is closed, so memory stays flat instead of growing per reload).

    Each reload copies the model to a staging folder and renames it in as the next version (as
    the Pusher does), waits until that version is AVAILABLE and the previous one END, sends 50
    predicts, and reads VmRSS. Returns the RSS (MiB) before the first reload and after each.
    """
    source = next(p for p in sorted(base.iterdir()) if p.name.isdigit())
    work = Path(tempfile.mkdtemp())
    served = work / MODEL_NAME
    shutil.copytree(source, served / "1")
    rest = free_port()
    cmd = [sys.executable, "-m", "serving", f"--model_base_path={served}", f"--model_name={MODEL_NAME}",
           f"--port={free_port()}", f"--rest_api_port={rest}", "--file_system_poll_wait_seconds=0.2",
           "--file_system_settle_seconds=0"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(rest, proc)
        sizes = [rss_mb(proc.pid)]
        for version in range(2, reloads + 2):
            staging = work / f"staging-{version}"
            shutil.copytree(source, staging)
            staging.rename(served / str(version))
            deadline = time.time() + 120
            while _served_versions(rest).get(version - 1) != "END" or _served_versions(rest)[version] != "AVAILABLE":
                if time.time() > deadline:
                    raise RuntimeError(f"version {version} did not replace {version - 1}")
                time.sleep(0.1)
            shutil.rmtree(served / str(version - 1))
            for _ in range(50):
                conn = http.client.HTTPConnection("127.0.0.1", rest, timeout=10)
                conn.request("POST", PATH, BODY)
                conn.getresponse().read()
            sizes.append(rss_mb(proc.pid))
        return sizes
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)


def report_reload_memory(base: Path, reloads: int) -> None:
    """Prints the reload-memory section of `make bench-serving`."""
    sizes = bench_reload_memory(base, reloads)
    tail = sizes[len(sizes) // 2:]  # after the allocator has warmed up
    slope = (tail[-1] - tail[0]) / max(len(tail) - 1, 1)
    print(f"\nresident memory over {reloads} reloads (MiB): start {sizes[0]:.0f}, after 1 {sizes[1]:.0f}, "
          f"after {reloads} {sizes[-1]:.0f}; growth over the second half {slope:+.2f} MiB/reload")
    print("  per reload: " + " ".join(f"{x:.0f}" for x in sizes))


def first_requests_after_swap(base: Path, warm: bool, requests: int = 10) -> list[float]:
    """Milliseconds of the first `requests` predicts sent to a version right after it became AVAILABLE.

    A server serving a copy of the newest version as version 1 gets version 2 (the same model, with
    its warmup file: the pushed one, else one built for `serving_default` from CUSTOMER) copied in;
    the requests go to /versions/2 as soon as its status says AVAILABLE. `warm` sets
    --enable_model_warmup, so the two runs differ only in whether the file was replayed at load.
    """
    from serving.api import warmup

    newest = base / str(max(int(p.name) for p in base.iterdir() if p.name.isdigit()))
    served = Path(tempfile.mkdtemp(prefix="bench-swap-")) / MODEL_NAME
    shutil.copytree(newest, served / "1")
    rest = free_port()
    cmd = [sys.executable, "-m", "serving", f"--model_base_path={served}", f"--model_name={MODEL_NAME}",
           f"--port={free_port()}", f"--rest_api_port={rest}", "--file_system_poll_wait_seconds=0.1",
           f"--enable_model_warmup={str(warm).lower()}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(rest, proc)
        staging = served / ".incoming"
        shutil.copytree(newest, staging)
        if not warmup.warmup_path(staging).is_file():
            warmup.write_warmup_file(staging, warmup.build_warmup_records(
                warmup.signature_defs(staging), CUSTOMER, MODEL_NAME, only=["serving_default"]))
        os.rename(staging, served / "2")
        conn = http.client.HTTPConnection("127.0.0.1", rest, timeout=60)
        while True:
            conn.request("GET", f"/v1/models/{MODEL_NAME}/versions/2")
            response = conn.getresponse()
            body = response.read()
            if response.status == 200 and json.loads(body)["model_version_status"][0]["state"] == "AVAILABLE":
                break
            time.sleep(0.005)
        latencies = []
        for _ in range(requests):
            started = time.perf_counter()
            conn.request("POST", f"/v1/models/{MODEL_NAME}/versions/2:predict", BODY)
            response = conn.getresponse()
            response.read()
            assert response.status == 200, response.status
            latencies.append((time.perf_counter() - started) * 1e3)
        return latencies
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(served.parent, ignore_errors=True)


def print_swap_latency(base: Path, rounds: int) -> None:
    """The warmup section: first requests after a version swap, with and without warmup replay."""
    print(f"\nfirst requests after a version swap (median of {rounds} fresh servers; ms)")
    print(f"{'--enable_model_warmup':22} {'1st':>8} {'2nd':>8} {'3rd-10th median':>16}")
    for warm in (True, False):
        runs = [first_requests_after_swap(base, warm) for _ in range(rounds)]
        column = [sorted(r[i] for r in runs)[len(runs) // 2] for i in range(2)]
        rest = sorted(sorted(r[2:])[len(r[2:]) // 2] for r in runs)[len(runs) // 2]
        print(f"{str(warm).lower():22} {column[0]:8.1f} {column[1]:8.1f} {rest:16.1f}")


_HTTP_LAYER_SCRIPT = r"""
import asyncio, sys, time
sys.path.insert(0, ".")
import serving.http.server as S
from serving.api.rest import Response
from serving.http.bridge import PendingReply
pending = []
class App:
    def handle(self, request):
        reply = PendingReply(); pending.append(reply); return reply
    def oversized(self, target, limit):
        return Response(413)
class Transport(asyncio.Transport):
    def write(self, data): pass
    def pause_reading(self): pass
    def resume_reading(self): pass
    def can_write_eof(self): return True
    def get_write_buffer_size(self): return 0
class Server:
    app, max_body_bytes, connections, closing = App(), 1 << 24, set(), False
    limits = S.HttpLimits() if hasattr(S, "HttpLimits") else None
    def accepted(self): pass
REQUEST, N = sys.argv[1].encode().decode("unicode_escape").encode("latin-1"), int(sys.argv[2])
async def main():
    conn = S._Connection(Server()); conn.connection_made(Transport())
    answer = Response(200, b'{"predictions": [1]}')
    started = time.thread_time()  # CPU time: other work on the machine does not count
    for _ in range(N):
        conn.data_received(REQUEST)
        pending.pop().resolve(answer)
    print((time.thread_time() - started) / N * 1e6)
asyncio.run(main())
"""


def http_layer_cost(trees: list[Path], rounds: int = 5, requests: int = 100_000) -> None:
    """CPU time per request of the HTTP layer alone (`serving/http/server.py`: framing the request
    wrk sends, handing it over, writing the answer), with a stub app and transport, so a parser
    change can be compared without model or load-generator noise. Best of `rounds` fresh processes,
    trees alternating."""
    request = (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:8501\r\nContent-Length: {len(BODY)}\r\n"
               f"Content-Type: application/json\r\n\r\n{BODY}").encode().decode("latin-1")
    escaped = request.encode("unicode_escape").decode("ascii")
    best: dict[Path, float] = {}
    for _ in range(rounds):
        for tree in trees:
            out = subprocess.run([sys.executable, "-c", _HTTP_LAYER_SCRIPT, escaped, str(requests)], cwd=tree,
                                 capture_output=True, text=True, check=True).stdout
            best[tree] = min(best.get(tree, float("inf")), float(out.split()[-1]))
    print(f"\nHTTP layer alone, one keep-alive connection, best of {rounds} x {requests:,} requests:")
    for tree, micros in best.items():
        print(f"  {tree}: {micros:.1f} us per request")


def observed_output_flag(tree: Path) -> list[str]:
    """`--observed_output` as `make serve` passes it (the probability histogram is part of the measured
    path), for a checkout whose server has the flag; older servers observe churn_probability unasked."""
    server_config = tree / "serving" / "config" / "server_config.py"
    known = server_config.is_file() and "--observed_output" in server_config.read_text()
    return [f"--observed_output={PROBABILITY_OUTPUT}"] if known else []


_LOOP_PROFILE_SCRIPT = r"""
import atexit, cProfile, os, runpy, sys, threading
sys.path.insert(0, os.getcwd())
PROFILED = ("rest-loop", "session-run", "batch_threads")  # the REST loop and the model-run threads
profiles, lock = [], threading.Lock()
run = threading.Thread.run
def profiled(self):
    if not self.name.startswith(PROFILED):
        return run(self)
    profile = cProfile.Profile()
    with lock:
        profiles.append((self.name, profile))
    profile.enable()
    try:
        return run(self)
    finally:
        profile.disable()
threading.Thread.run = profiled
def dump():  # daemon worker threads never return: their profiles are written at exit
    for index, (name, profile) in enumerate(profiles):
        profile.create_stats()
        profile.dump_stats(os.path.join(os.environ["LOOP_PROFILE_OUT"], f"{name}.{index}.prof"))
atexit.register(dump)
sys.argv = ["serving"] + sys.argv[1:]
runpy.run_module("serving", run_name="__main__", alter_sys=True)
"""


def loop_calls(trees: list[Path], base: Path, seconds: int, batching: bool = True) -> None:
    """Python function calls per request on the REST event-loop thread (`rest-loop`) and on the
    threads that run the model (`session-run_*` without batching, the batch threads with it):
    cProfile in those threads of a real server under load, divided by the `RestApi.handle` calls.
    A count, so unlike req/s it does not depend on how busy the machine is. Prints the totals and
    the functions whose calls per request differ between the trees."""
    import pstats
    extra = ["--enable_batching", "--batching_parameters_file=serving/config/batching.config"] if batching else []
    counts: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "loop_profile.py"
        script.write_text(_LOOP_PROFILE_SCRIPT)
        for index, tree in enumerate(trees):
            out = Path(tmp) / str(index)
            out.mkdir()
            rest = free_port()
            cmd = [sys.executable, str(script), f"--model_base_path={base}", f"--model_name={MODEL_NAME}",
                   f"--port={free_port()}", f"--rest_api_port={rest}", *observed_output_flag(tree), *extra]
            proc = subprocess.Popen(cmd, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    env={**os.environ, "LOOP_PROFILE_OUT": str(out)})
            try:
                wait_ready(rest, proc)
                load(rest, 64, seconds)
            finally:
                proc.terminate()
                proc.wait(timeout=60)
            calls: dict[str, float] = {}
            per_role = {"loop": 0.0, "model threads": 0.0}
            for path in out.glob("*.prof"):
                role = "loop" if path.name.startswith("rest-loop") else "model threads"
                stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
                for (file, _, func), (_, ncalls, *_rest) in stats.items():
                    key = f"{role}: {Path(file).name}:{func}"
                    calls[key] = calls.get(key, 0) + ncalls
                    per_role[role] += ncalls
            requests = calls.get("loop: rest.py:handle", 0) or float("nan")
            counts.append({k: v / requests for k, v in calls.items()})
            print(f"{tree} ({'batching' if batching else 'no batching'}): {requests:,.0f} requests, "
                  f"{per_role['loop'] / requests:.1f} Python calls per request on the event loop, "
                  f"{per_role['model threads'] / requests:.1f} on the model-run threads")
    if len(counts) == 2:
        before, after = counts
        changed = sorted(set(before) | set(after), key=lambda k: -abs(after.get(k, 0) - before.get(k, 0)))
        print(f"{'calls/req before':>17} {'after':>7}  thread: function")
        for key in changed[:40]:
            if abs(after.get(key, 0) - before.get(key, 0)) >= 0.5:
                print(f"{before.get(key, 0):17.2f} {after.get(key, 0):7.2f}  {key}")


def compare_with_checkout(other: Path, base: Path, levels: list[int], seconds: int, repeats: int) -> None:
    """Before/after in one run: `python -m serving` from `other` (another checkout's root, e.g. the
    commit before a server change) and from this tree, started alternately `repeats` times per mode
    (with and without batching) so both see the same machine load; prints the median run per level."""
    py = sys.executable
    modes = (("batching", ["--enable_batching", "--batching_parameters_file=serving/config/batching.config"]),
             ("no batching", []))
    trees = (("other", other.resolve()), ("this", ROOT))
    runs: dict[tuple, list[dict[int, dict[str, float]]]] = {}
    for mode, extra in modes:
        for _ in range(max(repeats, 1)):
            for tree, root in trees:
                rest = free_port()
                cmd = [py, "-m", "serving", f"--model_base_path={base}", f"--model_name={MODEL_NAME}",
                       f"--port={free_port()}", f"--rest_api_port={rest}", *observed_output_flag(root), *extra,
                       MONITORING_FLAG]
                runs.setdefault((mode, tree), []).append(bench_server(cmd, rest, levels, seconds, cwd=root))
    print(f"\nsame-run comparison: other = {other.resolve()}, this = {ROOT}; median of {repeats} runs each")
    print("cpu us/req: the server's CPU time per request, median of the runs (less load-dependent than req/s);"
          " batch: mean processed batch size per run")
    print(f"{'mode':12} {'tree':6} {'conc':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
          f"{'cpu us/req':>10}  runs (req/s; cpu us/req; batch)")
    for (mode, tree), by_run in runs.items():
        for c in levels:
            r = median_run([run[c] for run in by_run])
            cpu = sorted(run[c]["cpu_us"] for run in by_run)
            spread = ", ".join(f"{run[c]['rps']:,.0f}" for run in by_run)
            cpu_spread = ", ".join(f"{run[c]['cpu_us']:.0f}" for run in by_run)
            batch = ", ".join(f"{run[c].get('batch', 0.0):.1f}" for run in by_run)
            print(f"{mode:12} {tree:6} {c:5d} {r['rps']:9.0f} {r['p50']:8.2f} {r['p99']:8.2f} "
                  f"{int(r['errors']):7d} {cpu[len(cpu) // 2]:10.0f}  {spread}; {cpu_spread}; {batch}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model_base_path", type=Path, default=DEFAULT_SERVING_DIR / MODEL_NAME)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--repeats", type=int, default=3, help="fresh batching-server runs (median reported)")
    parser.add_argument("--baseline-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--reloads", type=int, default=20,
                        help="version swaps for the resident-memory section (0 skips it)")
    parser.add_argument("--reloads-only", action="store_true", help="run only the resident-memory section")
    parser.add_argument("--swap-only", action="store_true",
                        help="only the first-requests-after-swap section (warmup on and off)")
    parser.add_argument("--compare_with", type=Path, metavar="CHECKOUT",
                        help="only compare this tree's server with the one in CHECKOUT (another checkout's "
                             "root, e.g. `git worktree add /tmp/before HEAD~1`), alternating, in one run")
    parser.add_argument("--loop_calls", action="store_true",
                        help="only the Python calls per request on the REST event loop (with --compare_with: "
                             "both trees, and the functions that differ)")
    parser.add_argument("--without_batching", action="store_true",
                        help="with --loop_calls: profile the server without --enable_batching")
    parser.add_argument("--http_layer_only", action="store_true",
                        help="only the HTTP layer's CPU time per request (with --compare_with: both trees)")
    args = parser.parse_args(argv)
    base = args.model_base_path
    if args.baseline_server:
        baseline_server(base, args.baseline_server)
        return 0
    if args.http_layer_only:
        http_layer_cost([args.compare_with.resolve(), ROOT] if args.compare_with else [ROOT])
        return 0
    if not base.is_dir() or not any(p.name.isdigit() for p in base.iterdir()):
        base = build_fallback_model(Path(tempfile.mkdtemp()) / MODEL_NAME)
        print(f"no pushed model found; using a tiny stand-in at {base}")
    if args.swap_only:
        print_swap_latency(base, max(args.repeats, 1))
        return 0
    if args.loop_calls:
        loop_calls([args.compare_with.resolve(), ROOT] if args.compare_with else [ROOT], base, args.duration,
                   batching=not args.without_batching)
        return 0
    if args.compare_with:
        compare_with_checkout(args.compare_with, base, args.concurrency, args.duration, args.repeats)
        return 0
    print(f"model: {base}   load generator: {'wrk' if shutil.which('wrk') else 'python threads'}   "
          f"cores: {os.cpu_count()}   duration: {args.duration}s per level")
    if args.reloads > 0:
        report_reload_memory(base, args.reloads)
    if args.reloads_only:
        return 0
    rate = in_process_rate(base, 5)
    print(f"in-process signature call rate (1 thread, batch 1): {rate:,.0f} calls/s")
    py = sys.executable
    results = {}
    batching = ["--enable_batching", "--batching_parameters_file=serving/config/batching.config"]
    for label, extra, repeats in (("server+batching", batching, max(args.repeats, 1)),
                                  ("server (no batching)", [], 1)):
        runs = []
        for _ in range(repeats):
            rest = free_port()
            cmd = [py, "-m", "serving", f"--model_base_path={base}", f"--model_name={MODEL_NAME}",
                   f"--port={free_port()}", f"--rest_api_port={rest}", *observed_output_flag(ROOT), *extra]
            runs.append(bench_server(cmd, rest, args.concurrency, args.duration))
        results[label] = {c: median_run([run[c] for run in runs]) for c in args.concurrency}
        if repeats > 1:
            for c in args.concurrency:
                spread = ", ".join(f"{run[c]['rps']:,.0f}" for run in runs)
                print(f"{label} at concurrency {c}: {repeats} runs, req/s {spread}")
    port = free_port()
    results["flask baseline"] = bench_server([py, __file__, f"--model_base_path={base}",
                                              f"--baseline-server={port}"], port, args.concurrency, args.duration)
    print(f"\n{'server':22} {'conc':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for label, by_level in results.items():
        for c, r in by_level.items():
            print(f"{label:22} {c:5d} {r['rps']:9.0f} {r['p50']:8.2f} {r['p99']:8.2f} {int(r['errors']):7d}")
    print()
    for c in args.concurrency:
        base_rps = results["flask baseline"][c]["rps"] or float("nan")
        ours = results["server+batching"][c]["rps"]
        print(f"concurrency {c:3d}: server+batching / flask = {ours / base_rps:5.1f}x   "
              f"server+batching / in-process calls = {ours / rate:5.2f}x")
    print_swap_latency(base, max(args.repeats, 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

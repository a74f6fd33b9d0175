"""`make serve`: the model server plus a local Prometheus that scrapes it; Ctrl-C stops both.

    python -m monitoring.serve [--prometheus-port 9090] [--prometheus-storage .prometheus]
                               [--scrape-interval 15s] [model server flags ...]

Every flag not listed above goes to `python -m serving`, after `--observed_output=churn_probability`
(the churn model's probability output, which the server's model metrics and request log record; the
server itself knows no model's outputs): a later `--observed_output` overrides it.
Prometheus is optional: when it is not installed (or the server exposes no metrics) the server runs alone
and the reason is printed, with the command that installs Prometheus. The exit code is the model server's.
"""
from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from google.protobuf import text_format

from common.facts import DEFAULT_HOST, REST_PORT
from modules.features import PROBABILITY_OUTPUT
from monitoring import prometheus as prom
from serving.config.protos import MonitoringConfig, prometheus_path

STOP_TIMEOUT_SECONDS = 30.0
"""How long each process gets to stop after SIGTERM before it is killed."""
_WILDCARD_HOSTS = ("", "0.0.0.0", "::")


def scrape_target(server_args: Sequence[str]) -> tuple[tuple[str, str] | None, str]:
    """((host:port, metrics path), "") for the server these flags start, or (None, why not)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--rest_api_port", type=int, default=REST_PORT)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--monitoring_config_file", default=None)
    try:
        args, _ = parser.parse_known_args(list(server_args))
    except SystemExit:  # a malformed value: the server itself reports it
        return None, "the model server flags could not be read"
    if args.rest_api_port == 0:
        return None, "REST is disabled (--rest_api_port=0), and metrics are served on the REST port"
    if args.monitoring_config_file is None:
        return None, "no --monitoring_config_file, so the server exports no metrics"
    try:
        text = Path(args.monitoring_config_file).read_text()
        path = prometheus_path(text_format.Parse(text, MonitoringConfig()))
    except (OSError, text_format.ParseError):
        return None, f"{args.monitoring_config_file} cannot be read (the server will say why)"
    if path is None:
        return None, f"{args.monitoring_config_file} does not enable prometheus_config"
    host = DEFAULT_HOST if args.host in _WILDCARD_HOSTS else args.host
    host = f"[{host}]" if ":" in host else host
    return (f"{host}:{args.rest_api_port}", path), ""


def start_prometheus(target: tuple[str, str], port: int, storage: Path,
                     scrape_interval: str | None) -> tuple[subprocess.Popen[bytes], IO[bytes]] | None:
    """Starts Prometheus on 127.0.0.1:`port` (output in `<storage>/prometheus.log`), or explains why not."""
    binary = prom.find_binary()
    if binary is None:
        print("Prometheus is not installed, so the model server runs without it. Install it with:\n"
              f"    {prom.install_command()}", file=sys.stderr, flush=True)
        return None
    config = prom.prepare(storage, target[0], target[1], scrape_interval)
    log = open(storage / "prometheus.log", "ab")  # noqa: SIM115 (closed by main())
    process = subprocess.Popen(prom.command(binary, config, storage, port=port), stdout=log,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    base = f"http://{prom.PROMETHEUS_HOST}:{port}"
    print(f"Prometheus: {base} (scraping {target[0]}{target[1]}), log: {storage / 'prometheus.log'}\n"
          f"Dashboard:  {base}{prom.CONSOLE_PATH}", flush=True)
    return process, log


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def server_command(server_args: Sequence[str]) -> list[str]:
    """`python -m serving`'s flags: the churn model's observed output first, so the caller's flags win (argparse
    keeps the last value)."""
    return [f"--observed_output={PROBABILITY_OUTPUT}", *server_args]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m monitoring.serve", allow_abbrev=False,
        description="Model server plus a local Prometheus; other flags go to `python -m serving`.")
    parser.add_argument("--prometheus-port", type=int, default=prom.PROMETHEUS_PORT)
    parser.add_argument("--prometheus-storage", type=Path, default=prom.DEFAULT_STORAGE,
                        help="TSDB, generated config and log (default: %(default)s)")
    parser.add_argument("--scrape-interval", default=None,
                        help="override prometheus.yml's scrape and rule interval (e.g. 1s in tests)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs both until Ctrl-C/SIGTERM or the server exits; returns the server's exit code.

    Both children run in their own session, so a terminal's Ctrl-C reaches only this process, which
    then stops each child with exactly one SIGTERM (a second signal could land while a child is
    already shutting down and kill it).
    """
    args, server_args = build_parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server = subprocess.Popen([sys.executable, "-m", "serving", *server_command(server_args)], start_new_session=True)
    processes: list[subprocess.Popen[bytes]] = [server]
    started = None
    try:
        target, why_not = scrape_target(server_args)
        if target is None:
            print(f"Prometheus not started: {why_not}.", file=sys.stderr, flush=True)
        else:
            started = start_prometheus(target, args.prometheus_port, args.prometheus_storage.resolve(),
                                       args.scrape_interval)
        if started:
            processes.append(started[0])
        prometheus_reported = False
        while not stop.wait(0.5) and server.poll() is None:
            if started and started[0].poll() is not None and not prometheus_reported:
                print(f"Prometheus exited with code {started[0].returncode} (see {args.prometheus_storage}/"
                      "prometheus.log); the model server keeps running.", file=sys.stderr, flush=True)
                prometheus_reported = True
    finally:
        codes = [_stop(p) for p in reversed(processes)]  # Prometheus first: no scrape errors at the end
        if started:
            started[1].close()
    code = codes[-1]
    return 128 - code if code < 0 else code  # killed by signal N: the shell's 128 + N


if __name__ == "__main__":
    sys.exit(main())

"""`make serve`: the model server plus a local Prometheus that scrapes it, with a Pushgateway and an
Alertmanager next to it; Ctrl-C stops them all.

    python -m monitoring.serve [--prometheus-port 9090] [--prometheus-storage .prometheus]
                               [--scrape-interval 15s]
                               [--pushgateway-port 9091] [--pushgateway-storage .pushgateway]
                               [--alertmanager-port 9093] [--alertmanager-storage .alertmanager]
                               [--alertmanager-config monitoring/alertmanager.yml] [--pid-file PATH]
                               [model server flags ...]
    python -m monitoring.serve --stop --pid-file PATH      # make stop

Every flag not listed above goes to `python -m serving`, after `--observed_output=churn_probability`
(the churn model's probability output, which the server's model metrics and request log record; the
server itself knows no model's outputs): a later `--observed_output` overrides it.
Prometheus is optional: when it is not installed (or the server exposes no metrics) the server runs alone
and the reason is printed, with the command that installs Prometheus. With Prometheus, the Pushgateway
(Debian `prometheus-pushgateway`: where batch jobs such as `monitoring.outcomes` push) and Alertmanager
(Debian `prometheus-alertmanager`: where Prometheus sends its alerts) start too when installed; each one
that is not is left out with one line saying how to install it. Prometheus then scrapes the Pushgateway
(`honor_labels`) and sends alerts to that Alertmanager (`monitoring.alerting.with_alerting`). A port that
is already taken (e.g. by the Debian packages' own services on 9090/9091/9093) is replaced by a free one,
and the launcher says so. The exit code is the model server's.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from google.protobuf import text_format

from common import exit_codes
from common.facts import ALERTMANAGER_PORT, DEFAULT_HOST, GRPC_PORT, PROMETHEUS_PORT, PUSHGATEWAY_PORT, REST_PORT
from modules.features import PROBABILITY_OUTPUT
from monitoring import alerting
from monitoring import prometheus as prom
from serving.config.protos import MonitoringConfig, prometheus_path

STOP_TIMEOUT_SECONDS = 30.0
"""How long each process gets to stop after SIGTERM before it is killed."""
LAUNCHER_MODULE = "monitoring.serve"
"""This module's name as it appears on a launcher's command line: `stop_running` signals only such a process."""
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


def busy_server_ports(server_args: Sequence[str]) -> list[str]:
    """The model server's ports these flags choose that another process holds now, as `REST 127.0.0.1:8501`.

    Checked before anything starts: a second `make serve` would otherwise load the model, fail to bind REST
    (TF Serving then keeps serving gRPC alone) while its Prometheus scrapes the first server. Port 0 is
    not checked (REST off / any free port); a wildcard `--host` is checked on all addresses."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--port", type=int, default=GRPC_PORT)
    parser.add_argument("--rest_api_port", type=int, default=REST_PORT)
    parser.add_argument("--host", default=DEFAULT_HOST)
    try:
        args, _ = parser.parse_known_args(list(server_args))
    except SystemExit:  # a malformed value: the server itself reports it
        return []
    busy = []
    for name, port in (("gRPC", args.port), ("REST", args.rest_api_port)):
        if 0 < port <= 65535 and port_or_free(port, "" if args.host in _WILDCARD_HOSTS else args.host) != port:
            busy.append(f"{name} {args.host}:{port}")
    return busy


@dataclass
class Child:
    """A started helper process (Prometheus, Pushgateway, Alertmanager) and where its output goes."""
    name: str
    address: str
    """`127.0.0.1:port` it listens on."""
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]
    reported: bool = False


def port_or_free(port: int, host: str = prom.PROMETHEUS_HOST) -> int:
    """`port` when it can be bound on `host` now, else a free port the OS picks (0 also means: any free port).

    SO_REUSEADDR as the Go servers set it: a port left in TIME_WAIT by a stopped server counts as free."""
    for candidate in (port, 0) if port else (0,):
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, candidate))
            except OSError:
                continue
            chosen: int = sock.getsockname()[1]
            return chosen
    raise OSError(f"no free port on {host}")


def _port(name: str, flag: str, requested: int) -> int:
    port = port_or_free(requested)
    if requested and port != requested:
        print(f"{name}: port {requested} is in use, so {name} listens on {port} instead ({flag} chooses).",
              file=sys.stderr, flush=True)
    return port


def _spawn(name: str, address: str, cmd: list[str], storage: Path, log_name: str) -> Child:
    storage.mkdir(parents=True, exist_ok=True)
    log_path = storage / log_name
    log = open(log_path, "ab")  # noqa: SIM115 (closed by main())
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    return Child(name, address, process, log_path, log)


def _installed(binary_name: str, package: str, consequence: str) -> str | None:
    """The path of `binary_name`, or None after printing `consequence` and the command that installs `package`."""
    binary = prom.find_binary(binary_name)
    if binary is None:
        print(f"{consequence} Install it with:\n    {prom.install_command(package)}", file=sys.stderr, flush=True)
    return binary


def start_pushgateway(port: int, storage: Path) -> Child | None:
    """Starts the Pushgateway on 127.0.0.1:`port` (a free one when taken; pushed metrics kept in
    `<storage>/pushgateway.metrics`, output in `<storage>/pushgateway.log`), or says how to install it and
    returns None."""
    binary = _installed(alerting.PUSHGATEWAY_BINARY, alerting.PUSHGATEWAY_PACKAGE,
                        "The Pushgateway is not installed, so batch jobs have nowhere to push.")
    if binary is None:
        return None
    port = _port("Pushgateway", "--pushgateway-port", port)
    cmd = alerting.pushgateway_command(binary, port=port, persistence_file=storage / "pushgateway.metrics")
    return _spawn("Pushgateway", f"{prom.PROMETHEUS_HOST}:{port}", cmd, storage, "pushgateway.log")


def start_alertmanager(port: int, storage: Path, config: Path) -> Child | None:
    """Starts Alertmanager on 127.0.0.1:`port` (a free one when taken) with `config` (silences and notification log in
    `<storage>/data`, output in `<storage>/alertmanager.log`), or says how to install it and returns None."""
    binary = _installed(alerting.ALERTMANAGER_BINARY, alerting.ALERTMANAGER_PACKAGE,
                        "Alertmanager is not installed, so alerts stay on Prometheus' /alerts page.")
    if binary is None:
        return None
    port = _port("Alertmanager", "--alertmanager-port", port)
    cmd = alerting.alertmanager_command(binary, config.resolve(), storage / "data", port=port)
    return _spawn("Alertmanager", f"{prom.PROMETHEUS_HOST}:{port}", cmd, storage, "alertmanager.log")


def start_prometheus(target: tuple[str, str], port: int, storage: Path, scrape_interval: str | None,
                     pushgateway: str | None = None, alertmanager: str | None = None) -> Child | None:
    """Starts Prometheus on 127.0.0.1:`port` (a free one when taken; output in `<storage>/prometheus.log`),
    scraping `target` and the Pushgateway at `pushgateway` and alerting the Alertmanager at `alertmanager`
    (`host:port`, when not None), or explains why not and returns None."""
    binary = prom.find_binary()
    if binary is None:
        print("Prometheus is not installed, so the model server runs without it. Install it with:\n"
              f"    {prom.install_command()}", file=sys.stderr, flush=True)
        return None
    config = prom.write_config(storage, alerting.with_alerting(
        prom.runtime_config(target[0], target[1], scrape_interval), pushgateway, alertmanager))
    port = _port("Prometheus", "--prometheus-port", port)
    base = f"http://{prom.PROMETHEUS_HOST}:{port}"
    child = _spawn("Prometheus", base.removeprefix("http://"), prom.command(binary, config, storage, port=port),
                   storage, "prometheus.log")
    print(f"Prometheus: {base} (scraping {target[0]}{target[1]}), log: {child.log_path}\n"
          f"Dashboard:  {base}{prom.CONSOLE_PATH}", flush=True)
    return child


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
    parser.add_argument("--prometheus-port", type=int, default=PROMETHEUS_PORT)
    parser.add_argument("--prometheus-storage", type=Path, default=prom.DEFAULT_STORAGE,
                        help="TSDB, generated config and log (default: %(default)s)")
    parser.add_argument("--scrape-interval", default=None,
                        help="override prometheus.yml's scrape and rule interval (e.g. 1s in tests)")
    parser.add_argument("--pushgateway-port", type=int, default=PUSHGATEWAY_PORT,
                        help="0: any free port (default: %(default)s, or a free one when taken)")
    parser.add_argument("--pushgateway-storage", type=Path, default=alerting.PUSHGATEWAY_STORAGE,
                        help="pushed metrics (kept across restarts) and log (default: %(default)s)")
    parser.add_argument("--alertmanager-port", type=int, default=ALERTMANAGER_PORT,
                        help="0: any free port (default: %(default)s, or a free one when taken)")
    parser.add_argument("--alertmanager-storage", type=Path, default=alerting.ALERTMANAGER_STORAGE,
                        help="silences, notification log and log (default: %(default)s)")
    parser.add_argument("--alertmanager-config", type=Path, default=alerting.ALERTMANAGER_CONFIG,
                        help="routes and receivers (default: %(default)s)")
    parser.add_argument("--pid-file", type=Path, default=None,
                        help="write this launcher's pid there while it runs (make serve: .serving/serve.pid)")
    parser.add_argument("--stop", action="store_true",
                        help="stop the launcher whose pid --pid-file holds, and wait for it (make stop)")
    return parser


def _launcher_alive(pid: int) -> bool:
    try:
        return LAUNCHER_MODULE.encode() in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False


def stop_running(pid_file: Path, timeout: float = 4 * STOP_TIMEOUT_SECONDS) -> int:
    """`make stop`: SIGTERM to the launcher whose pid `pid_file` holds (written by `--pid-file`), then wait until it
    has stopped its processes and exited. Returns exit_codes.OK when none runs any more (also when none ran: a missing
    file, or a stale one whose pid is no longer a launcher, which is removed and never signalled), FAILED when it is
    still running after `timeout` seconds."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        print(f"No `make serve` is running (no {pid_file}).")
        return exit_codes.OK
    if not _launcher_alive(pid):
        pid_file.unlink(missing_ok=True)
        print(f"No `make serve` is running (process {pid} in {pid_file} has exited; file removed).")
        return exit_codes.OK
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _launcher_alive(pid):
        if time.monotonic() > deadline:
            print(f"error: `make serve` (process {pid}) is still stopping after {timeout:g} s", file=sys.stderr)
            return exit_codes.FAILED
        time.sleep(0.2)
    pid_file.unlink(missing_ok=True)
    print(f"Stopped `make serve` (process {pid}) and the processes it started.")
    return exit_codes.OK


def main(argv: Sequence[str] | None = None) -> int:
    """Runs them all until Ctrl-C/SIGTERM or the server exits; returns the server's exit code.

    Every child runs in its own session, so a terminal's Ctrl-C reaches only this process, which
    then stops each child with exactly one SIGTERM (a second signal could land while a child is
    already shutting down and kill it): Prometheus first, then Alertmanager, the Pushgateway, the server.
    """
    args, server_args = build_parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    if args.stop:
        if args.pid_file is None:
            print("error: --stop needs --pid-file", file=sys.stderr)
            return exit_codes.USAGE
        return stop_running(args.pid_file)
    for flag in ("prometheus_port", "pushgateway_port", "alertmanager_port"):
        if not 0 <= getattr(args, flag) <= 65535:
            print(f"error: --{flag.replace('_', '-')} must be a port number (0-65535)", file=sys.stderr)
            return exit_codes.USAGE
    if not args.alertmanager_config.is_file():
        print(f"error: --alertmanager-config {args.alertmanager_config} does not exist", file=sys.stderr)
        return exit_codes.USAGE
    busy = busy_server_ports(server_args)
    if busy:
        print(f"error: the model server's port is in use ({', '.join(busy)}): is another `make serve` running? "
              "Stop it (Ctrl-C in its terminal), or serve on other ports: make serve ARGS='--port=8600 "
              "--rest_api_port=8601'", file=sys.stderr)
        return exit_codes.FAILED
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.pid_file is not None:
        args.pid_file.parent.mkdir(parents=True, exist_ok=True)
        args.pid_file.write_text(f"{os.getpid()}\n")
    server = subprocess.Popen([sys.executable, "-m", "serving", *server_command(server_args)], start_new_session=True)
    children: list[Child] = []
    try:
        target, why_not = scrape_target(server_args)
        if target is None:
            print(f"Prometheus not started: {why_not}.", file=sys.stderr, flush=True)
        elif prom.find_binary() is None:
            start_prometheus(target, args.prometheus_port, args.prometheus_storage.resolve(), args.scrape_interval)
        else:
            gateway = start_pushgateway(args.pushgateway_port, args.pushgateway_storage.resolve())
            manager = start_alertmanager(args.alertmanager_port, args.alertmanager_storage.resolve(),
                                         args.alertmanager_config)
            children += [c for c in (gateway, manager) if c]
            started = start_prometheus(target, args.prometheus_port, args.prometheus_storage.resolve(),
                                       args.scrape_interval, gateway.address if gateway else None,
                                       manager.address if manager else None)
            children += [started] if started else []
            if gateway:
                print(f"Pushgateway:  http://{gateway.address} (batch jobs: --pushgateway {gateway.address}), "
                      f"log: {gateway.log_path}", flush=True)
            if manager:
                print(f"Alertmanager: http://{manager.address} (receives Prometheus' alerts; routes: "
                      f"{args.alertmanager_config}), log: {manager.log_path}", flush=True)
        while not stop.wait(0.5) and server.poll() is None:
            for child in children:
                if child.process.poll() is not None and not child.reported:
                    print(f"{child.name} exited with code {child.process.returncode} (see {child.log_path}); "
                          "the model server keeps running.", file=sys.stderr, flush=True)
                    child.reported = True
    finally:
        for child in reversed(children):  # Prometheus first: no scrape errors at the end
            _stop(child.process)
            child.log.close()
        code = _stop(server)
        if args.pid_file is not None and args.pid_file.is_file() \
                and args.pid_file.read_text().strip() == str(os.getpid()):  # a later launcher's file stays
            args.pid_file.unlink()
    return 128 - code if code < 0 else code  # killed by signal N: the shell's 128 + N


if __name__ == "__main__":
    sys.exit(main())

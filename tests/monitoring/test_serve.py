"""`monitoring.serve` without processes: which target it scrapes, and what it says without Prometheus."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common import exit_codes
from common.facts import DEFAULT_HOST, METRICS_PATH, PROJECT_ROOT, REST_PORT
from modules.features import PROBABILITY_OUTPUT
from monitoring import alerting, serve
from monitoring import prometheus as prom

MONITORING_CONFIG = str(PROJECT_ROOT / "serving" / "config" / "monitoring.config")


@pytest.mark.parametrize("flags, target", [
    ([f"--monitoring_config_file={MONITORING_CONFIG}"], f"{DEFAULT_HOST}:{REST_PORT}"),
    (["--rest_api_port", "9001", "--monitoring_config_file", MONITORING_CONFIG, "--port=9000"],
     f"{DEFAULT_HOST}:9001"),
    (["--host=0.0.0.0", "--rest_api_port=9001", f"--monitoring_config_file={MONITORING_CONFIG}"],
     f"{DEFAULT_HOST}:9001"),
    (["--host=::1", "--rest_api_port=9001", f"--monitoring_config_file={MONITORING_CONFIG}"], "[::1]:9001"),
])
def test_scrape_target_follows_the_server_flags(flags: list, target: str) -> None:
    assert serve.scrape_target(flags) == ((target, METRICS_PATH), "")


def test_scrape_target_uses_the_configured_path(tmp_path: Path) -> None:
    config = tmp_path / "monitoring.config"
    config.write_text('prometheus_config { enable: true, path: "/custom/metrics" }')
    assert serve.scrape_target([f"--monitoring_config_file={config}"])[0] == (
        f"{DEFAULT_HOST}:{REST_PORT}", "/custom/metrics")


@pytest.mark.parametrize("flags, why", [
    ([], "no --monitoring_config_file"),
    ([f"--monitoring_config_file={MONITORING_CONFIG}", "--rest_api_port=0"], "REST is disabled"),
    (["--monitoring_config_file=/nonexistent.config"], "cannot be read"),
    (["--rest_api_port=abc"], "could not be read"),
])
def test_no_scrape_target_says_why(flags: list, why: str) -> None:
    target, reason = serve.scrape_target(flags)
    assert target is None and why in reason


def test_disabled_prometheus_config_is_no_target(tmp_path: Path) -> None:
    config = tmp_path / "monitoring.config"
    config.write_text("prometheus_config { enable: false }")
    target, reason = serve.scrape_target([f"--monitoring_config_file={config}"])
    assert target is None and "does not enable prometheus_config" in reason


def test_without_prometheus_the_install_command_is_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(prom, "find_binary", lambda name="prometheus": None)
    assert serve.start_prometheus(("127.0.0.1:1", METRICS_PATH), 9, tmp_path, None) is None
    err = capsys.readouterr().err
    assert "Prometheus is not installed, so the model server runs without it" in err
    assert err.strip().endswith(prom.install_command()) and "apt-get install -y prometheus" in err
    assert not list(tmp_path.iterdir())  # nothing written, nothing started


def test_the_launcher_names_the_churn_output_and_the_callers_flag_wins(tmp_path: Path) -> None:
    """make serve's launcher, not the server, knows the churn model's probability output."""
    from serving.config.server_config import from_args

    base = f"--model_base_path={tmp_path}"
    assert from_args(serve.server_command([base])).observed_output == PROBABILITY_OUTPUT
    assert from_args(serve.server_command([base, "--observed_output=other"])).observed_output == "other"


def test_a_taken_port_is_replaced_by_a_free_one() -> None:
    with socket.socket() as taken:
        taken.bind((prom.PROMETHEUS_HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        other = serve.port_or_free(port)
        assert other != port and other > 0
    assert serve.port_or_free(port) == port  # free again
    assert serve.port_or_free(0) > 0


@pytest.mark.parametrize("start, package", [
    (lambda tmp: serve.start_pushgateway(0, tmp), alerting.PUSHGATEWAY_PACKAGE),
    (lambda tmp: serve.start_alertmanager(0, tmp, alerting.ALERTMANAGER_CONFIG), alerting.ALERTMANAGER_PACKAGE),
])
def test_without_pushgateway_or_alertmanager_the_install_command_is_printed(
        start, package: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(prom, "find_binary", lambda name="prometheus": None)
    assert start(tmp_path) is None
    err = capsys.readouterr().err
    assert "is not installed" in err and err.strip().endswith(f"apt-get install -y {package}")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("flags, message", [
    (["--pushgateway-port=70000"], "--pushgateway-port must be a port number"),
    (["--alertmanager-config=/nonexistent.yml"], "--alertmanager-config /nonexistent.yml does not exist"),
])
def test_bad_launcher_flags_exit_2_with_a_message(flags: list, message: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert serve.main(flags) == exit_codes.USAGE
    assert message in capsys.readouterr().err


def test_a_model_server_port_in_use_stops_before_anything_starts(capsys: pytest.CaptureFixture[str]) -> None:
    """A second `make serve` next to a running one: one line naming the port and what to do, exit 1, and no
    server, Prometheus, Pushgateway or Alertmanager started (main returns before spawning any)."""
    with socket.socket() as taken, socket.socket() as spare:
        taken.bind((DEFAULT_HOST, 0))
        taken.listen()
        spare.bind((DEFAULT_HOST, 0))
        busy, free = taken.getsockname()[1], spare.getsockname()[1]
        spare.close()
        assert serve.busy_server_ports([f"--rest_api_port={busy}", f"--port={free}"]) == [
            f"REST {DEFAULT_HOST}:{busy}"]
        assert serve.busy_server_ports(["--rest_api_port", str(free), "--port", str(busy), "--host=0.0.0.0"]) == [
            f"gRPC 0.0.0.0:{busy}"]
        assert serve.busy_server_ports(["--rest_api_port=0", f"--port={free}"]) == []
        assert serve.main([f"--rest_api_port={busy}", f"--port={free}"]) == exit_codes.FAILED
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: the model server's port is in use (REST {DEFAULT_HOST}:{busy})")
    assert "another `make serve` running" in line and "--rest_api_port=" in line


def test_stop_signals_only_a_running_launcher_and_waits_for_it(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`make stop`: the pid in the file gets SIGTERM when its command line is a launcher's, and the call returns
    once it has exited; no file, or a stale pid that is some other process now, signals nothing."""
    pid_file = tmp_path / "serve.pid"
    assert serve.main(["--stop", f"--pid-file={pid_file}"]) == exit_codes.OK
    assert "No `make serve` is running" in capsys.readouterr().out
    # a stand-in launcher: its argv names the module, and it takes 1 s to stop after SIGTERM, like the real one
    code = ("import signal, sys, time; signal.signal(signal.SIGTERM, lambda *_: (time.sleep(1), sys.exit(0)));"
            "time.sleep(120)")
    launcher = subprocess.Popen([sys.executable, "-c", code, serve.LAUNCHER_MODULE])
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        time.sleep(0.5)  # the stand-in installs its handler
        pid_file.write_text(f"{other.pid}\n")
        assert serve.stop_running(pid_file) == exit_codes.OK
        assert other.poll() is None and not pid_file.exists()  # not a launcher: untouched, file removed
        pid_file.write_text(f"{launcher.pid}\n")
        assert serve.main(["--stop", f"--pid-file={pid_file}"]) == exit_codes.OK
        assert launcher.poll() == 0 and not pid_file.exists()
        assert f"Stopped `make serve` (process {launcher.pid})" in capsys.readouterr().out
    finally:
        for process in (launcher, other):
            process.kill()
            process.wait()
    assert serve.main(["--stop"]) == exit_codes.USAGE

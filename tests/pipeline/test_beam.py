"""Beam arguments: DirectRunner modes, the Dataflow/Flink/Spark argument sets, and the CLI flags."""
from __future__ import annotations

from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor

from common import exit_codes
from pipeline import beam, cli

ENV = {"GOOGLE_CLOUD_PROJECT": "acme", "GOOGLE_CLOUD_REGION": "europe-west4", "CHURN_GCS_ROOT": "gs://acme/churn",
       "CHURN_PIPELINE_IMAGE": "europe-docker.pkg.dev/acme/ml/churn-pipeline:1", "FLINK_MASTER": "flink:8081",
       "SPARK_MASTER": "spark://spark:7077"}
RUNNER_CLASS = {"dataflow": "DataflowRunner", "flink": "FlinkRunner", "spark": "SparkRunner"}


def options(args: tuple[str, ...] | list[str]) -> PipelineOptions:
    parsed = PipelineOptions(list(args))
    unknown = set(parsed.get_all_options(retain_unknown_options=True)) - set(parsed.get_all_options())
    assert not unknown, f"Beam does not know these options: {unknown}"
    return parsed


@pytest.mark.parametrize("mode,workers,expected_workers", [("in_memory", 0, 1), ("in_memory", 4, 1),
                                                           ("multi_processing", 0, 0), ("multi_processing", 3, 3)])
def test_direct_runner_modes(mode: str, workers: int, expected_workers: int) -> None:
    direct = options(beam.beam_args(beam.DIRECT, mode, workers)).view_as(DirectOptions)
    assert (direct.direct_running_mode, direct.direct_num_workers) == (mode, expected_workers)


@pytest.mark.parametrize("input_bytes,mode", [(0, "in_memory"), (beam.MULTI_PROCESSING_FROM_BYTES - 1, "in_memory"),
                                              (beam.MULTI_PROCESSING_FROM_BYTES, "multi_processing")])
def test_default_auto_mode_picks_by_input_size(input_bytes: int, mode: str) -> None:
    assert beam.DEFAULT_MODE == beam.AUTO
    direct = options(beam.beam_args(input_bytes=input_bytes)).view_as(DirectOptions)
    assert direct.direct_running_mode == mode


def test_auto_without_the_input_size_is_an_error() -> None:
    with pytest.raises(beam.BeamArgsError, match="auto needs the input's size"):
        beam.beam_args()


def test_cli_auto_measures_the_input(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(b"x" * (beam.MULTI_PROCESSING_FROM_BYTES // 2))
    (tmp_path / "b.csv").write_bytes(b"x" * (beam.MULTI_PROCESSING_FROM_BYTES // 2))
    (tmp_path / "notes.txt").write_bytes(b"x" * beam.MULTI_PROCESSING_FROM_BYTES)  # not input
    args = cli.build_parser().parse_args(["--data", str(tmp_path)])
    assert beam.from_arguments(args, cli.input_bytes(args.data))[0] == "--direct_running_mode=multi_processing"
    args = cli.build_parser().parse_args(["--data", str(tmp_path / "a.csv")])
    assert beam.from_arguments(args, cli.input_bytes(args.data))[0] == "--direct_running_mode=in_memory"


@pytest.mark.parametrize("runner", ["dataflow", "flink", "spark"])
def test_argument_sets_are_valid_beam_options_for_their_runner(runner: str) -> None:
    args = beam.beam_args(runner, env=ENV)
    parsed = options(args)
    assert parsed.view_as(StandardOptions).runner == RUNNER_CLASS[runner]
    assert not any("${" in a for a in args)
    # Workers run the pipeline image, so they have the same TFX, Beam and project modules.
    image_option = "sdk_container_image" if runner == "dataflow" else "environment_config"
    assert parsed.get_all_options()[image_option] == ENV["CHURN_PIPELINE_IMAGE"]


def test_dataflow_set_names_project_region_and_cloud_storage() -> None:
    all_options = options(beam.beam_args("dataflow", env=ENV)).get_all_options()
    assert (all_options["project"], all_options["region"]) == ("acme", "europe-west4")
    assert all_options["temp_location"].startswith("gs://acme/churn/")


def test_extra_arguments_come_last_and_override_the_set() -> None:
    args = beam.beam_args("flink", env=ENV, extra=["--parallelism=8", "--flink_master=other:8081"])
    assert options(args).get_all_options()["flink_master"] == "other:8081"
    assert options(args).get_all_options()["parallelism"] == 8


def test_missing_environment_variables_are_all_named() -> None:
    with pytest.raises(beam.BeamArgsError, match="GOOGLE_CLOUD_PROJECT, GOOGLE_CLOUD_REGION"):
        beam.beam_args("dataflow", env={"CHURN_GCS_ROOT": "gs://x", "CHURN_PIPELINE_IMAGE": "i"})
    with pytest.raises(beam.BeamArgsError, match="unknown DirectRunner mode"):
        beam.beam_args(beam.DIRECT, "multi_threads")


def test_cli_flags_build_the_run_config(capsys: pytest.CaptureFixture[str]) -> None:
    args = cli.build_parser().parse_args(["--beam-mode", "multi_processing", "--beam-workers", "2",
                                          "--beam-arg=--direct_runner_bundle_repeat=0"])
    assert beam.from_arguments(args) == ("--direct_running_mode=multi_processing", "--direct_num_workers=2",
                                         "--direct_runner_bundle_repeat=0")
    with pytest.raises(SystemExit) as e:
        cli.build_parser().parse_args(["--beam-workers", "-1"])
    assert e.value.code == 2 and "must be 0 (one per core) or more" in capsys.readouterr().err


def test_cli_refuses_dataflow_for_a_local_pipeline_root(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--beam-runner", "dataflow"]) == exit_codes.USAGE
    assert "python -m pipeline.kubeflow_v2" in capsys.readouterr().err


def test_cli_names_missing_variables_of_an_argument_set(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLINK_MASTER", raising=False)
    assert cli.main(["--beam-runner", "flink"]) == exit_codes.USAGE
    assert "FLINK_MASTER" in capsys.readouterr().err


@pytest.mark.parametrize("args, local", [
    ((), True), (("--direct_running_mode=multi_processing",), True), (("--runner=DirectRunner",), True),
    (("--runner", "direct"), True), (("--runner=DataflowRunner", "--project=p"), False),
    (("--runner=FlinkRunner",), False),
])
def test_runs_on_this_machine_only_for_the_direct_runner(args: tuple[str, ...], local: bool) -> None:
    assert beam.runs_on_this_machine(args) is local


def test_direct_runner_executors_get_their_arguments_without_a_tfx_package(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """What a Beam-based TFX executor does with its arguments (`BaseBeamExecutor.__init__`), inside and outside
    the block: inside, no `tfx_ephemeral` sdist is built (nothing lands in the temp dir) and no `--extra_package`
    is added; after the block, TFX's own packaging is back."""
    from tfx.utils import dependency_utils

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    args = list(beam.beam_args(mode="in_memory"))
    original = dependency_utils.make_beam_dependency_flags
    with beam.no_worker_package(args) as skipped:
        ConstructedOnly(BaseBeamExecutor.Context(beam_pipeline_args=args, tmp_dir=str(tmp_path / "executor")))
        assert dependency_utils.make_beam_dependency_flags(args) == args  # what the executor calls
    assert skipped is True
    assert list(tmp_path.iterdir()) == []  # no tfx_ephemeral build
    assert dependency_utils.make_beam_dependency_flags is original


def test_other_runners_keep_tfxs_packaging_for_their_workers() -> None:
    from tfx.utils import dependency_utils

    original = dependency_utils.make_beam_dependency_flags
    with beam.no_worker_package(["--runner=DataflowRunner", "--project=p"]) as skipped:
        assert dependency_utils.make_beam_dependency_flags is original
    assert skipped is False


class ConstructedOnly(BaseBeamExecutor):
    """A Beam-based TFX executor whose construction (where TFX packages itself for Beam's workers) is under test."""

    def Do(self, input_dict: object, output_dict: object, exec_properties: object) -> None:  # noqa: N802 (TFX's name)
        """Never called."""


def side_input_sizes_weighed(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """Runs a small Beam pipeline with a side input under `args`; how often Beam's state cache weighed a value."""
    import apache_beam as beam_sdk
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.worker import statecache

    calls = []
    real = statecache.get_deep_size
    monkeypatch.setattr(statecache, "get_deep_size", lambda *objs: calls.append(1) or real(*objs))
    with beam_sdk.Pipeline(options=PipelineOptions(args)) as p:
        side = p | "side" >> beam_sdk.Create([1, 2, 3])
        _ = (p | beam_sdk.Create([10, 20]) | beam_sdk.Map(lambda x, s: x + sum(s), beam_sdk.pvalue.AsList(side)))
    return len(calls)


def test_the_in_memory_direct_runner_keeps_no_state_cache_inside_the_block(monkeypatch: pytest.MonkeyPatch) -> None:
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    args = list(beam.beam_args(mode="in_memory"))
    assert side_input_sizes_weighed(args, monkeypatch) > 0  # Beam's default: each side input load is weighed
    with beam.no_state_cache(args) as off:
        assert side_input_sizes_weighed(args, monkeypatch) == 0
    assert off is True and worker_handlers.STATE_CACHE_SIZE_MB == 100  # restored
    with beam.no_state_cache(["--runner=DataflowRunner", "--project=p"]) as off:
        assert off is False and worker_handlers.STATE_CACHE_SIZE_MB == 100

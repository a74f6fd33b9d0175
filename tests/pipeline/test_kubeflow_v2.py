"""The Kubeflow Pipelines v2 / Vertex AI spec compiles offline, names every component, runs them in the image."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from google.protobuf import json_format

from common import exit_codes
from pipeline import kubeflow_v2
from pipeline.config import PipelineConfig
from pipeline.pipeline import Roots, create_pipeline

IMAGE = "europe-docker.pkg.dev/acme/ml/churn-pipeline:7"
ROOT, DATA, SERVING = "gs://acme-ml/churn", "gs://acme-ml/churn/data", "gs://acme-ml/churn/serving_model"
BEAM_COMPONENTS = ("CsvExampleGen", "StatisticsGen", "Transform", "Evaluator")
RUN_EXECUTOR = ["python", "-m", "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]


def compile_spec(tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / "spec.json"
    code = kubeflow_v2.main(["--pipeline-root", ROOT, "--data", DATA, "--serving-dir", SERVING, "--image", IMAGE,
                             "--out", str(out), *extra])
    assert code == 0
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return compile_spec(tmp_path_factory.mktemp("kfp"))


def executor(spec: dict, task: str) -> dict:
    component = spec["pipelineSpec"]["root"]["dag"]["tasks"][task]["componentRef"]["name"]
    label = spec["pipelineSpec"]["components"][component]
    return spec["pipelineSpec"]["deploymentSpec"]["executors"][label["executorLabel"]]


def exec_property(spec: dict, task: str, name: str) -> str:
    parameters = spec["pipelineSpec"]["root"]["dag"]["tasks"][task]["inputs"]["parameters"]
    return parameters[name]["runtimeValue"]["constantValue"]["stringValue"]


def test_spec_is_a_valid_pipeline_job(spec: dict) -> None:
    from kfp.pipeline_spec import pipeline_spec_pb2

    job = json_format.ParseDict(spec, pipeline_spec_pb2.PipelineJob())  # unknown or mistyped fields raise
    assert job.runtime_config.gcs_output_directory == ROOT
    assert spec["pipelineSpec"]["schemaVersion"] == "2.0.0"


def test_every_component_of_create_pipeline_is_a_task(spec: dict) -> None:
    roots = Roots(ROOT, DATA, kubeflow_v2.IN_IMAGE_SCHEMA, f"{SERVING}/customer-model")
    component_ids = {c.id for c in create_pipeline(PipelineConfig(), roots, [], "c", "f").components}
    tasks = set(spec["pipelineSpec"]["root"]["dag"]["tasks"])
    # A resolver compiles to one query task per channel it resolves: <id>-model-resolver, ...
    assert {t for t in tasks if t in component_ids} == component_ids - {"latest_blessed_model_resolver"}
    assert {t for t in tasks if t not in component_ids} == {"latest_blessed_model_resolver-model-resolver",
                                                            "latest_blessed_model_resolver-model-blessing-resolver"}
    assert len(component_ids) == 14  # 11 + ServingCheck + ReferenceModels + RecallGate


def test_every_step_runs_the_project_code_in_the_pipeline_image(spec: dict) -> None:
    executors = spec["pipelineSpec"]["deploymentSpec"]["executors"]
    containers = [e["container"] for e in executors.values() if "container" in e]
    assert len(containers) == 13  # every component but the resolver, whose queries run in the orchestrator
    assert {c["image"] for c in containers} == {IMAGE}
    assert all(c["command"] == RUN_EXECUTOR for c in containers)
    assert "pipeline.gates" in json.dumps(executor(spec, "DataValidationGate"))
    assert "pipeline.factors" in json.dumps(executor(spec, "ChurnFactors"))
    assert "pipeline.serving_check" in json.dumps(executor(spec, "ServingCheck"))
    assert "pipeline.reference" in json.dumps(executor(spec, "ReferenceModels"))
    assert "pipeline.recall_gate" in json.dumps(executor(spec, "RecallGate"))


def test_stock_pusher_takes_the_serving_checks_infra_blessing(spec: dict) -> None:
    inputs = spec["pipelineSpec"]["root"]["dag"]["tasks"]["Pusher"]["inputs"]["artifacts"]
    assert set(inputs) == {"infra_blessing", "model_blessing"}
    assert inputs["infra_blessing"]["taskOutputArtifact"] == {"producerTask": "ServingCheck",
                                                             "outputArtifactKey": "blessing"}


def test_paths_are_the_cloud_ones_and_the_schema_is_the_image_copy(spec: dict) -> None:
    assert exec_property(spec, "CsvExampleGen", "input_base") == DATA
    assert exec_property(spec, "ImportSchemaGen", "schema_file") == "/pipeline/data/schema/schema.pbtxt"
    destination = json.loads(exec_property(spec, "Pusher", "push_destination"))
    assert destination["filesystem"]["base_directory"] == f"{SERVING}/customer-model"
    custom = json.loads(exec_property(spec, "Trainer", "custom_config"))
    assert custom["label_key"] == "Target_Churn" and len(custom["code_fingerprint"]) == 16


def test_beam_components_get_the_default_direct_arguments(spec: dict) -> None:
    for task in BEAM_COMPONENTS:
        args = executor(spec, task)["container"]["args"]
        assert "--direct_running_mode=in_memory" in args and "--direct_num_workers=1" in args


def test_dataflow_argument_set_reaches_the_beam_components(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "acme")
    monkeypatch.setenv("GOOGLE_CLOUD_REGION", "europe-west4")
    spec = compile_spec(tmp_path, "--beam-runner", "dataflow")
    for task in BEAM_COMPONENTS:
        args = executor(spec, task)["container"]["args"]
        assert {"--runner=DataflowRunner", "--project=acme", "--region=europe-west4",
                f"--sdk_container_image={IMAGE}", f"--temp_location={ROOT}/beam/tmp"} <= set(args)


def test_missing_image_or_environment_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHURN_PIPELINE_IMAGE", raising=False)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    base = ["--pipeline-root", ROOT, "--data", DATA, "--serving-dir", SERVING, "--out", str(tmp_path / "s.json")]
    assert kubeflow_v2.main(base) == exit_codes.USAGE
    assert "--image" in capsys.readouterr().err
    assert kubeflow_v2.main([*base, "--image", IMAGE, "--beam-runner", "dataflow"]) == exit_codes.USAGE
    assert "GOOGLE_CLOUD_PROJECT" in capsys.readouterr().err
    assert not (tmp_path / "s.json").exists()


def test_require_beat_reference_compiles_the_reference_gate_before_the_pusher(tmp_path: Path) -> None:
    spec = compile_spec(tmp_path, "--require-beat-reference")
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    assert "pipeline.reference" in json.dumps(executor(spec, "ReferenceGate"))
    assert "ReferenceGate" in tasks["RecallGate"]["dependentTasks"]
    assert "RecallGate" in tasks["Pusher"]["dependentTasks"]
    assert {"Evaluator", "ReferenceModels", "Trainer"} <= set(tasks["ReferenceGate"]["dependentTasks"])


def test_tune_compiles_the_tuner_before_the_trainer(tmp_path: Path) -> None:
    spec = compile_spec(tmp_path, "--tune", "120")
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    assert "Tuner" in tasks["Trainer"]["dependentTasks"]
    assert "modules.tuner.tuner_fn" in exec_property(spec, "Tuner", "tuner_fn")
    executors = spec["pipelineSpec"]["deploymentSpec"]["executors"]
    assert len([e for e in executors.values() if "container" in e]) == 14  # the 13 of the default spec + Tuner


SPANS = "gs://acme-ml/churn/spans"
MONTH, FIRST_MONTH, WINDOW = "2026-07", "2026-01", 3  # evaluate on span 6, train on spans 3, 4, 5
SPAN_FLAGS = ("--window", str(WINDOW), "--month", MONTH, "--first-month", FIRST_MONTH)


@pytest.fixture(scope="module")
def window_spec(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    """The spec of July 2026's run over a span folder, and its Vertex AI schedule."""
    tmp = tmp_path_factory.mktemp("kfp-window")
    out, schedule = tmp / "spec.json", tmp / "schedule.json"
    code = kubeflow_v2.main(["--pipeline-root", ROOT, "--data", SPANS + "/", "--serving-dir", SERVING, "--image", IMAGE,
                             "--out", str(out), *SPAN_FLAGS, "--schedule", str(schedule)])
    assert code == 0
    return json.loads(out.read_text()), json.loads(schedule.read_text())


def test_each_example_gen_of_the_window_carries_the_static_range_of_its_span(window_spec: tuple[dict, dict]) -> None:
    from tfx.proto import example_gen_pb2, range_config_pb2

    from pipeline import spans

    spec, _ = window_spec
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    gens = {"CsvExampleGen": 6, "CsvExampleGen_span_3": 3, "CsvExampleGen_span_4": 4, "CsvExampleGen_span_5": 5}
    assert {t for t in tasks if t.startswith("CsvExampleGen")} == set(gens)
    for task, span in gens.items():
        ranges = json_format.Parse(exec_property(spec, task, "range_config"), range_config_pb2.RangeConfig())
        assert (ranges.static_range.start_span_number, ranges.static_range.end_span_number) == (span, span)
        assert exec_property(spec, task, "input_base") == SPANS
        (split,) = json_format.Parse(exec_property(spec, task, "input_config"), example_gen_pb2.Input()).splits
        assert split.pattern == spans.SPAN_PATTERN == "span-{SPAN}/version-{VERSION}/*"
        output = json_format.Parse(exec_property(spec, task, "output_config"), example_gen_pb2.Output())
        assert output.split_config.partition_feature_name == "Customer_ID"
        # TFX's Kubeflow V2 ExampleGen driver resolves the range (span, newest version) before the step runs.
        driver = executor(spec, task)["container"]["lifecycle"]["preCacheCheck"]["command"]
        assert driver[-1] == "tfx.orchestration.kubeflow.v2.file_based_example_gen.driver"
    # Transform reads the training spans only, joined into one artifact; everything that judges reads span 6.
    union = tasks["TrainingSpans"]["inputs"]["artifacts"]
    assert [union[f"examples_{i}"]["taskOutputArtifact"]["producerTask"] for i in range(WINDOW)] == [
        "CsvExampleGen_span_3", "CsvExampleGen_span_4", "CsvExampleGen_span_5"]
    assert "pipeline.examples_union" in json.dumps(executor(spec, "TrainingSpans"))
    transform = tasks["Transform"]["inputs"]["artifacts"]["examples"]["taskOutputArtifact"]
    assert transform["producerTask"] == "TrainingSpans"
    for task in ("StatisticsGen", "Evaluator", "ChurnFactors", "ReferenceModels"):
        assert tasks[task]["inputs"]["artifacts"]["examples"]["taskOutputArtifact"]["producerTask"] == "CsvExampleGen"
    assert spec["labels"][kubeflow_v2.MONTH_LABEL] == MONTH and spec["labels"][kubeflow_v2.WINDOW_LABEL] == "3"


def test_window_spec_is_a_valid_pipeline_job(window_spec: tuple[dict, dict]) -> None:
    from kfp.pipeline_spec import pipeline_spec_pb2

    job = json_format.ParseDict(window_spec[0], pipeline_spec_pb2.PipelineJob())
    assert job.labels[kubeflow_v2.MONTH_LABEL] == MONTH


def _cron_fires(cron: str, start: datetime, end: datetime) -> list[datetime]:
    """Every minute in [start, end) that a unix-cron `[TZ=Etc/UTC ]minute hour day-of-month month day-of-week`
    of single numbers or `*` matches (enough for the schedules this runner writes)."""
    fields = cron.removeprefix("TZ=Etc/UTC ").split()
    assert len(fields) == 5, cron

    def matches(field: str, value: int) -> bool:
        return field == "*" or int(field) == value

    fires, moment = [], start
    while moment < end:
        if all(matches(f, v) for f, v in zip(fields, (moment.minute, moment.hour, moment.day, moment.month,
                                                       moment.isoweekday() % 7), strict=True)):
            fires.append(moment)
        moment += timedelta(minutes=1)
    return fires


def test_the_month_s_schedule_runs_its_spec_once_after_its_labels_exist(window_spec: tuple[dict, dict]) -> None:
    """Checked offline against Vertex AI's own Schedule message (google-cloud-aiplatform's types, no call)."""
    from google.cloud.aiplatform_v1.types import Schedule

    spec, body = window_spec
    schedule = Schedule.from_json(json.dumps(body))  # unknown or mistyped fields raise
    assert schedule.cron == kubeflow_v2.DEFAULT_CRON and schedule.max_run_count == 1
    start, end = schedule.start_time, schedule.end_time
    # July's labels are churn during August: they exist once August has passed, so the run is in September.
    assert (start.isoformat(), end.isoformat()) == ("2026-09-01T00:00:00+00:00", "2026-10-01T00:00:00+00:00")
    assert _cron_fires(schedule.cron, start, end) == [datetime(2026, 9, 2, 6, 0, tzinfo=timezone.utc)]
    request = schedule.create_pipeline_job_request
    assert request.pipeline_job.labels[kubeflow_v2.MONTH_LABEL] == MONTH
    assert request.pipeline_job.display_name == f"churn-{MONTH}"
    assert body["createPipelineJobRequest"]["pipelineJob"]["pipelineSpec"] == spec["pipelineSpec"]


@pytest.mark.parametrize("flags, message", [
    (("--window", "3", "--month", MONTH), "--window, --month and --first-month go together"),
    (("--schedule", "s.json"), "--schedule needs --window, --month and --first-month"),
    (("--window", "3", "--month", "2026-02", "--first-month", FIRST_MONTH), "--window 3 needs 4 labelled spans"),
    (("--window", "3", "--month", "2026-13", "--first-month", FIRST_MONTH), "month must be YYYY-MM, got '2026-13'"),
    (("--window", "3", "--month", "2025-12", "--first-month", FIRST_MONTH), "month 2025-12 is before span 0's"),
])
def test_bad_month_flags_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          flags: tuple[str, ...], message: str) -> None:
    base = ["--pipeline-root", ROOT, "--data", SPANS, "--serving-dir", SERVING, "--image", IMAGE,
            "--out", str(tmp_path / "s.json")]
    assert kubeflow_v2.main([*base, *flags]) == exit_codes.USAGE
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "s.json").exists()

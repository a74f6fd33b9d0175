"""The Kubeflow Pipelines v2 / Vertex AI spec compiles offline, names every component, runs them in the image."""
from __future__ import annotations

import json
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

"""Real-world exports end to end (../shared/field-cases/): small pipeline runs on three field cases.

- Telco-style file: a number column holding a single space for new customers and a Yes/No label; it
  must train, write a summary any JSON parser reads, and score with the blanks reported cell by cell.
  It runs as the README's "bring your own data" after `make run`: in the --output and --serving-dir of a
  bundled-style run, whose blessed model reads other columns and so cannot be its baseline
  (pipeline/baseline.py; TFMA would feed it the Telco examples and the run would die in the Evaluator).
- 2 % churn: the decision threshold is chosen on the validation split, the model still ranks usefully
  (top-decile lift >= 2), scoring gives actions to the customers above the threshold, and RecallGate
  refuses the same model with a threshold no churner reaches, with the reason (on the run's own output).
- Spaces in column names: trains, serves under the mapped names, and the client and scoring send the
  file as it is.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ml_metadata.proto import metadata_store_pb2

from common.facts import PROJECT_ROOT
from insights.recommend import load_rules
from modules import threshold
from pipeline import recall_gate, report, run_summary
from pipeline.config import PipelineConfig
from tests.e2e.test_insights_score import run_cli
from tests.e2e.test_serving_pipeline_model import serve
from tests.field_cases import BLANK_NUMBERS, CHURN_RATE_2PCT, SPACES_IN_NAMES
from tests.helpers import run_pipeline, versions

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def telco(tmp_path_factory: pytest.TempPathFactory, bundled_style):
    tmp = tmp_path_factory.mktemp("telco")
    bundled, bundled_proc, bundled_summary = bundled_style
    assert bundled_proc.returncode == 0 and bundled_summary["blessed"] is True
    # Copies of the bundled-style run's --output (ML Metadata naming its blessed model) and --serving-dir.
    shutil.copytree(bundled / "out", tmp / "out")
    shutil.copytree(bundled / "serving", tmp / "serving")
    proc, summary = run_pipeline(tmp, "--data", str(BLANK_NUMBERS), "--label", "Churn", "--positive-label", "Yes",
                                 "--schema", "infer", "--max-epochs", "3", "--min-auc", "0.5")
    # --min-auc 0.5: these tests are about reading the file; 3 epochs on 1,200 rows reach an AUC of about 0.65.
    return tmp, proc, summary


def test_telco_export_trains_with_its_id_found_and_a_summary_any_json_parser_reads(telco) -> None:
    tmp, proc, summary = telco
    assert proc.returncode == 0, proc.stdout + proc.stderr

    def refuse(token: str) -> None:
        raise ValueError(f"bare {token}")

    strict = json.loads((tmp / "out" / "run_summary.json").read_text(), parse_constant=refuse)
    assert strict["input"]["id_columns"] == ["customerID"]  # --id-columns auto
    assert strict["input"]["missing_cells"] == {"TotalCharges": 12}
    assert "customerID" not in strict["input"]["served_inputs"] and "TotalCharges" in strict["input"]["served_inputs"]
    assert strict["input"]["label_values"] == {"No": 910, "Yes": 290}
    assert strict["metrics"]["overall"]["auc"] > 0.5
    inferred = tmp / "out" / "schema.pbtxt"
    assert strict["input"]["inferred_schema"] == str(inferred) and 'name: "TotalCharges"' in inferred.read_text()
    assert f"--schema {inferred}" in proc.stdout


def test_own_csv_in_the_output_of_a_bundled_run_is_judged_without_the_bundled_model_as_baseline(
        telco, bundled_style) -> None:
    tmp, proc, summary = telco
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert summary["status"] == "pushed" and summary["error"] is None
    assert summary["metrics"]["baseline"] is None  # the bundled model reads other inputs: no baseline
    assert len(versions(tmp)) == len(versions(bundled_style[0])) + 1


def test_scoring_the_same_kind_of_file_lists_every_blank_cell_and_scores_the_rest(telco, tmp_path: Path) -> None:
    tmp, proc, summary = telco
    out = tmp_path / "scored.csv"
    rules = tmp_path / "telco_rules.yaml"  # the bundled rules name the bundled data's features
    rules.write_text("rules:\n  - name: month-to-month\n    when:\n      risk_band: [high, medium]\n"
                     "      values:\n        Contract: {in: [\"Month-to-month\"]}\n"
                     "    action: Offer a yearly contract\n    rationale: Month-to-month customers leave most.\n"
                     "default:\n  action: No retention action\n  rationale: No rule applies.\n")
    scored = run_cli("score", "--data", str(BLANK_NUMBERS), "--model", summary["pushed_model_dir"],
                     "--id-column", "customerID", "--rules", str(rules), "--out", str(out), "--no-progress")
    assert scored.returncode == 0, scored.stderr
    raw = pd.read_csv(BLANK_NUMBERS, dtype=str, keep_default_na=False)
    blank_lines = [i + 2 for i in raw.index[raw["TotalCharges"].str.strip() == ""]]
    reported = [int(m) for m in re.findall(r"bad cell: .*: line (\d+), column 'TotalCharges': TotalCharges is empty",
                                           scored.stderr)]
    assert reported == blank_lines and len(reported) == 12
    assert "12 row(s) with bad cells not scored" in scored.stderr
    assert len(pd.read_csv(out)) == len(raw) - 12


@pytest.fixture(scope="module")
def two_percent(tmp_path_factory: pytest.TempPathFactory):
    """The 2 % churn file's run, and its model's eval-split predictions (read before any other run in its folder)."""
    tmp = tmp_path_factory.mktemp("two_percent")
    proc, summary = run_pipeline(tmp, "--data", str(CHURN_RATE_2PCT))
    outputs = run_summary.collect_outputs(PipelineConfig(output=tmp / "out").metadata_path)
    evaluation = run_summary.single_artifact(outputs, "Evaluator", "evaluation").uri
    predictions = report.eval_predictions(evaluation,
                                          run_summary.single_artifact(outputs, "CsvExampleGen", "examples").uri)
    return tmp, proc, summary, predictions[report.CANDIDATE], evaluation


def test_two_percent_churn_ranks_usefully_and_its_threshold_flags_churners(two_percent) -> None:
    _, proc, summary, candidate, _ = two_percent
    assert proc.returncode == 0, proc.stdout + proc.stderr
    chosen = summary["threshold"]
    assert chosen["method"] == threshold.F1_OPTIMAL and chosen["value"] == threshold.read(summary["pushed_model_dir"])
    assert f"decision threshold {chosen['value']:g} on the calibrated churn probability (F1-optimal" in proc.stdout
    overall = summary["metrics"]["overall"]
    assert overall["recall"] > 0 and overall["confusion_matrix"]["threshold"] == chosen["value"]
    # Top-decile lift: the churn rate among the 10 % of eval customers ranked most likely to churn,
    # over the eval split's churn rate.
    top = np.argsort(-candidate.probabilities, kind="stable")[: int(np.ceil(len(candidate.labels) / 10))]
    lift = candidate.labels[top].mean() / candidate.labels.mean()
    assert lift >= 2, f"top-decile lift {lift:.2f}"


def test_scoring_the_two_percent_file_gives_actions_to_the_customers_above_the_threshold(
        two_percent, tmp_path: Path) -> None:
    _, _, summary, _, _ = two_percent
    pushed = summary["pushed_model_dir"]
    out = tmp_path / "scored.csv"
    scored = run_cli("score", "--data", str(CHURN_RATE_2PCT), "--model", pushed, "--out", str(out), "--no-progress")
    assert scored.returncode == 0, scored.stderr
    assert f"its decision threshold {threshold.read(pushed):g} is where the medium risk band starts" in scored.stdout
    result = pd.read_csv(out)
    above = result["churn_probability"].to_numpy() >= threshold.read(pushed)
    assert 0 < above.sum() < len(result)  # the model flags some customers, not everyone and not nobody
    assert (result["risk_band"][above] != "low").all() and (result["risk_band"][~above] == "low").all()
    (low_risk,) = [rule.action for rule in load_rules().rules if rule.risk_band == ("low",)]
    assert (result["recommended_action"][above] != low_risk).all()
    assert (result["recommended_action"][~above] == low_risk).all()


def test_a_threshold_no_churner_reaches_is_refused_by_the_recall_gate_with_the_reason(
        two_percent, tmp_path: Path) -> None:
    """RecallGate's check (`recall_gate.evaluate`, what the component runs) on this run's real Evaluator output:
    the model at its own threshold passes; the same model with a stored threshold no eval churner reaches
    is refused in words, and the run summary turns such a gate's blessing into `blessed: false`."""
    _, _, summary, candidate, evaluation = two_percent
    assert recall_gate.evaluate(evaluation, summary["pushed_model_dir"]) is None
    unreachable = 0.995  # on the Evaluator's grid (modules/threshold.GRID)
    churners = int(candidate.labels.sum())
    assert candidate.probabilities[candidate.labels == 1].max() < unreachable
    refused_model = tmp_path / "model"
    threshold.write(str(refused_model), threshold.Threshold(unreachable, threshold.GIVEN, "given with --threshold"))
    reason = recall_gate.evaluate(evaluation, str(refused_model))
    assert reason is not None and f"recall 0 at the model's decision threshold {unreachable:g}" in reason
    assert f"it flags none of the {churners:,} churners of the eval split" in reason and "--threshold" in reason
    gate = metadata_store_pb2.Artifact(uri=str(tmp_path / "blessing"))
    gate.custom_properties[recall_gate.REASON_PROPERTY].string_value = reason
    refused = run_summary.build_summary({"Evaluator": {"evaluation": [metadata_store_pb2.Artifact(uri=evaluation)]},
                                         recall_gate.RECALL_GATE_ID: {"blessing": [gate]}})
    assert refused["blessed"] is False and refused["blessing_reason"].endswith("; " + reason)
    assert refused["blessing_reason"].startswith("overall AUC")  # the Evaluator's own verdict comes first


@pytest.fixture(scope="module")
def spaces(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("spaces")
    proc, summary = run_pipeline(tmp, "--data", str(SPACES_IN_NAMES), "--label", "Churn Value",
                                 "--max-epochs", "3", "--min-auc", "0.5")
    return tmp, proc, summary


def test_names_with_spaces_train_and_serve_under_the_mapped_names(spaces, tmp_path: Path) -> None:
    _, proc, summary = spaces
    assert proc.returncode == 0, proc.stdout + proc.stderr
    mapping = summary["input"]["column_names"]
    assert mapping["Customer ID"] == "Customer_ID" and mapping["Total Spend"] == "Total_Spend"
    served = summary["input"]["served_inputs"]
    assert {"Total_Spend", "Num_of_Purchases"} <= set(served) and "Customer_ID" not in served
    assert f"served signature inputs: {', '.join(served)}" in proc.stdout
    # A file as the user has it (names with spaces), sent by the client and scored by `insights score`.
    customers = tmp_path / "customers.csv"
    customers.write_text("".join(SPACES_IN_NAMES.read_text().splitlines(keepends=True)[:26]))
    pushed = Path(summary["pushed_model_dir"])
    server = serve(pushed, tmp_path / "server.log")
    running = next(server)
    try:
        metadata = subprocess.run([sys.executable, "-m", "client.tf_serving", "--port", str(running.rest_port),
                                   "metadata"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
                                  check=False)
        assert metadata.returncode == 0, metadata.stderr
        signature = json.loads(metadata.stdout)["metadata"]["signature_def"]["signature_def"]["serving_default"]
        assert sorted(signature["inputs"]) == sorted(served)
        client = subprocess.run([sys.executable, "-m", "client.tf_serving", "--port", str(running.rest_port),
                                 "predict", "--csv", str(customers)],
                                cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False)
    finally:
        server.close()
    assert client.returncode == 0, client.stderr
    served_probability = {int(m[0]): float(m[1])
                          for m in re.findall(r"customer (\d+): churn probability (\d\.\d{4})", client.stdout)}
    assert len(served_probability) == 25
    out = tmp_path / "scored.csv"
    scored = run_cli("score", "--data", str(customers), "--model", str(pushed), "--id-column", "Customer ID",
                     "--out", str(out), "--no-progress")
    assert scored.returncode == 0, scored.stderr
    result = pd.read_csv(out)
    by_id = dict(zip(result.iloc[:, 0], result["churn_probability"], strict=True))
    assert sorted(by_id) == sorted(served_probability)
    assert all(abs(by_id[c] - p) <= 6e-5 for c, p in served_probability.items())

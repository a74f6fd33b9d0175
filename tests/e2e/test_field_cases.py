"""Real-world exports end to end (../shared/field-cases/): one small pipeline run on a Telco-style file.

The file has a number column holding a single space for new customers and a Yes/No label; it must
train, write a summary any JSON parser reads, and score with the blanks reported cell by cell.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import run_pipeline
from tests.e2e.test_insights_score import run_cli
from tests.field_cases import BLANK_NUMBERS

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def telco(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("telco")
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

"""`pipeline/baseline.py` end to end: the README's "bring your own data" after `make run`, in the same --output.

The bundled-style run's blessed model reads other columns than the own CSV's model, so it cannot be the
Evaluator's baseline (TFMA would feed it the new examples and the run would die after minutes of work with
"Fail to call signature func with signature_name: transform_features"): the run is judged without one."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from data.generate import generate
from tests.helpers import run_pipeline, versions

pytestmark = pytest.mark.e2e


def test_own_csv_in_the_output_of_a_bundled_run_is_judged_without_the_bundled_model_as_baseline(
        bundled_style, tmp_path: Path) -> None:
    bundled, bundled_proc, bundled_summary = bundled_style
    assert bundled_proc.returncode == 0 and bundled_summary["blessed"] is True
    # Copies of the bundled run's --output (ML Metadata naming its blessed model) and --serving-dir.
    shutil.copytree(bundled / "out", tmp_path / "out")
    shutil.copytree(bundled / "serving", tmp_path / "serving")
    own = generate(3000, seed=5)[["Customer_ID", "Age", "Satisfaction_Score", "Last_Purchase_Days_Ago",
                                  "Num_of_Support_Contacts", "Gender", "Target_Churn"]]
    own = own.rename(columns={"Satisfaction_Score": "Satisfaction", "Last_Purchase_Days_Ago": "Days_Since_Login",
                              "Num_of_Support_Contacts": "Tickets"})
    own["Churned"] = np.where(own.pop("Target_Churn") == 1, "Yes", "No")
    own.to_csv(tmp_path / "my_customers.csv", index=False)

    proc, summary = run_pipeline(tmp_path, "--data", str(tmp_path / "my_customers.csv"), "--label", "Churned",
                                 "--positive-label", "Yes", "--id-columns", "Customer_ID", "--schema", "infer",
                                 "--max-epochs", "3", "--min-auc", "0.5")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert summary["status"] == "pushed" and summary["error"] is None
    assert summary["metrics"]["baseline"] is None  # the bundled model reads other inputs: no baseline
    assert sorted(summary["input"]["served_inputs"]) == ["Age", "Days_Since_Login", "Gender", "Satisfaction",
                                                         "Tickets"]
    assert len(versions(tmp_path)) == len(versions(bundled)) + 1

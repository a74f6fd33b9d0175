"""ServingCheck (pipeline/serving_check.py): synthetic warmup row, stamped model, real model server, InfraBlessing."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import statistics_pb2
from tensorflow_serving.apis import prediction_log_pb2
from tfx.components.util import model_utils
from tfx.types import standard_artifacts

from pipeline.pusher import AtomicPusherExecutor
from pipeline.serving_check import BLESSED_KEY, ServingCheckError, check_serving, stamp, synthetic_row
from serving.api import warmup
from tests.serving.models import build_tf2_model

STATS = """
features { path { step: "Age" } type: INT num_stats { median: 41.6 } }
features { path { step: "Annual_Income" } type: FLOAT num_stats { median: 52.25 } }
features { path { step: "Total_Spend" } type: FLOAT num_stats { median: 2500.0 } }
features { path { step: "x" } type: FLOAT num_stats { median: 4.0 } }
features { path { step: "Gender" } type: STRING string_stats { top_values { value: "Female" frequency: 60 }
                                                             top_values { value: "Male" frequency: 40 } } }
features { path { step: "s" } type: STRING string_stats { top_values { value: "abc" frequency: 3 } } }
"""


def stats(text: str = STATS) -> statistics_pb2.DatasetFeatureStatistics:
    from google.protobuf import text_format

    return text_format.Parse(text, statistics_pb2.DatasetFeatureStatistics())


@pytest.fixture(scope="module")
def candidate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tf2_model(tmp_path_factory.mktemp("candidate") / "model")


def test_synthetic_row_is_medians_and_modes() -> None:
    assert synthetic_row(stats()) == {"Age": 42, "Annual_Income": 52.25, "Total_Spend": 2500.0, "x": 4.0,
                                      "Gender": "Female", "s": "abc"}


def test_id_columns_hold_no_real_id() -> None:
    text = STATS + 'features { path { step: "Customer_ID" } type: INT num_stats { median: 2044 } }'
    assert synthetic_row(stats(text), id_keys=["Customer_ID"])["Customer_ID"] == 0
    assert synthetic_row(stats(text))["Customer_ID"] == 2044


def test_a_feature_without_median_or_mode_is_a_clear_error() -> None:
    with pytest.raises(ServingCheckError, match="feature Empty: no median or mode"):
        synthetic_row(stats('features { path { step: "Empty" } type: STRING string_stats { } }'))


def test_stamped_model_carries_one_warmup_request_per_signature(tmp_path: Path, candidate: Path) -> None:
    stamped = tmp_path / "stamped_model"
    assert stamp(str(candidate), str(stamped), stats(), "customer-model") == 3
    logs = list(warmup.read_warmup_records(warmup.warmup_path(stamped)))
    assert sorted(log.predict_log.request.model_spec.signature_name for log in logs) == ["bytes", "churn",
                                                                                         "serving_default"]
    assert all(log.predict_log.request.model_spec.name == "customer-model" for log in logs)
    assert (stamped / "saved_model.pb").read_bytes() == (candidate / "saved_model.pb").read_bytes()
    assert not warmup.warmup_path(candidate).exists()  # the Trainer's artifact is left as it was


def test_check_serves_the_stamped_model_and_answers_every_request(tmp_path: Path, candidate: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    stamped = tmp_path / "stamped_model"
    stamp(str(candidate), str(stamped), stats(), "customer-model")
    with caplog.at_level(logging.INFO, logger="serving"):
        assert check_serving(str(stamped), "customer-model") == 3
    # loaded on the server's first poll: no settle wait, so no "No versions of servable ... found" on the way
    assert [r.getMessage() for r in caplog.records if "No versions of servable" in r.getMessage()] == []
    assert any("Successfully loaded servable version" in r.getMessage() for r in caplog.records)


def test_a_model_whose_warmup_fails_does_not_pass(tmp_path: Path, candidate: Path) -> None:
    stamped = tmp_path / "stamped_model"
    shutil.copytree(candidate, stamped)
    request = prediction_log_pb2.PredictionLog()
    request.predict_log.request.model_spec.signature_name = "churn"
    request.predict_log.request.inputs["Age"].CopyFrom(tf.make_tensor_proto([1.5], dtype=tf.float32))
    warmup.write_warmup_file(stamped, [request])
    with pytest.raises(ServingCheckError, match="could not load the candidate: .*customer-model"):
        check_serving(str(stamped), "customer-model")


def test_a_row_missing_a_signature_input_is_refused_before_serving(tmp_path: Path, candidate: Path) -> None:
    partial = stats(STATS.replace('path { step: "Age" }', 'path { step: "Years" }'))
    with pytest.raises(ServingCheckError, match="signature churn: input Age"):
        stamp(str(candidate), str(tmp_path / "stamped_model"), partial, "customer-model")


def _pusher_inputs(tmp_path: Path, blessed: int, stamped: Path):
    infra = standard_artifacts.InfraBlessing()
    infra.uri = str(stamped.parent)
    infra.set_int_custom_property(BLESSED_KEY, blessed)
    infra.set_int_custom_property("has_model", 1)
    model_blessing = standard_artifacts.ModelBlessing()
    model_blessing.uri = str(tmp_path / "blessing")
    model_blessing.set_int_custom_property("blessed", 1)
    return {"infra_blessing": [infra], "model_blessing": [model_blessing]}


@pytest.mark.parametrize("blessed", [0, 1])
def test_pusher_pushes_the_stamped_model_only_when_the_check_passed(tmp_path: Path, candidate: Path,
                                                                    blessed: int) -> None:
    from tfx.proto import pusher_pb2
    from tfx.utils import proto_utils

    stamped = tmp_path / "infra" / "stamped_model"
    stamp(str(candidate), str(stamped), stats(), "customer-model")
    inputs = _pusher_inputs(tmp_path, blessed, stamped)
    assert model_utils.is_infra_validated(inputs["infra_blessing"][0]) == bool(blessed)
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed")
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(tmp_path / "serving")))
    AtomicPusherExecutor().Do(inputs, {"pushed_model": [pushed]},
                              {"push_destination": proto_utils.proto_to_json(destination)})
    assert pushed.get_int_custom_property("pushed") == blessed
    versions = list((tmp_path / "serving").glob("*")) if blessed else []
    assert [warmup.warmup_path(v).is_file() for v in versions] == [True] * blessed

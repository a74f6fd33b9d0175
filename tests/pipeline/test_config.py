"""pipeline.config: one run's paths all derive from --output and --serving-dir; the splits' names and sizes."""
from __future__ import annotations

from pathlib import Path

from common.facts import DEFAULT_SERVING_DIR, MODEL_NAME, PROJECT_ROOT
from pipeline import config as cfg


def test_every_output_path_lives_under_output_and_pushes_under_the_serving_dir(tmp_path: Path) -> None:
    config = cfg.PipelineConfig(output=tmp_path / "out", serving_dir=tmp_path / "srv")
    for path in (config.pipeline_root, config.metadata_path, config.summary_path, config.log_path, config.report_path):
        assert path.parent == config.output
    assert len({config.pipeline_root, config.metadata_path, config.summary_path, config.log_path,
                config.report_path}) == 5
    assert config.model_base_path == tmp_path / "srv" / MODEL_NAME  # TF Serving's base path: <version>/ inside


def test_defaults_are_the_bundled_data_and_the_shared_serving_folder() -> None:
    config = cfg.PipelineConfig()
    assert config.data == cfg.BUNDLED_DATA and config.data.is_file() and config.schema == cfg.CURATED_SCHEMA
    assert config.serving_dir == DEFAULT_SERVING_DIR and config.output.parent == PROJECT_ROOT
    assert cfg.KAGGLE_DATA.parent.parent == PROJECT_ROOT.parent / "shared"  # beside the repository, never in it


def test_splits_are_train_validation_eval_in_six_two_two() -> None:
    assert (cfg.TRAIN_SPLIT, cfg.VALIDATION_SPLIT, cfg.EVAL_SPLIT) == ("train", "validation", "eval")
    assert [cfg.SPLIT_BUCKETS[s] for s in ("train", "validation", "eval")] == [6, 2, 2]

"""PipelineConfig: every run-time choice of one pipeline run, built once by the runner."""
from __future__ import annotations

import dataclasses
from pathlib import Path, PurePosixPath

from common.facts import DEFAULT_SERVING_DIR, MODEL_NAME, PROJECT_ROOT
from modules import features
from pipeline import beam

PIPELINE_NAME = "churn"
BUNDLED_DATA = PROJECT_ROOT / "data" / "customers.csv"
CURATED_SCHEMA = PROJECT_ROOT / "data" / "schema" / "schema.pbtxt"
KAGGLE_DATA = PROJECT_ROOT.parent / "shared" / "data" / "online_retail_customer_churn.csv"
"""The public Kaggle "Online Retail Customer Churn" file: not in the repository, expected beside it."""
DEFAULT_OUTPUT = PROJECT_ROOT / "pipeline_output"
METADATA_FILE = "metadata.sqlite"
"""The run's SQLite ML Metadata store, in --output."""
DEFAULT_MIN_AUC = 0.6
SPLIT_BUCKETS = {"train": 6, "validation": 2, "eval": 2}
"""Hash-bucket split: train fits, validation picks the epoch (early stopping), eval is only for Evaluator."""
TRAIN_SPLIT, VALIDATION_SPLIT, EVAL_SPLIT = SPLIT_BUCKETS
SPAN_DIR_PREFIX = "span-"
VERSION_DIR_PREFIX = "version-"
"""A corrected span: `span-<n>/version-<v>/` (v = 1, 2, ...); the highest version of a span is the one read."""
DEFAULT_WINDOW = 3
"""`--window`: training spans before the evaluated one (issue 16's simulated year uses 3)."""
DRIFT_MIN_ROWS = 1000
"""Fewer rows than this on either side say more about sampling noise than about drift: TFDV compares numeric
features by equal-width histograms over each sample's own min..max, and a small sample that misses the rare
top values of a small-range integer (e.g. no customer with more than 6 returns) shifts every bucket. Between
generated months of 1,000 customers the no-drift maximum is already 0.092 (Num_of_Returns; docs/data.md)."""
ON_DRIFT_STOP, ON_DRIFT_WARN = "stop", "warn"
ON_DRIFT_CHOICES = (ON_DRIFT_STOP, ON_DRIFT_WARN)
DEFAULT_ON_DRIFT = ON_DRIFT_WARN
"""`--on-drift`: stop (nothing is trained) or warn (train; bless only on the evaluation). Defined here, not in
pipeline/drift_gate.py, so that local_pipeline.py's parser needs no TFDV import (its warnings would reach the
terminal before the run's log is set up)."""
"""A span folder holds `span-<n>/` sub-folders, n = 0, 1, ... (data/spans.py writes, pipeline/spans.py reads)."""
IMAGE_PROJECT_DIR = PurePosixPath("/pipeline")
"""This repository's place inside the pipeline image (pipeline/Dockerfile's WORKDIR)."""
PIPELINE_IMAGE_ENV = "CHURN_PIPELINE_IMAGE"
"""Environment variable naming the pipeline image (Kubeflow runner default, Beam argument sets)."""
AUTO = "auto"
"""`--id-columns auto`: `Customer_ID` when present, else the columns that look like identifiers
(pipeline.inputs.auto_id_keys). `--schema auto`: the curated schema when the data's columns are the
bundled data's, else one inferred by SchemaGen, saved as <output>/schema.pbtxt (INFERRED_SCHEMA_NAME)."""
INFERRED_SCHEMA_NAME = "schema.pbtxt"
INFER_SCHEMA = "infer"
"""`--schema infer`: let SchemaGen infer the schema (for data the curated schema does not describe)."""


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """One run's choices. Paths are absolute; nothing here touches the file system."""

    data: Path = BUNDLED_DATA
    output: Path = DEFAULT_OUTPUT
    serving_dir: Path = DEFAULT_SERVING_DIR
    label_key: str = features.LABEL_KEY
    positive_label: str = features.POSITIVE_LABEL
    id_keys: tuple[str, ...] = features.ID_KEYS
    slice_keys: tuple[str, ...] = features.SLICE_KEYS
    schema: Path | None = CURATED_SCHEMA
    """None means infer it (`--schema infer`)."""
    min_auc: float = DEFAULT_MIN_AUC
    max_epochs: int | None = None
    """None keeps modules.hparams.MAX_EPOCHS; tests lower it to run fast."""
    threshold: float | None = None
    """`--threshold`: the decision threshold of `churn`; None: chosen on the validation split (modules/threshold.py)."""
    require_beat_reference: bool = False
    """Bless only if no reference model (pipeline/reference.py) ranks churners better beyond the paired interval."""
    tune_budget_seconds: float | None = None
    """`--tune`: run the TFX Tuner (modules/tuner.py) for at most this many seconds and train with its best
    hyperparameters; None (the default) trains with modules.hparams.DEFAULTS and runs no Tuner."""
    beam_args: tuple[str, ...] = beam.beam_args(mode="in_memory")
    """Beam arguments of the data-parallel components (pipeline/beam.py; the CLI resolves `auto`)."""

    @property
    def pipeline_root(self) -> Path:
        return self.output / "tfx"

    @property
    def metadata_path(self) -> Path:
        return self.output / METADATA_FILE

    @property
    def model_base_path(self) -> Path:
        """TF Serving's `--model_base_path`: versions are numeric folders inside it."""
        return self.serving_dir / MODEL_NAME

    @property
    def summary_path(self) -> Path:
        return self.output / "run_summary.json"

    @property
    def log_path(self) -> Path:
        """What the libraries and Beam's worker processes print during a run without --verbose."""
        return self.output / "pipeline.log"

    @property
    def report_path(self) -> Path:
        """Self-contained HTML report of the run (pipeline/report.py)."""
        return self.output / "report.html"

    @property
    def lock_path(self) -> Path:
        """Locked (fcntl) by a command writing into the output folder, so two runs never share its ML Metadata."""
        return self.output / ".lock"

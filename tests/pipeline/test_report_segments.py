"""The report's "Customer segments" section, from the profiles a Trainer exported (no TFX run)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ml_metadata.proto import metadata_store_pb2

from data.generate import generate
from modules import features, segments
from pipeline import report
from tests.pipeline.test_report import section, summary


def test_segments_section_shows_each_profile_and_the_criterion(tmp_path: Path) -> None:
    frame = generate(1500, seed=2)
    columns = list(features.BEHAVIOURAL_FEATURES)
    values = frame[columns].to_numpy(float)
    mean, std = values.mean(axis=0), values.std(axis=0)
    fitted = segments.fit_segments((values - mean) / std, frame[features.LABEL_KEY].to_numpy(), columns, mean, std, 0)
    extra = tmp_path / "Format-Serving" / segments.ASSETS_EXTRA
    extra.mkdir(parents=True)
    (extra / segments.SEGMENTS_FILE).write_text(json.dumps(segments.to_json(fitted)))
    outputs = {"Trainer": {"model": [metadata_store_pb2.Artifact(uri=str(tmp_path))]}}
    problems: list[str] = []
    html = section(report.render(summary(), outputs, problems), "segments")
    assert problems == []
    assert segments.CRITERION in html and f"{len(fitted.profiles)} segments of the 1,500" in html
    best = max(fitted.silhouettes, key=fitted.silhouettes.get)
    assert f"<b>{best}: {fitted.silhouettes[best]:.3f}</b>" in html
    for profile in fitted.profiles:
        assert f"<td>{profile.name}</td><td>{profile.size:,}</td>" in html
        assert f"<td>{profile.churn_rate:.1%}</td>" in html
    assert all(f"<th>{c}</th>" in html for c in columns)
    assert np.isclose(sum(p.share for p in fitted.profiles), 1.0, atol=1e-3)


def test_segments_section_says_when_no_model_was_trained() -> None:
    assert "Not reached: the run stopped before Trainer" in section(report.render(summary(), {}, []), "segments")

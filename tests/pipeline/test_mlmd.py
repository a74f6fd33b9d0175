"""pipeline/mlmd.py: the one read-only way into a run's ML Metadata."""
from __future__ import annotations

from pathlib import Path

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline import config as cfg
from pipeline.mlmd import read_only_store


def test_reads_what_a_run_wrote_and_refuses_to_write(tmp_path: Path) -> None:
    path = tmp_path / cfg.METADATA_FILE
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = str(path)
    writer = metadata_store.MetadataStore(connection)
    type_id = writer.put_artifact_type(metadata_store_pb2.ArtifactType(name="Examples"))
    writer.put_artifacts([metadata_store_pb2.Artifact(type_id=type_id, uri="/a")])

    store = read_only_store(path)
    assert [a.uri for a in store.get_artifacts_by_type("Examples")] == ["/a"]
    with pytest.raises(Exception):  # noqa: B017 (ML Metadata's SQLite error type is not public)
        store.put_artifacts([metadata_store_pb2.Artifact(type_id=type_id, uri="/b")])
    assert [a.uri for a in read_only_store(path).get_artifacts_by_type("Examples")] == ["/a"]

"""Read access to a run's SQLite ML Metadata store (`<--output>/metadata.sqlite`, pipeline/config.METADATA_FILE).

The pipeline's readers (run summary, span backfill), the drift check and the simulation open the store the same
way: read-only, so reading never creates a store or takes a write lock next to a running pipeline.
"""
from __future__ import annotations

from pathlib import Path

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2


def read_only_store(metadata_path: Path) -> metadata_store.MetadataStore:
    """The SQLite ML Metadata store at `metadata_path`, opened read-only. The caller checks that the file exists:
    ML Metadata raises on a missing file in read-only mode."""
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = str(metadata_path)
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(connection)

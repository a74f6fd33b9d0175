"""The client's CSV input: read by the pipeline's reader, so a file that trains can be sent as it is."""
from __future__ import annotations

from pathlib import Path

import pytest

from client.tf_serving import ClientError, read_csv_rows, to_instances
from tests.field_cases import SEMICOLON, SPACES_IN_NAMES

DTYPES = {"Age": "DT_INT64", "Total_Spend": "DT_FLOAT", "Gender": "DT_STRING"}


def test_csv_columns_get_the_served_input_names_and_european_numbers_are_read() -> None:
    spaces = to_instances(read_csv_rows(SPACES_IN_NAMES)[:2], DTYPES)
    european = to_instances(read_csv_rows(SEMICOLON)[:2], DTYPES)
    assert spaces == european == [{"Age": 23, "Total_Spend": 222.35, "Gender": "Male"},
                                  {"Age": 33, "Total_Spend": 2595.78, "Gender": "Female"}]
    assert read_csv_rows(SPACES_IN_NAMES)[0]["Customer_ID"] == "1"  # `Customer ID` as the served name


def test_unreadable_csv_is_a_client_error(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a,a\n1,2\n")
    with pytest.raises(ClientError, match="repeats column names: 'a'"):
        read_csv_rows(tmp_path / "d.csv")
    (tmp_path / "h.csv").write_text("a,b\n")
    with pytest.raises(ClientError, match="has no customers"):
        read_csv_rows(tmp_path / "h.csv")

"""The one CSV reader: dialects and encodings, header checks, TensorFlow names, one meaning per value."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline import reader
from tests.field_cases import DUPLICATE_HEADER, SEMICOLON, SPACES_IN_NAMES


def read_all(path: Path, **flags: str) -> tuple[reader.Dialect, reader.Header, pd.DataFrame]:
    dialect = reader.detect_dialect(path, **flags)
    header = reader.read_header(path, dialect)
    frames = [reader.normalize_cells(chunk, dialect, path)
              for _, chunk in reader.read_chunks(path, dialect, header, 1000)]
    return dialect, header, pd.concat(frames)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_european_export_semicolons_and_decimal_commas_are_detected() -> None:
    dialect, header, frame = read_all(SEMICOLON)
    assert (dialect.delimiter, dialect.decimal, dialect.encoding) == (";", ",", "utf-8")
    assert set(dialect.detected) == {"encoding", "delimiter", "decimal"}
    assert "Target_Churn" in header.names and len(header.names) == 15
    assert frame.loc[2, "Annual_Income"] == "24.24" and frame.loc[2, "Total_Spend"] == "222.35"
    assert pd.to_numeric(frame["Average_Transaction_Amount"]).notna().all()


def test_a_wrong_delimiter_flag_says_so_and_suggests_the_flag() -> None:
    with pytest.raises(reader.ReadError, match=r"header has one column.*set --delimiter") as error:
        reader.read_header(SEMICOLON, reader.detect_dialect(SEMICOLON, delimiter=","))
    assert "label" not in str(error.value)


def test_flags_override_detection_and_bad_flag_values_are_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "a|b\n1,5|2\n3,25|4\n")
    assert reader.detect_dialect(path, decimal=".").decimal == "."
    assert reader.detect_dialect(path).decimal == ","
    for flags, message in [({"delimiter": ":"}, "--delimiter must be"), ({"decimal": ";"}, "--decimal must be"),
                           ({"encoding": "klingon"}, "unknown encoding"), ({"delimiter": ",", "decimal": ","},
                                                                           "both ','")]:
        with pytest.raises(reader.ReadError, match=message):
            reader.detect_dialect(path, **flags)


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_every_supported_delimiter_is_detected(tmp_path: Path, delimiter: str) -> None:
    rows = [["id", "name", "spend"], ["1", "Ann", "3.5"], ["2", "Bob", "4"]]
    path = write(tmp_path / "d.csv", "".join(delimiter.join(r) + "\n" for r in rows))
    dialect, header, frame = read_all(path)
    assert dialect.delimiter == delimiter and header.names == ("id", "name", "spend")
    assert list(frame["spend"]) == ["3.5", "4"]


def test_utf8_with_bom_and_excel_windows_code_page_are_read(tmp_path: Path) -> None:
    text = "Kunde,Stadt,Umsatz\n1,Köln,3.5\n2,Zürich,4.25\n3,Genève,1\n"
    _, header, frame = read_all(write(tmp_path / "bom.csv", "\ufeff" + text))
    assert header.names[0] == "Kunde" and list(frame["Stadt"]) == ["Köln", "Zürich", "Genève"]
    dialect, _, frame = read_all(write(tmp_path / "win.csv", text * 20, "cp1252"))
    assert dialect.encoding != "utf-8" and list(frame["Stadt"][:3]) == ["Köln", "Zürich", "Genève"]
    dialect, _, frame = read_all(tmp_path / "win.csv", encoding="cp1252")
    assert dialect.detected == ("delimiter", "decimal") and frame["Stadt"].iloc[1] == "Zürich"


def test_a_wrong_encoding_flag_is_an_error_naming_the_flag(tmp_path: Path) -> None:
    path = write(tmp_path / "win.csv", "a,b\n1,Köln\n", "cp1252")
    with pytest.raises(reader.ReadError, match="not valid utf-8.*--encoding"):
        reader.detect_dialect(path, encoding="utf-8")


def test_repeated_names_are_named_with_their_columns() -> None:
    with pytest.raises(reader.ReadError, match=r"repeats column names: 'Age' in columns 2, 3"):
        reader.read_header(DUPLICATE_HEADER, reader.detect_dialect(DUPLICATE_HEADER))


@pytest.mark.parametrize(("header", "message"), [
    ("a,,b", "column 2 of the header has an empty name"),
    ("a,  ,b", "column 2 of the header has an whitespace-only name"),
    (",a,b", "column 1 of the header has an empty name (an unnamed first column"),
    ("a,b,a ", "repeats column names: 'a' in columns 1, 3"),
    ("Total Spend,Total_Spend,x", "'Total Spend' and 'Total_Spend' -> 'Total_Spend'"),
])
def test_bad_headers_are_errors_naming_the_column(tmp_path: Path, header: str, message: str) -> None:
    path = write(tmp_path / "h.csv", f"{header}\n5,6,7\n8,9,10\n")
    with pytest.raises(reader.ReadError, match=None) as error:
        reader.read_header(path, reader.detect_dialect(path))
    assert message in str(error.value) and str(path) in str(error.value)


def test_an_unnamed_leading_row_index_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "i.csv"
    pd.DataFrame({"a": [5, 6, 7], "b": ["x", "y", "z"]}).to_csv(path)  # pandas' default: the index, unnamed
    _, header, frame = read_all(path)
    assert header.dropped_index and header.written == ("a", "b") and list(frame.columns) == ["a", "b"]
    assert list(frame["a"]) == ["5", "6", "7"]


@pytest.mark.parametrize(("name", "expected"), [
    ("Customer_ID", "Customer_ID"), ("Customer ID", "Customer_ID"), ("Total Spend (€)", "Total_Spend"),
    ("a:b/c", "a_b_c"), ("2nd Phone", "col_2nd_Phone"), ("Café", "Cafe"), ("_x", "x"), ("€", "column_4"),
    ("Größe", "Groe"),
])
def test_tensorflow_name_rule(name: str, expected: str) -> None:
    assert reader.tf_name(name, 3) == expected


def test_names_are_mapped_once_and_flags_take_names_as_written() -> None:
    dialect = reader.detect_dialect(SPACES_IN_NAMES)
    header = reader.read_header(SPACES_IN_NAMES, dialect)
    assert header.mapping == {"Customer ID": "Customer_ID", "Total Spend": "Total_Spend",
                              "Num of Purchases": "Num_of_Purchases", "Churn Value": "Churn_Value"}
    assert header.tf_names(["Churn Value", "Customer_ID", "Age"], "--label", SPACES_IN_NAMES) == \
        ("Churn_Value", "Customer_ID", "Age")
    with pytest.raises(reader.ReadError, match=r"'Churn' \(--label\) is not in the file; its columns are: Customer ID"
                       r".*\(give --label a column name as the header writes it\)"):
        header.tf_names(["Churn"], "--label", SPACES_IN_NAMES)


def test_values_have_one_meaning(tmp_path: Path) -> None:
    path = write(tmp_path / "v.csv", 'age,spend,note,label\n62.0,"1,234.50", n/a ,1.0\n 7 ,3,NULL,0.0\n'
                                     '-3.000,"12,345,678",x,1\n')
    _, _, frame = read_all(path)
    assert list(frame["age"]) == ["62", "7", "-3"]
    assert list(frame["spend"]) == ["1234.50", "3", "12345678"]
    assert list(frame["note"]) == ["", "", "x"] and list(frame["label"]) == ["1", "0", "1"]


def test_decimal_comma_files_drop_point_thousands_separators(tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", "a;b\n1.234,5;2,0\n7;1.234.567\n")
    _, _, frame = read_all(path)
    assert list(frame["a"]) == ["1234.5", "7"] and list(frame["b"]) == ["2", "1234567"]


@pytest.mark.parametrize(("value", "kind"), [("9223372036854775808", "64-bit integer"),
                                             ("-99999999999999999999", "64-bit integer"),
                                             ("3.5e39", "32-bit float"), ("1" * 40 + ".5", "32-bit float")])
def test_numbers_that_do_not_fit_are_errors_naming_the_cell(tmp_path: Path, value: str, kind: str) -> None:
    path = write(tmp_path / "big.csv", f"a,b\n1,2\n3,{value}\n")
    with pytest.raises(reader.ReadError, match=None) as error:
        read_all(path)
    assert f"line 3, column 'b': value {value!r} does not fit a {kind}" in str(error.value)


def test_largest_int64_and_float32_values_fit(tmp_path: Path) -> None:
    path = write(tmp_path / "ok.csv", "a,b\n9223372036854775807,3.4e38\n-9223372036854775807,1\n")
    _, _, frame = read_all(path)
    assert frame.loc[2, "a"] == "9223372036854775807"


def test_empty_and_binary_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(reader.ReadError, match="is empty"):
        reader.detect_dialect(write(tmp_path / "e.csv", "  \n"))
    with pytest.raises(reader.ReadError, match="cannot read"):
        reader.detect_dialect(write(tmp_path / "b.csv", "x") and (tmp_path / "b.csv").write_bytes(b"a\x00b\x00\x01")
                              and tmp_path / "b.csv")


def test_a_header_without_rows_reads_as_no_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "h.csv", "a,b\n")
    dialect = reader.detect_dialect(path)
    assert list(reader.read_chunks(path, dialect, reader.read_header(path, dialect), 10)) == []

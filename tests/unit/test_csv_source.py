from pathlib import Path

import pyarrow as pa
import pytest

from dativo_ingest.config.models import JobSource
from dativo_ingest.engines.native.files.csv import CsvOptions, read_csv, resolve_files
from dativo_ingest.errors import ConfigError, SourceError
from dativo_ingest.stream import Batch, Checkpoint, Rejected


def _run(source: dict, root: Path, names=(), state=None, skip=True):
    files = resolve_files(JobSource.model_validate(source), project_root=root, default_stream="s")
    return list(read_csv(files, column_names=list(names), state=state or {}, skip_unchanged=skip))


def _table(messages) -> pa.Table:
    return pa.Table.from_batches([m.data for m in messages if isinstance(m, Batch)])


def test_person_fixture_reads_ten_rows_as_text(fixtures_dir):
    msgs = _run({"files": [{"path": str(fixtures_dir / "seeds/adventureworks/Person.csv"), "object": "Person"}]},
                fixtures_dir)
    t = _table(msgs)
    assert t.num_rows == 10
    assert set(t.schema.types) == {pa.string()}
    assert t.column("LastName")[0].as_py() == "Sánchez"
    assert isinstance(msgs[-1], Checkpoint) and msgs[-1].stream == "Person"
    assert list(msgs[-1].state["files"]) == ["seeds/adventureworks/Person.csv"]


def test_utf16_with_bom_pipe_delimited_without_header(fixtures_dir):
    src = {"files": [{"path": "seeds/adventureworks/DimCurrency.csv"}], "delimiter": "|",
           "encoding": "utf-16-le", "header": False}
    t = _table(_run(src, fixtures_dir, names=["key", "code", "name"]))
    assert t.column_names == ["key", "code", "name"]
    assert t.column("key")[0].as_py() == "1"  # the BOM is not part of the first value
    assert t.column("code")[0].as_py() == "AFA"
    assert t.num_rows == 105


def test_row_with_too_many_fields_is_rejected_with_its_line(fixtures_dir):
    msgs = _run({"files": [{"path": "seeds/adventureworks/Product_invalid.csv"}]}, fixtures_dir)
    rejected = [m for m in msgs if isinstance(m, Rejected)]
    assert [(r.line, r.reason) for r in rejected] == [(6, "expected 25 fields, got 26")]
    assert rejected[0].origin == "seeds/adventureworks/Product_invalid.csv"
    assert rejected[0].raw.startswith("5,HL Mountain Frame")
    assert _table(msgs).num_rows == 4


def test_unclosed_quote_is_a_file_error_naming_the_line(fixtures_dir):
    with pytest.raises(SourceError, match=r"Product_malformed.csv:4: unclosed quote"):
        _run({"files": [{"path": "seeds/adventureworks/Product_malformed.csv"}]}, fixtures_dir)


def test_options_nulls_skip_rows_latin1_bom_and_globs(tmp_path):
    (tmp_path / "a.csv").write_bytes("junk line\nid;name\n1;Zoë\n2;NA\n".encode("latin-1"))
    (tmp_path / "b.csv").write_bytes("\ufeffid;name\n3;x\n".encode("utf-8"))
    msgs = _run({"files": [{"path": "a.csv", "encoding": "latin-1", "skip_rows": 1},
                           {"path": "b*.csv"}], "delimiter": ";", "null_values": ["NA"]}, tmp_path)
    t = _table(msgs)
    assert t.column("id").to_pylist() == ["1", "2", "3"]
    assert t.column("name").to_pylist() == ["Zoë", None, "x"]


def test_unchanged_files_are_skipped_and_changed_ones_reread(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("id\n1\n")
    first = _run({"files": [{"path": "x.csv"}]}, tmp_path)
    state = {"s": first[-1].state}
    assert _run({"files": [{"path": "x.csv"}]}, tmp_path, state=state) == []
    f.write_text("id\n1\n2\n")
    assert _table(_run({"files": [{"path": "x.csv"}]}, tmp_path, state=state)).num_rows == 2


def test_missing_file_and_bad_delimiter_are_one_line_errors(tmp_path):
    with pytest.raises(SourceError, match=r"source.files\[0\].path: file not found"):
        _run({"files": [{"path": "nope.csv"}]}, tmp_path)
    with pytest.raises(ConfigError, match="delimiter must be one character"):
        CsvOptions.from_layers({"delimiter": ";;"})


def test_wrong_encoding_is_a_clear_error(tmp_path):
    (tmp_path / "u16.csv").write_bytes("id\n1\n".encode("utf-16-le"))
    with pytest.raises(SourceError, match="u16.csv"):
        _run({"files": [{"path": "u16.csv"}]}, tmp_path)


def test_a_row_longer_than_the_block_size_names_the_option_that_fixes_it(tmp_path):
    (tmp_path / "wide.csv").write_text("id,notes\n1," + "x" * 3000 + "\n2,y\n")
    with pytest.raises(SourceError, match=r"wide.csv: a row is longer than the block size \(1024 bytes\).*"
                                          r"source.options.block_size") as failure:
        _run({"files": [{"path": "wide.csv"}], "options": {"block_size": 1024}}, tmp_path)
    assert "\n" not in str(failure.value)
    assert _table(_run({"files": [{"path": "wide.csv"}], "options": {"block_size": 8192}}, tmp_path)).num_rows == 2

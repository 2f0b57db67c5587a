"""The markdown_kv source: a table → Markdown-KV files → table round trip through the CLI, the original
fixture's front-matter layout, and one-line errors naming file:line."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pyarrow as pa
import pytest

from dativo_ingest.engines.native.files.csv import CsvFile, CsvOptions
from dativo_ingest.engines.native.files.markdown_kv import read_markdown_kv
from dativo_ingest.errors import SourceError
from dativo_ingest.formats import markdown_kv
from dativo_ingest.stream import Batch
from tests.acceptance.helpers import cli, make_project, table_rows, write_yaml

FIXTURE = Path("/work/shared/fixtures/dativo-v1/seeds/markdown_kv/sample_doc.md")
FIELDS = [
    {"name": "id", "type": "long", "primary_key": True}, {"name": "s", "type": "string"},
    {"name": "n", "type": "double"}, {"name": "dec", "type": "decimal(12,3)"}, {"name": "b", "type": "boolean"},
    {"name": "d", "type": "date"}, {"name": "t", "type": "time"}, {"name": "ts", "type": "timestamp"},
    {"name": "tz", "type": "timestamptz"}, {"name": "j", "type": "json"}, {"name": "bin", "type": "binary"},
    {"name": "u", "type": "uuid"},
]
ROWS = [
    (1, "plain", 1.5, "1.500", 1, "2024-02-29", "10:00:00.000001", "2024-01-01 01:02:03.000004",
     "2024-01-01 00:00:00+00", '{"a": [1, 2]}', b"\x00\xff", "3ad8a339-b271-4c7a-bdf5-90b788b8ddf5"),
    (2, "", 1 / 3, "-999999999.999", 0, "0001-01-01", "23:59:59.999999", "1970-01-01 00:00:00",
     "2009-01-07 12:00:00+00", '"s"', b"", "00000000-0000-0000-0000-000000000000"),
    (3, "two\nlines: and a # hash ✓", 1e300, "0.000", 1, "9999-12-31", "00:00:00", "2024-02-29 23:59:59",
     "2024-06-30 23:00:00+00", '{"b":\n1}', b"\n", ""),
    (4, None, None, None, None, None, None, None, None, None, None, None),
    (5, '  "quoted" lead/trail  ', -0.0, "12.5", 0, "2000-01-01", "12:34:56", "2000-01-01 00:00:00.5",
     "2000-01-01 00:00:00+00", "null", b"abc", "x"),
    (6, "## not a heading\nkey: not a key", 5e-324, "7", 1, "2024-01-15", "01:02:03", "2024-01-15 10:00:00",
     "2024-01-15 10:00:00+00", "[]", b"\x01\x02", "Ünïcödé"),
]


def _run(project: Path, job: Path, home: Path) -> dict:
    out = cli("run", "--config", str(job), cwd=project, home=home)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _asset(project: Path, name: str, source_type: str) -> str:
    rel = f"assets/{source_type}/v1.0/{name}.yaml"
    write_yaml(project / rel, {"apiVersion": "v3.0.2", "kind": "DataContract", "name": name, "version": "1.0",
                               "source_type": source_type, "domain": "lab", "schema": FIELDS})
    return rel


def _job(project: Path, name: str, body: dict) -> Path:
    return write_yaml(project / f"jobs/acme/{name}.yaml", {"tenant_id": "acme", "engine": "native", **body})


def test_every_stage_type_survives_table_to_markdown_kv_files_to_table(tmp_path):
    db = tmp_path / "src.db"
    con = sqlite3.connect(db)
    with con:
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, n REAL, dec TEXT, b BOOLEAN, d TEXT, t TEXT, "
                    "ts TEXT, tz TEXT, j TEXT, bin BLOB, u TEXT)")
        con.executemany("INSERT INTO t VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", ROWS)
    con.close()
    project = make_project(tmp_path / "project")
    sqlite_source = {"source_connector": "sqlite", "source": {"connection": {"database_path": str(db)},
                                                              "tables": [{"name": "t"}]}}
    home = tmp_path / "home"
    # the original: SQLite → Iceberg
    _run(project, _job(project, "orig", {**sqlite_source, "target_connector": "iceberg", "asset": "orig",
                                         "asset_path": _asset(project, "orig", "sqlite")}), home)
    # the same rows as Markdown-KV files on the local disk, then read back by the markdown_kv source
    _run(project, _job(project, "to_md", {**sqlite_source, "target_connector": "local", "asset": "t",
                                          "asset_path": _asset(project, "t", "sqlite"),
                                          "target": {"file_format": "markdown_kv", "connection": {"path": "out"}}}),
         home)
    md = sorted((project / "out").glob("**/*.md"))
    assert len(md) == 1 and md[0].read_text().count("\n## ") + 1 == len(ROWS)
    back_run = _run(project, _job(project, "back", {
        "source_connector": "markdown_kv", "source": {"files": [{"path": "out/**/*.md"}]},
        "target_connector": "iceberg", "asset": "back", "asset_path": _asset(project, "back", "markdown_kv")}), home)
    assert back_run["rows_written"] == len(ROWS)

    names = [f["name"] for f in FIELDS]
    orig = table_rows(home, "acme.orig").select(names).sort_by("id")
    back = table_rows(home, "acme.back").select(names).sort_by("id")
    assert back.schema.equals(orig.schema)
    for name in names:  # value for value, column by column (no NaN in the data)
        assert back.column(name).to_pylist() == orig.column(name).to_pylist(), name
    rows = {r["id"]: r for r in back.to_pylist()}
    assert rows[3]["s"] == "two\nlines: and a # hash ✓" and rows[2]["s"] == "" and rows[4]["s"] is None
    assert rows[5]["s"] == '  "quoted" lead/trail  ' and rows[6]["s"].startswith("## not a heading\n")
    assert rows[1]["bin"] == b"\x00\xff" and rows[2]["bin"] == b"" and rows[3]["j"] == '{"b":\n1}'
    assert str(rows[2]["dec"]) == "-999999999.999" and rows[2]["n"] == 1 / 3 and rows[6]["n"] == 5e-324
    assert all(v is None for k, v in rows[4].items() if k != "id")

    # a second run skips the unchanged file (file_modified_time, like csv)
    assert _run(project, project / "jobs/acme/back.yaml", home)["rows_written"] == 0


def _read(path: Path, fields=(), chunk_bytes: int = 8 << 20) -> list[pa.RecordBatch]:
    files = [CsvFile("s", path, path.name, CsvOptions())]
    return [m.data for m in read_markdown_kv(files, fields=list(fields), state={}, chunk_bytes=chunk_bytes)
            if isinstance(m, Batch)]


def test_the_original_fixture_front_matter_document_is_one_record():
    if not FIXTURE.is_file():
        pytest.skip("the original fixtures are not on this machine")
    (batch,) = _read(FIXTURE)
    row = batch.to_pylist()
    assert row == [{"doc_id": "doc-001", "title": "Sample Document", "author": "Test User", "created": "2024-01-15",
                    "database_host": "localhost", "database_port": "5432", "database_name": "testdb",
                    "max_connections": "100", "timeout_seconds": "30", "feature_a": "enabled",
                    "feature_b": "disabled", "feature_c": "enabled", "version": "1.0.0",
                    "last_updated": "2024-01-15T10:00:00Z", "tags": "[test, sample, documentation]"}]


def test_small_chunks_give_the_same_rows_and_quoted_keys_and_doc_ids_read_back(tmp_path):
    table = pa.table({"id": pa.array(range(50), pa.int64()), "#k": [f"v{i}\n" for i in range(50)],
                      "a:b": [None if i % 3 else str(i) for i in range(50)]})
    path = tmp_path / "x.md"
    path.write_bytes(markdown_kv.encode_bytes(table, ["id"]))
    whole = pa.Table.from_batches(_read(path, [("doc_id", pa.string())]))
    pieces = _read(path, [("doc_id", pa.string())], chunk_bytes=7)  # one document per batch: keys differ
    small = pa.concat_tables([pa.Table.from_batches([b]) for b in pieces], promote_options="default")
    assert len(pieces) > 1 and whole.num_rows == 50 and whole.equals(small.select(whole.column_names))
    assert whole.column("#k").to_pylist() == table.column("#k").to_pylist()
    assert whole.column("a:b").to_pylist() == table.column("a:b").to_pylist()
    assert whole.column("doc_id").to_pylist() == [str(i) for i in range(50)]


@pytest.mark.parametrize(("text", "where"), [
    ("# Title\n\n## 1\na: 1\n", "x.md:1: not Markdown-KV"),
    ("\n## 1\na: 1\nno separator\n", "x.md:4: not a 'key: value' line"),
    ("## 1\na: 1\n\n## 2\na: 2\na: 3\n", "x.md:6: key 'a' appears twice"),
    ('## 1\n"a: 1\n', "x.md:2: "),
    ("---\ntitle x\n---\n", "x.md:2: not a 'key: value' line in the front matter"),
    ("---\ntitle: x\n", "x.md:1: the '---' front-matter block is never closed"),
])
def test_what_is_not_markdown_kv_is_a_one_line_error_naming_file_and_line(tmp_path, text, where):
    path = tmp_path / "x.md"
    path.write_text(text)
    with pytest.raises(SourceError) as err:
        _read(path)
    assert str(err.value).startswith(where) and "\n" not in str(err.value)


def _storage_project(tmp_path: Path, mode: str, write_mode: str = "merge") -> tuple[Path, Path, Path]:
    db = tmp_path / "kv.db"
    con = sqlite3.connect(db)
    with con:
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, n REAL, bin BLOB)")
        con.executemany("INSERT INTO t VALUES (?,?,?,?)", [(1, "a\nb", 1.5, b"\x00"), (2, None, None, None)])
    con.close()
    project = make_project(tmp_path / "project")
    fields = [{"name": "id", "type": "long", "primary_key": True}, {"name": "s", "type": "string"},
              {"name": "n", "type": "double"}, {"name": "bin", "type": "binary"}]
    write_yaml(project / "assets/sqlite/v1.0/kv.yaml", {"apiVersion": "v3.0.2", "kind": "DataContract", "name": "kv",
                                                       "version": "1.0", "source_type": "sqlite", "schema": fields})
    job = _job(project, "kv", {"source_connector": "sqlite", "target_connector": "iceberg", "asset": "kv",
                               "asset_path": "assets/sqlite/v1.0/kv.yaml",
                               "source": {"connection": {"database_path": str(db)}, "tables": [{"name": "t"}]},
                               "target": {"write_mode": write_mode, "markdown_kv_storage": {"mode": mode}}})
    return project, job, db


def test_iceberg_string_storage_holds_one_document_per_record(tmp_path):
    project, job, db = _storage_project(tmp_path, "string")
    home = tmp_path / "home"
    _run(project, job, home)
    rows = table_rows(home, "acme.kv").sort_by("doc_id")
    assert rows.column_names[:2] == ["doc_id", "content"] and "s" not in rows.column_names
    assert rows.column("doc_id").to_pylist() == ["1", "2"]
    assert rows.column("content").to_pylist() == ['## 1\nid: 1\ns: "a\\nb"\nn: 1.5\nbin: AA==\n', "## 2\nid: 2\n"]
    schema = pa.schema([("id", pa.int64()), ("s", pa.string()), ("n", pa.float64()), ("bin", pa.binary())])
    back = markdown_kv.decode("\n".join(rows.column("content").to_pylist()), schema)
    assert back.to_pylist()[0] == {"id": 1, "s": "a\nb", "n": 1.5, "bin": b"\x00"}


def test_iceberg_structured_storage_holds_one_row_per_field_and_merge_replaces_documents(tmp_path):
    project, job, db = _storage_project(tmp_path, "structured")
    home = tmp_path / "home"
    _run(project, job, home)
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE t SET s = NULL, n = 2.5 WHERE id = 1")
    con.close()
    _run(project, job, home)  # merge: document 1 is replaced as a whole (its 's' row is gone)
    rows = table_rows(home, "acme.kv").select(["doc_id", "section", "key", "value"]).sort_by(
        [("doc_id", "ascending"), ("key", "ascending")]).to_pylist()
    assert rows == [{"doc_id": "1", "section": "kv", "key": "bin", "value": "AA=="},
                    {"doc_id": "1", "section": "kv", "key": "id", "value": "1"},
                    {"doc_id": "1", "section": "kv", "key": "n", "value": "2.5"},
                    {"doc_id": "2", "section": "kv", "key": "id", "value": "2"}]


def test_an_unknown_storage_mode_is_a_one_line_error(tmp_path):
    project, job, _ = _storage_project(tmp_path, "columns")
    out = cli("run", "--config", str(job), cwd=project, home=tmp_path / "home")
    assert out.returncode == 2 and "target.markdown_kv_storage.mode" in out.stderr and "string or structured" in \
        out.stderr

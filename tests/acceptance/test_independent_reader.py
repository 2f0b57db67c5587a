"""What we commit, another engine reads: DuckDB 1.5's iceberg extension (PyPI, offline) sees the demo table's
rows, each key once, the same values pyiceberg reads (issue #17: 7; DESIGN.md's independent reader)."""

from __future__ import annotations

from pathlib import Path

from tests.acceptance.helpers import REPO, catalog, cli
from tests.independent_reader import current_metadata, duckdb_query


def test_duckdb_reads_what_the_demo_commits(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for _ in range(2):  # the second run merges the same rows: still each key once
        run = cli("run", "--config", "jobs/acme/csv_employee_to_iceberg.yaml", cwd=REPO, home=home)
        assert run.returncode == 0, run.stderr
    table = catalog(home).load_table("acme.csv_employee")
    metadata = current_metadata(Path(table.location().removeprefix("file://")))
    [[rows, keys, salaries]] = duckdb_query(
        f"SELECT count(*), count(DISTINCT employee_id), sum(salary) FROM iceberg_scan('{metadata}')")
    ours = table.scan().to_arrow()
    assert rows == keys == ours.num_rows == 20
    assert float(salaries) == float(sum(v for v in ours.column("salary").to_pylist()))

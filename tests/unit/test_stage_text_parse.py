"""The stage parses text columns with Arrow only where Arrow's parser and DuckDB's cast give the same answer.

Every value Arrow's path accepts must be one DuckDB casts to the same value without a violation; a column with one
value outside that common ground goes to DuckDB whole (``exact_column`` returns None).
"""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pyarrow as pa
import pytest

from dativo_ingest.stage.exact import exact_column
from dativo_ingest.stage.stage import Stage, StageField
from dativo_ingest.stage.types import parse_type

TS = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)

CORPUS: dict[str, list[str]] = {
    "long": ["1", "-1", "+1", "007", " 1", "1 ", "0x1F", "0xE", "1e3", "1.0", "1.5", "9223372036854775807",
             "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "", "١٢", "1_000", "--1", "1-"],
    "double": ["1.5", "1e400", "-1e400", "inf", "-inf", "Infinity", "nan", "NaN", " 1.5", "1.", ".5", "1e-400",
               "0x1p3", "1,5", "+1.5", "1.5e+3", "1d", "1.7976931348623157e308", "4.9e-324", "-0", "", "e5", "1e"],
    "boolean": ["true", "false", "True", "TRUE", "1", "0", "t", "f", "yes", "no", "y", " true", "2", "-1", "",
                "tru", "1.0"],
    "date": ["2024-01-01", "2024-1-1", "0000-01-01", "0001-01-01", "9999-12-31", "10000-01-01", "2024-02-30",
             "2024-02-29", "2023-02-29", "2024-01-01 10:00:00", "2024/01/01", "20240101", "2024-13-01", " 2024-01-01",
             "-2024-01-01", "2024-01-01Z"],
    "timestamp": ["2024-01-01", "2024-01-01 10:00:00", "2024-01-01T10:00:00", "2024-01-01T10:00:00Z",
                  "2024-01-01T10:00:00+05:00", "2024-01-01 10:00:00.123456", "2024-01-01 10:00:00.1234567",
                  "2024-01-01 10:00", "2024-01-01 10", "0000-01-01", "2024-02-30", "2024-01-01 24:00:00",
                  "2024-01-01 23:59:60", "20240101", "2024-1-1", "2024-01-01 10:00:00.5", "2024-01-01 10:00:00.",
                  "2024-01-01T10:00:00.000000000", "9999-12-31 23:59:59.999999", "0001-01-01 00:00:00",
                  "2024-01-01 10:00:00-01", "2024-01-01T10:00:00.12Z", "2024-01-01 1:00:00", "2024-01-01 10:0:00",
                  "2024-01-01  10:00:00"],
}
CORPUS["timestamptz"] = CORPUS["timestamp"]
CORPUS["decimal(12,2)"] = ["1.5", "1.005", "1.000", "-0.01", "+1.5", "1e3", "1E-2", "12345678901.23", "123456789012.3",
                           "1234567890.123", " 1.5", "1.", "0.", ".5", "-.5", "1,5", "NaN", "inf", "", "0001.50",
                           "1.50000000000000000000000001", "-0", "1.2.3", "0x1", "1e-5", "9999999999.99",
                           "-9999999999.995", "1e10", "1e11"]
CORPUS["decimal(38,9)"] = CORPUS["decimal(12,2)"] + ["12345678901234567890123456789.123456789",
                                                     "123456789012345678901234567890.1"]


def _fuzz(seeds: list[str], n: int, rng: random.Random) -> list[str]:
    """Mutations of the seeds: a character replaced, dropped or doubled, or a piece of another seed spliced in."""
    alphabet = "0123456789-+:. TZe"
    out = []
    for _ in range(n):
        text = list(rng.choice(seeds) or "0")
        for _ in range(rng.randint(1, 2)):
            i = rng.randrange(len(text)) if text else 0
            kind = rng.randrange(3)
            if kind == 0 and text:
                text[i] = rng.choice(alphabet)
            elif kind == 1 and len(text) > 1:
                del text[i]
            else:
                text.insert(i, rng.choice(alphabet))
        out.append("".join(text))
    return out


def _duckdb_answers(kind: str, values: list[str]) -> list[tuple[object, str | None]]:
    """(typed value, violation reason) of each value, as the stage's DuckDB cast gives them."""
    field = StageField("v", parse_type(kind))
    stage = Stage([field], run_id="r", ingest_ts=TS)
    batch = pa.RecordBatch.from_pydict({"v": pa.array(values, pa.string())})  # noqa: F841 - read by the SQL
    try:
        out = stage.con.sql(stage._cast_sql(batch.schema, fields=[field], system=False, filter_cursor=False)
                            ).to_arrow_table()
    finally:
        stage.close()
    return list(zip(_comparable(out.column("v")).to_pylist(), out.column("_dativo_reason").to_pylist(), strict=True))


def _comparable(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Dates and date-times as their integers (years Python cannot hold compare too), zones included in the type."""
    if pa.types.is_timestamp(values.type):
        return values.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    if pa.types.is_date32(values.type):
        return values.cast(pa.int32())
    return values


@pytest.mark.parametrize("kind", sorted(CORPUS))
def test_every_value_the_arrow_path_accepts_is_the_value_duckdb_gives_without_a_violation(kind: str) -> None:
    logical = parse_type(kind)
    rng = random.Random(kind)
    values = CORPUS[kind] + _fuzz(CORPUS[kind], 1500, rng)
    if kind.startswith("decimal"):  # plain numbers of every length around the precision, the dot anywhere
        for _ in range(1500):
            digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 42)))
            dot = rng.randint(0, len(digits))
            values.append(rng.choice(["", "-", "+"]) + digits[:dot] + rng.choice([".", ""]) + digits[dot:])
    answers = _duckdb_answers(kind, values)
    accepted = 0
    for value, (duck_value, reason) in zip(values, answers, strict=True):
        fast = exact_column(pa.array([value], pa.string()), logical.duckdb, logical.arrow)
        if fast is None:
            continue
        accepted += 1
        assert reason is None, f"{kind}: Arrow accepts {value!r}, DuckDB flags it: {reason}"
        got = _comparable(fast).to_pylist()[0]
        assert got == duck_value or (got != got and duck_value != duck_value), (kind, value, got, duck_value)
    assert accepted >= 3, f"{kind}: the Arrow path accepted almost nothing"


@pytest.mark.parametrize(("kind", "bad"), [("long", "1.5"), ("double", "1e400"), ("boolean", "yes"),
                                            ("date", "2024-1-1"), ("timestamp", "2024-01-01 10"),
                                            ("timestamptz", "2024-01-01T10:00:00+05:00")])
def test_one_value_outside_the_common_ground_sends_the_column_to_duckdb(kind: str, bad: str) -> None:
    logical = parse_type(kind)
    good = {"long": "1", "double": "1.5", "boolean": "true", "date": "2024-01-01", "timestamp": "2024-01-01",
            "timestamptz": "2024-01-01 10:00:00"}[kind]
    assert exact_column(pa.array([good, None], pa.string()), logical.duckdb, logical.arrow) is not None
    assert exact_column(pa.array([good, None, bad], pa.string()), logical.duckdb, logical.arrow) is None


def test_a_csv_like_batch_takes_the_arrow_path_with_the_duckdb_result() -> None:
    fields = [StageField("id", parse_type("long"), required=True), StageField("x", parse_type("double")),
              StageField("at", parse_type("timestamp")), StageField("tz", parse_type("timestamptz")),
              StageField("day", parse_type("date")), StageField("ok", parse_type("boolean")),
              StageField("s", parse_type("string"))]
    batch = pa.RecordBatch.from_pydict({
        "id": ["1", "2", "3"], "x": ["1.5", None, "-2e3"], "at": ["2024-01-01 10:00:00.5", "2024-01-02", None],
        "tz": ["2024-01-01T10:00", None, "1999-12-31 23:59:59"], "day": ["2024-02-29", None, "0001-01-01"],
        "ok": ["TRUE", "0", None], "s": ["a", None, "c"]})
    stage = Stage(fields, run_id="r", ingest_ts=TS)
    try:
        fast = stage._exact(batch, "test", filter_cursor=True)
        slow = stage._cast(batch, "test", 0, filter_cursor=True)
    finally:
        stage.close()
    assert fast is not None
    assert fast.schema == slow.schema and fast.to_pylist() == slow.to_pylist()

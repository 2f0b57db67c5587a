"""ODCS quality rules measured over staged Arrow batches (dativo_ingest/quality)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from dativo_ingest.config.loader import parse_model
from dativo_ingest.config.models import AssetDefinition
from dativo_ingest.errors import ConfigError
from dativo_ingest.quality import (
    QUALITY_PROPERTY,
    Threshold,
    failure_message,
    quality_summary,
    rules_for_asset,
    snapshot_properties,
)
from dativo_ingest.quality.evaluate import QualityEvaluator, RuleResult, check_rules, evaluate

SCHEMA = pa.schema([("id", pa.int64()), ("status", pa.string()), ("age", pa.int64()), ("email", pa.string()),
                    ("amount", pa.decimal128(12, 2)), ("seen", pa.timestamp("us", tz="UTC"))])
FIELDS = [{"name": "id", "type": "long"}, {"name": "status", "type": "string"}, {"name": "age", "type": "integer"},
          {"name": "email", "type": "string"}, {"name": "amount", "type": "decimal(12,2)"},
          {"name": "seen", "type": "timestamptz"}]


def batch(**columns: list[Any]) -> pa.Table:
    n = len(next(iter(columns.values())))
    data = {f.name: columns.get(f.name, [None] * n) for f in SCHEMA}
    return pa.table(data, schema=SCHEMA)


def asset(*, object_rules: list[dict[str, Any]] | None = None, **field_rules: Any) -> AssetDefinition:
    fields = []
    for f in FIELDS:
        extra = field_rules.get(f["name"])
        if isinstance(extra, list):
            extra = {"quality": extra}
        fields.append({**f, **(extra or {})})
    return parse_model(AssetDefinition, {"name": "people", "object": "people", "schema": fields,
                                         "quality": object_rules}, "a.yaml")


def run(a: AssetDefinition, *batches: pa.Table) -> dict[str, RuleResult]:
    return {r.rule: r for r in evaluate(a, batches, SCHEMA, source="a.yaml")}


B1 = batch(id=[1, 2, None], status=["a", "c", None], age=[10, 200, -1], email=["x@a", "y@a", "x@a"])
B2 = batch(id=[2, 3], status=["c", "N/A"], age=[20, 30], email=["z@a", None])


# -- library metrics --------------------------------------------------------------------------------------------


def test_row_count_counts_every_batch() -> None:
    out = run(asset(object_rules=[{"metric": "rowCount", "mustBeGreaterThan": 4},
                                  {"metric": "rowCount", "mustBeBetween": [6, 9]}]), B1, B2)
    first, second = out["people.rowCount"], out["people.rowCount#2"]
    assert first.observed == 5 and first.passed and first.expected == "> 4" and first.level == "object"
    assert second.observed == 5 and second.passed is False and second.expected == "between 6 and 9"


def test_null_values_in_rows_and_percent() -> None:
    out = run(asset(id=[{"metric": "nullValues", "mustBe": 0},
                        {"metric": "nullValues", "mustBeLessThan": 25, "unit": "percent", "id": "few_nulls"}]),
              B1, B2)
    assert out["id.nullValues"].observed == 1 and out["id.nullValues"].passed is False
    assert out["few_nulls"].observed == 20.0 and out["few_nulls"].passed  # 1 of 5 rows
    assert out["id.nullValues"].property == "id" and out["id.nullValues"].level == "property"


def test_missing_values_count_nulls_and_the_listed_values() -> None:
    out = run(asset(status=[{"metric": "missingValues", "arguments": {"missingValues": [None, "", "N/A"]},
                             "mustBe": 0},
                            {"metric": "missingValues", "mustBeLessOrEqualTo": 1}]), B1, B2)
    assert out["status.missingValues"].observed == 2 and out["status.missingValues"].passed is False
    assert out["status.missingValues#2"].observed == 1 and out["status.missingValues#2"].passed  # null, ''


def test_invalid_values_by_list_pattern_range_and_length() -> None:
    out = run(asset(
        status=[{"metric": "invalidValues", "arguments": {"validValues": ["a", "b"]}, "mustBe": 0}],
        age=[{"metric": "invalidValues", "arguments": {"minimum": 0, "maximum": 150}, "mustBe": 0, "name": "range"},
             {"metric": "invalidValues", "arguments": {"exclusiveMinimum": 10}, "mustBe": 0, "name": "above_10"},
             {"metric": "invalidValues", "arguments": {"validValues": [10, 20, 30]}, "mustBeLessThan": 3}],
        email=[{"metric": "invalidValues", "arguments": {"pattern": "^[a-z]+@a$"}, "mustBe": 0},
               {"metric": "invalidValues", "arguments": {"maxLength": 2}, "mustBe": 0, "name": "short"}]),
        B1, B2)
    assert out["status.invalidValues"].observed == 3  # c, c, N/A (NULL is missing, not invalid)
    assert out["range"].observed == 2  # 200, -1
    assert out["above_10"].observed == 2  # 10, -1
    assert out["age.invalidValues"].observed == 2 and out["age.invalidValues"].passed  # 200, -1
    assert out["email.invalidValues"].observed == 0 and out["email.invalidValues"].passed
    assert out["short"].observed == 4  # every address is longer than 2


def test_invalid_values_compare_values_of_the_column_type() -> None:
    b = batch(amount=[Decimal("1.00"), Decimal("2.50"), None], seen=[None, None, None])
    b = b.set_column(5, "seen", pa.array([0, 1_700_000_000_000_000, None], pa.timestamp("us", tz="UTC")))
    out = run(asset(amount=[{"metric": "invalidValues", "arguments": {"maximum": 1.5}, "mustBe": 0}],
                    seen=[{"metric": "invalidValues", "arguments": {"minimum": "2000-01-01"}, "mustBe": 0}]), b)
    assert out["amount.invalidValues"].observed == 1
    assert out["seen.invalidValues"].observed == 1  # 1970-01-01


def test_duplicate_values_across_batches_without_nulls() -> None:
    out = run(asset(id=[{"metric": "duplicateValues", "mustBe": 0}],
                    object_rules=[{"metric": "duplicateValues", "arguments": {"properties": ["id", "status"]},
                                   "mustBe": 0},
                                  {"metric": "duplicateValues", "arguments": {"properties": ["email", "status"]},
                                   "mustBe": 0}]),
              B1, B2)
    assert out["id.duplicateValues"].observed == 1  # 2 twice; NULL is no duplicate
    assert out["people.duplicateValues"].observed == 1  # (2, c) in both batches
    assert out["people.duplicateValues#2"].observed == 0  # (x@a, a) / (x@a, NULL): a NULL key is left out


def test_declared_constraints_are_rules_too() -> None:
    a = asset(email={"unique": True}, age={"logicalTypeOptions": {"minimum": 0, "maximum": 120}})
    assert [r.name for r in rules_for_asset(a)] == ["age.logicalTypeOptions", "email.unique"]
    out = run(a, B1, B2)
    assert out["email.unique"].observed == 1 and out["email.unique"].passed is False
    assert out["age.logicalTypeOptions"].observed == 2


# -- sql rules --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("operator", "value", "passed"), [
    ("mustBe", 1, True), ("mustBe", 0, False), ("mustBeLessThan", 2, True), ("mustBeLessThan", 1, False),
    ("mustBeGreaterThan", 0, True), ("mustBeGreaterThan", 1, False), ("mustBeBetween", [0, 1], True),
    ("mustBeBetween", [2, 5], False), ("mustNotBe", 1, False), ("mustBeGreaterOrEqualTo", 1, True),
    ("mustBeLessOrEqualTo", 0, False), ("mustNotBeBetween", [2, 5], True),
])
def test_sql_rules_run_over_the_staged_rows(operator: str, value: Any, passed: bool) -> None:
    rule = {"type": "sql", "query": "SELECT count(*) FROM {object} WHERE age > 100", operator: value}
    result = run(asset(object_rules=[rule]), B1, B2)["people.sql"]
    assert result.observed == 1 and result.passed is passed and result.kind == "sql"


def test_sql_rules_on_a_property_and_by_the_object_name() -> None:
    out = run(asset(age=[{"type": "sql", "query": "SELECT max(${property}) FROM ${table}", "mustBeLessThan": 150}],
                    object_rules=[{"type": "sql", "query": 'SELECT bool_and(id > 0) FROM "people"', "mustBe": True},
                                  {"type": "sql", "query": "SELECT avg(age) FROM {object}",
                                   "mustBeBetween": [40, 60]}]),
              B1, B2)
    assert out["age.sql"].observed == 200 and out["age.sql"].passed is False
    assert out["people.sql"].observed is True and out["people.sql"].passed
    assert out["people.sql#2"].observed == pytest.approx(51.8) and out["people.sql#2"].passed


@pytest.mark.parametrize(("query", "problem"), [
    ("SELECT 1; SELECT 2", "exactly one SELECT"),
    ("DELETE FROM {object}", "exactly one SELECT"),
    ("SELECT count(*) FROM read_csv('/etc/passwd')", "DuckDB rejects the query"),
    ("SELECT count(*) FROM read_parquet('x.parquet')", "DuckDB rejects the query"),
    ("SELECT status FROM {object}", "return one number or boolean"),
    ("SELECT count(*), 1 FROM {object}", "returns 2 column(s)"),
    ("SELECT count(*) FROM {object} WHERE nope > 1", "DuckDB rejects the query"),
    ("SELECT count(*) FROM {object} WHERE {property} > 1", "names a property"),
    ("SELEC 1", "does not parse"),
])
def test_a_bad_sql_rule_is_refused_before_any_row(query: str, problem: str) -> None:
    a = asset(object_rules=[{"type": "sql", "query": query, "mustBe": 0}])
    with pytest.raises(ConfigError) as info:
        QualityEvaluator.for_asset(a, SCHEMA, source="a.yaml")
    message = str(info.value)
    assert message.startswith("a.yaml: quality: quality rule 'people.sql'") and problem in message, message
    assert "\n" not in message


def test_a_sql_rule_that_fails_on_the_data_says_so_without_the_value() -> None:
    a = asset(object_rules=[{"type": "sql", "query": "SELECT CAST(max(email) AS INTEGER) FROM {object}",
                             "mustBe": 0},
                            {"type": "sql", "query": "SELECT count(*) FROM {object} WHERE false GROUP BY id",
                             "mustBe": 0}])
    out = run(a, B1)
    assert out["people.sql"].passed is False and "ConversionException" in out["people.sql"].error
    assert "y@a" not in out["people.sql"].error
    assert out["people.sql#2"].error == "the query returned no row, not one"
    assert "people.sql: the query failed on the staged rows" in failure_message(list(out.values()), "people")


# -- setup problems, skipped rules ------------------------------------------------------------------------------


def test_rule_arguments_duckdb_cannot_use_are_refused_up_front() -> None:
    for rules in ({"age": [{"metric": "invalidValues", "arguments": {"validValues": ["x"]}, "mustBe": 0}]},
                  {"email": [{"metric": "invalidValues", "arguments": {"pattern": "(["}, "mustBe": 0}]},
                  {"seen": [{"metric": "invalidValues", "arguments": {"minimum": "not a time"}, "mustBe": 0}]}):
        with pytest.raises(ConfigError, match="DuckDB rejects it"):
            QualityEvaluator.for_asset(asset(**rules), SCHEMA, source="a.yaml")


def test_a_rule_on_a_column_the_rows_lack_is_refused() -> None:
    a = asset(id=[{"metric": "nullValues", "mustBe": 0}])
    with pytest.raises(ConfigError, match="names id, not a column of the staged rows"):
        QualityEvaluator.for_asset(a, pa.schema([("other", pa.int64())]), source="a.yaml")


def test_text_and_custom_rules_are_listed_as_skipped() -> None:
    out = run(asset(object_rules=[{"type": "text", "description": "reviewed by HR"},
                                  {"type": "custom", "engine": "soda", "implementation": "x"}]), B1)
    assert out["people.text"].passed is None and "not measured" in out["people.text"].skipped
    assert out["people.custom"].passed is None and "soda" in out["people.custom"].skipped
    assert failure_message(list(out.values()), "people") is None


@pytest.mark.parametrize(("rule", "problem"), [
    ({"metric": "rowCount"}, "exactly one operator"),
    ({"metric": "rowCount", "mustBe": 1, "mustBeLessThan": 3}, "exactly one operator"),
    ({"metric": "rowCounts", "mustBe": 1}, "unknown quality metric 'rowCounts'"),
    ({"type": "sql", "mustBe": 1}, "needs a query"),
    ({"metric": "nullValues", "mustBe": 0}, "measured per property"),
    ({"metric": "duplicateValues", "mustBe": 0}, "needs arguments.properties"),
    ({"metric": "duplicateValues", "arguments": {"properties": ["nope"]}, "mustBe": 0}, "names nope"),
    ({"metric": "rowCount", "mustBe": 1, "unit": "percent"}, "unit percent does not apply"),
    ({"metric": "rowCount", "mustBe": 1, "unit": "bytes"}, "unit 'bytes' is not evaluated"),
    ({"metric": "rowCount", "mustBe": 1, "mustbe": 2}, "unknown key"),
])
def test_malformed_object_rules_fail_when_the_asset_loads(rule: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        asset(object_rules=[rule])
    assert problem in str(info.value) and str(info.value).startswith("a.yaml: ")


def test_malformed_property_rules_fail_when_the_asset_loads() -> None:
    with pytest.raises(ConfigError, match="metric rowCount is measured per object"):
        asset(id=[{"metric": "rowCount", "mustBe": 1}])
    with pytest.raises(ConfigError, match="invalidValues needs arguments"):
        asset(id=[{"metric": "invalidValues", "mustBe": 0}])


# -- results for the commit -------------------------------------------------------------------------------------


def test_results_become_snapshot_properties_and_a_one_line_message() -> None:
    a = asset(id=[{"metric": "nullValues", "mustBe": 0}], object_rules=[{"metric": "rowCount", "mustBe": 5}])
    results = evaluate(a, [B1, B2], SCHEMA)
    props = snapshot_properties(results)
    assert list(props) == [QUALITY_PROPERTY]
    data = json.loads(props[QUALITY_PROPERTY])
    assert data["passed"] == 1 and data["failed"] == 1 and data["skipped"] == 0
    assert data["rules"][0] == {"rule": "people.rowCount", "level": "object", "kind": "library",
                                "metric": "rowCount", "observed": 5, "expected": "= 5", "passed": True,
                                "unit": "rows"}
    assert data == quality_summary(results)
    message = failure_message(results, "people")
    assert message == "1 of 2 quality rule(s) failed on asset people: id.nullValues: observed 1, expected = 0"
    assert snapshot_properties([]) == {}


def test_a_long_failure_list_is_cut_to_one_line() -> None:
    rules = [{"metric": "rowCount", "mustBe": n} for n in range(10, 18)]
    message = failure_message(evaluate(asset(object_rules=rules), [B1], SCHEMA), "people")
    assert message.startswith("8 of 8 quality rule(s) failed") and message.endswith("; and 3 more")
    assert "\n" not in message


def test_thresholds() -> None:
    assert Threshold("mustBe", True).passes(True) and not Threshold("mustBe", 1).passes(True)
    assert not Threshold("mustBeLessThan", 3).passes(None)
    assert Threshold("mustBeBetween", [5, 1]).passes(3)  # smallest first or not
    assert Threshold("mustNotBe", 0).passes(0.5) and Threshold("mustBe", 0).passes(0.0)


def test_empty_input_and_no_rules() -> None:
    out = run(asset(object_rules=[{"metric": "rowCount", "mustBeGreaterThan": 0}],
                    id=[{"metric": "nullValues", "mustBeLessThan": 1, "unit": "percent"}]))
    assert out["people.rowCount"].observed == 0 and out["people.rowCount"].passed is False
    assert out["id.nullValues"].observed == 0.0 and out["id.nullValues"].passed
    assert evaluate(asset(), [B1], SCHEMA) == []


def test_many_rows_in_little_memory_spill_to_disk(tmp_path: Any) -> None:
    """Duplicates and sql rules keep rows in DuckDB, which spills past its memory limit instead of failing."""
    a = asset(id=[{"metric": "duplicateValues", "mustBe": 0}],
              object_rules=[{"type": "sql", "query": "SELECT count(*) FROM {object} WHERE email LIKE '7%'",
                             "mustBe": 0}])
    schema = pa.schema([("id", pa.int64()), ("email", pa.string())])
    evaluator = QualityEvaluator(rules_for_asset(a), schema, object_name="people", spill_dir=tmp_path,
                                 memory_limit="64MB")
    with evaluator:
        for start in range(0, 3_000_000, 500_000):
            ids = pa.array(range(start, start + 500_000), pa.int64())
            evaluator.add(pa.table({"id": ids, "email": pc.cast(ids, pa.string())}, schema=schema))
        evaluator.add(pa.table({"id": [7, 8], "email": ["7", "x"]}, schema=schema))
        out = {r.rule: r for r in evaluator.results()}
    assert out["id.duplicateValues"].observed == 2
    assert out["people.sql"].observed == 111_111 + 1  # 7, 70-79, …, 700000-799999, and the extra row


def test_check_rules_binds_them_against_the_assets_own_columns() -> None:
    check_rules(asset(age=[{"metric": "invalidValues", "arguments": {"minimum": 0}, "mustBe": 0}],
                      object_rules=[{"type": "sql", "query": "SELECT max(seen) > now() FROM {object}",
                                     "mustBe": False}]),
                "a.yaml")
    with pytest.raises(ConfigError, match="a.yaml: quality: quality rule 'people.sql'"):
        check_rules(asset(object_rules=[{"type": "sql", "query": "SELECT count(*) FROM {object} WHERE nope",
                                         "mustBe": 0}]), "a.yaml")

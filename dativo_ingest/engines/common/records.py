"""Airbyte RECORD data → Arrow record batches, typed from the stream's JSON schema.

Mapping (one column per declared property, or per asset field when the engine knows the asset):

| JSON schema                                          | Arrow                    |
|------------------------------------------------------|--------------------------|
| ``integer``, ``number`` + ``airbyte_type: integer``  | int64                    |
| ``number``                                           | int64 if every value is whole, else float64 |
| ``boolean``                                          | bool                     |
| ``string`` + ``format: date-time`` (with time zone)  | timestamp[us, UTC]       |
| ``string`` + ``airbyte_type: timestamp_without_timezone`` | timestamp[us]       |
| ``string`` + ``format: date``                        | date32                   |
| ``string`` (anything else)                           | string                   |
| ``object``, ``array``                                | string holding JSON text |

Nested objects and arrays become **JSON text**, not Arrow structs: Airbyte schemas of nested values
are often loose (``additionalProperties``, ``anyOf``, missing ``properties``), a struct would change
type between batches, and the asset's ``json`` type stores text anyway (DuckDB's JSON functions read
it). A value that does not fit the declared type (a string where an integer is declared, a
timestamp without a zone) does not fail the batch: the column falls back to text and the stage
casts it to the asset's type, quarantining what does not cast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from dativo_ingest.engines.airbyte.protocol import ProtocolError, check_record

INT = "integer"
NUMBER = "number"
BOOL = "boolean"
STRING = "string"
JSON = "json"
TIMESTAMP_TZ = "timestamp_tz"
TIMESTAMP = "timestamp"
DATE = "date"
AUTO = "auto"  # not declared: inferred per batch, text when mixed

_ARROW = {INT: pa.int64(), NUMBER: pa.float64(), BOOL: pa.bool_(), STRING: pa.string(), JSON: pa.string(),
          TIMESTAMP_TZ: pa.timestamp("us", tz="UTC"), TIMESTAMP: pa.timestamp("us"), DATE: pa.date32(),
          AUTO: pa.string()}
_CONVERT_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError,
                   ValueError)


def _types(prop: dict[str, Any]) -> set[str]:
    declared = prop.get("type")
    types = set(declared) if isinstance(declared, list) else {declared} if isinstance(declared, str) else set()
    for key in ("anyOf", "oneOf"):
        for branch in prop.get(key) or ():
            if isinstance(branch, dict):
                types |= _types(branch)
    return types - {"null"}


def column_kind(prop: Any) -> str:
    """How one JSON-schema property becomes a column (see the module docstring)."""
    if not isinstance(prop, dict):
        return AUTO
    types = _types(prop)
    airbyte_type = prop.get("airbyte_type")
    if not types:
        return AUTO
    if types <= {"integer", "number"}:
        return INT if types == {"integer"} or airbyte_type in ("integer", "big_integer") else NUMBER
    if len(types) > 1:
        return STRING if types <= {"string"} else AUTO
    kind = next(iter(types))
    if kind == "boolean":
        return BOOL
    if kind in ("object", "array"):
        return JSON
    if kind == "string":
        fmt = prop.get("format")
        if airbyte_type == "timestamp_without_timezone":
            return TIMESTAMP
        if fmt == "date-time" or airbyte_type == "timestamp_with_timezone":
            return TIMESTAMP_TZ
        if fmt == "date" or airbyte_type == "date":
            return DATE
        return STRING
    return AUTO


def arrow_type(prop: Any) -> pa.DataType:
    """The Arrow type a property gets when its values fit the declared type."""
    return _ARROW[column_kind(prop)]


class StreamColumns:
    """The columns one stream's records are turned into."""

    def __init__(self, json_schema: dict[str, Any], names: Sequence[str] | None = None) -> None:
        props = json_schema.get("properties") if isinstance(json_schema.get("properties"), dict) else {}
        by_lower = {k.lower(): k for k in props}
        if names is None:
            keys = list(props)
        else:  # the asset's fields, matched to the record's keys ignoring case
            keys = [name if name in props else by_lower.get(name.lower(), name) for name in names]
        self.keys = list(dict.fromkeys(keys))
        self.kinds = [column_kind(props.get(k)) for k in self.keys]
        declared = [(k, t) for k, v in props.items() if (t := explicit_type(v)) is not None]
        #: the RECORD message as pyarrow's JSON reader is told to read it (the rest is inferred)
        self.message_schema = pa.schema([("record", pa.struct([("data", pa.struct(declared))]))])
        self._duck: Any = None

    def from_lines(self, lines: list[bytes]) -> pa.RecordBatch:
        """RECORD lines (raw stdout, one or more per item) → a batch, parsed by Arrow's JSON reader; one Python
        pass when that fails.

        The fast path never builds Python objects per row. It fails (and the batch is read again with
        orjson) when a value does not fit its declared type or a line is not JSON; ``ProtocolError``
        when a line is not a RECORD message at all.
        """
        try:
            table = pj.read_json(pa.BufferReader(b"".join(lines)),
                                 read_options=pj.ReadOptions(block_size=8 << 20),
                                 parse_options=pj.ParseOptions(explicit_schema=self.message_schema,
                                                               unexpected_field_behavior="infer"))
            data = table.column("record").combine_chunks().field("data")
            return pa.RecordBatch.from_arrays([self._finish(data, k, kind) for k, kind in zip(self.keys, self.kinds,
                                                                                                strict=True)],
                                              names=self.keys)
        except _FallBack:
            pass
        except _CONVERT_ERRORS:
            pass
        rows = []
        for line in b"".join(lines).splitlines():
            if not line.strip():
                continue
            try:
                message = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise ProtocolError(f"a RECORD line is not valid JSON: {line[:120]!r}") from None
            rows.append(check_record(message)[1])
        return self.to_batch(rows)

    def _finish(self, data: pa.StructArray, key: str, kind: str) -> pa.Array:
        """One column of the Arrow-parsed data, in the shape ``to_array`` gives it."""
        if data.type.get_field_index(key) < 0:
            return pa.nulls(len(data), _ARROW[kind] if kind not in (NUMBER,) else pa.float64())
        if data.null_count:  # a RECORD without data: the Python pass says which
            raise _FallBack
        array = data.field(key)
        kind_type = array.type
        if kind in (TIMESTAMP_TZ, TIMESTAMP, DATE):
            return _temporal_text(array.cast(pa.string()), kind)
        if kind in (JSON, AUTO) and (pa.types.is_nested(kind_type) or pa.types.is_null(kind_type)):
            return self._json_text(array)
        if kind == JSON:
            raise _FallBack
        if kind == NUMBER:
            if pa.types.is_integer(kind_type) or pa.types.is_floating(kind_type):
                return array
            if pa.types.is_null(kind_type):
                return array.cast(pa.float64())
            raise _FallBack
        if kind == AUTO and not (pa.types.is_string(kind_type) or pa.types.is_integer(kind_type)
                                 or pa.types.is_floating(kind_type) or pa.types.is_boolean(kind_type)):
            raise _FallBack
        return array

    def _json_text(self, array: pa.Array) -> pa.Array:
        if pa.types.is_null(array.type):
            return array.cast(pa.string())
        if self._duck is None:
            import duckdb

            self._duck = duckdb.connect(config={"threads": 1})
        nested = pa.table({"v": array})  # noqa: F841 - read by name in the SQL below
        return self._duck.sql("SELECT to_json(v)::VARCHAR AS v FROM nested").to_arrow_table().column(0).combine_chunks()

    def to_batch(self, rows: list[dict[str, Any]]) -> pa.RecordBatch:
        arrays = [to_array([row.get(key) for row in rows], kind) for key, kind in zip(self.keys, self.kinds,
                                                                                        strict=True)]
        return pa.RecordBatch.from_arrays(arrays, names=self.keys)


def to_text(values: list[Any]) -> pa.Array:
    """Strings stay as they are; anything else becomes its JSON text (``true``, ``1.5``, ``{"a": 1}``)."""
    return pa.array([v if v is None or isinstance(v, str) else orjson.dumps(v).decode() for v in values],
                    pa.string())


def to_array(values: list[Any], kind: str) -> pa.Array:
    try:
        if kind == INT:  # inferred first: pa.array(..., int64) would truncate 1.5 to 1
            array = pa.array(values)
            if pa.types.is_integer(array.type) or pa.types.is_null(array.type):
                return array.cast(pa.int64())
            return to_text(values)
        if kind == NUMBER:
            array = pa.array(values)
            if pa.types.is_integer(array.type) or pa.types.is_floating(array.type) or pa.types.is_null(array.type):
                return array.cast(pa.float64()) if pa.types.is_null(array.type) else array
            return to_text(values)
        if kind == BOOL:
            array = pa.array(values)
            if pa.types.is_boolean(array.type) or pa.types.is_null(array.type):
                return array.cast(pa.bool_())
            return to_text(values)
        if kind == STRING:
            return pa.array(values, pa.string())
        if kind == JSON:
            return pa.array([None if v is None else orjson.dumps(v).decode() for v in values], pa.string())
        if kind in (TIMESTAMP_TZ, TIMESTAMP, DATE):
            return _temporal(values, kind)
        array = pa.array(values)  # AUTO
        if pa.types.is_nested(array.type) or pa.types.is_null(array.type):
            return to_text(values)
        return array
    except _CONVERT_ERRORS:
        return to_text(values)


class _FallBack(Exception):
    """The Arrow-parsed batch has a column the fast path cannot shape: read the batch again in Python."""


def explicit_type(prop: Any) -> pa.DataType | None:
    """The type pyarrow's JSON reader is told for a property (None: let it infer)."""
    kind = column_kind(prop)
    if kind == INT:
        return pa.int64()
    if kind == BOOL:
        return pa.bool_()
    if kind in (STRING, TIMESTAMP, TIMESTAMP_TZ, DATE):
        return pa.string()
    if kind == JSON and isinstance(prop, dict):
        types = _types(prop)
        children = prop.get("properties")
        if types == {"object"} and isinstance(children, dict) and children:
            return pa.struct([(k, t) for k, v in children.items() if (t := explicit_type(v)) is not None])
        items = prop.get("items")
        if types == {"array"} and isinstance(items, dict) and (t := explicit_type(items)) is not None:
            return pa.list_(t)
    return None


def _temporal_text(text: pa.Array, kind: str) -> pa.Array:
    try:
        return pc.cast(text, _ARROW[kind])
    except _CONVERT_ERRORS:
        pass
    if kind == TIMESTAMP_TZ:
        try:
            has_offset = pc.match_substring_regex(text, r"(Z|[+-]\d\d(:?\d\d)?)$")
            utc = pc.if_else(has_offset, text, pc.binary_join_element_wise(text, pa.scalar("Z"), ""))
            return pc.cast(utc, _ARROW[kind])
        except _CONVERT_ERRORS:
            pass
    return text


def _temporal(values: list[Any], kind: str) -> pa.Array:
    text = pa.array(values, pa.string())
    return _temporal_text(text, kind)


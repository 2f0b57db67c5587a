"""The one JSON Schema → Arrow mapping, used by every engine whose connector declares its records in JSON Schema
(Airbyte's ``json_schema`` of a catalog stream, Singer's ``SCHEMA`` message).

| JSON Schema of a property                                | kind             | Arrow              |
|----------------------------------------------------------|------------------|--------------------|
| ``integer`` (or ``number`` + ``airbyte_type: integer``)  | ``integer``      | int64              |
| ``number`` (or ``integer`` and ``number``)               | ``number``       | int64 or float64 ¹ |
| ``boolean``                                              | ``boolean``      | bool               |
| ``string`` + ``format: date-time``                       | ``timestamp_tz`` | timestamp[us, UTC] |
| ``string`` + ``airbyte_type: timestamp_without_timezone``| ``timestamp``    | timestamp[us]      |
| ``string`` + ``format: date``                            | ``date``         | date32             |
| ``string`` (anything else)                               | ``string``       | string             |
| ``object``, ``array``, or a mix of types with either     | ``json``         | string: JSON text  |
| not declared, or a mix of scalar types                   | ``auto``         | inferred per batch |

¹ int64 when every value of the batch is a whole number below 2**53. A date-time without an offset is read as
UTC. An ``auto`` column keeps the type Arrow infers for the batch's values; nested values become JSON text, a mix
of types text.

``null`` in a type list only makes the column nullable; ``anyOf`` / ``oneOf`` / ``allOf`` branches add their
types. Nested values are **JSON text**, not Arrow structs: such schemas are often loose
(``additionalProperties``, ``anyOf``, missing ``properties``), a struct would change type between batches, and the
asset's ``json`` type stores text anyway. A value that does not fit its declared type does not fail a batch: its
column falls back to text for that batch and the stage casts it to the asset's type, quarantining what does not
cast (see ``engines.common.records``).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

INT = "integer"
NUMBER = "number"
BOOL = "boolean"
STRING = "string"
JSON = "json"
TIMESTAMP_TZ = "timestamp_tz"
TIMESTAMP = "timestamp"
DATE = "date"
AUTO = "auto"

#: the Arrow type of each kind when the batch's values fit it
ARROW = {INT: pa.int64(), NUMBER: pa.float64(), BOOL: pa.bool_(), STRING: pa.string(), JSON: pa.string(),
         TIMESTAMP_TZ: pa.timestamp("us", tz="UTC"), TIMESTAMP: pa.timestamp("us"), DATE: pa.date32(),
         AUTO: pa.string()}
TEMPORAL = frozenset({TIMESTAMP_TZ, TIMESTAMP, DATE})


def declared_types(prop: Any) -> set[str]:
    """The JSON types a property may take, ``null`` left out (its ``type`` and those of its branches)."""
    if not isinstance(prop, dict):
        return set()
    declared = prop.get("type")
    types = {str(t) for t in declared} if isinstance(declared, list) else {declared} if isinstance(declared, str) \
        else set()
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in prop.get(key) or ():
            types |= declared_types(branch)
    return types - {"null"}


def column_kind(prop: Any) -> str:
    """How one JSON Schema property becomes a column (see the module docstring)."""
    if not isinstance(prop, dict):
        return AUTO
    types = declared_types(prop)
    airbyte_type = prop.get("airbyte_type")
    if not types:
        return JSON if prop.get("properties") or prop.get("items") else AUTO
    if types <= {"integer", "number"}:
        return INT if types == {"integer"} or airbyte_type in ("integer", "big_integer") else NUMBER
    if types & {"object", "array"}:
        return JSON
    if len(types) > 1:
        return AUTO
    kind = next(iter(types))
    if kind == "boolean":
        return BOOL
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
    """The Arrow type a property's column gets when the batch's values fit the declared type."""
    return ARROW[column_kind(prop)]


def explicit_type(prop: Any) -> pa.DataType | None:
    """The type Arrow's JSON reader is told for a property (None: it infers the type from the values).

    Temporal values are read as text and converted after (``records.temporal``); an object or array of declared
    structure is read as that structure (and written back as JSON text)."""
    kind = column_kind(prop)
    if kind == INT:
        return pa.int64()
    if kind == NUMBER:  # whole numbers become int64 after (``records.number``)
        return pa.float64()
    if kind == BOOL:
        return pa.bool_()
    if kind == STRING or kind in TEMPORAL:
        return pa.string()
    if kind == JSON and isinstance(prop, dict):
        types = declared_types(prop)
        children = prop.get("properties")
        if types == {"object"} and isinstance(children, dict) and children:
            return pa.struct([(k, t) for k, v in children.items() if (t := explicit_type(v)) is not None])
        items = prop.get("items")
        if types == {"array"} and isinstance(items, dict) and (t := explicit_type(items)) is not None:
            return pa.list_(t)
    return None


__all__ = ["ARROW", "AUTO", "BOOL", "DATE", "INT", "JSON", "NUMBER", "STRING", "TEMPORAL", "TIMESTAMP",
           "TIMESTAMP_TZ", "arrow_type", "column_kind", "declared_types", "explicit_type"]

"""Which column types may widen into which: the one rule both the Iceberg and the database sinks follow.

Iceberg's promotions are the rule: ``int`` → ``long``, ``float`` → ``double``, ``decimal(P,S)`` → ``decimal(P',S)``
with ``P' > P``. When an asset now declares a wider type than the table holds, the table's column is widened; when
it declares a narrower one, rows are written in the table's type (lossless); anything else is refused up front.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pyarrow as pa

PROMOTIONS = "int → long, float → double, decimal(P,S) → decimal(P',S) with P' > P"


def same_type(a: pa.DataType, b: pa.DataType) -> bool:
    """Equal, counting string/large_string and binary/large_binary as one type each."""
    text = (pa.string(), pa.large_string())
    blob = (pa.binary(), pa.large_binary())
    return a == b or (a in text and b in text) or (a in blob and b in blob)


def widens(narrow: pa.DataType, wide: pa.DataType) -> bool:
    """Whether a column of type ``narrow`` may be promoted to ``wide``."""
    if pa.types.is_int32(narrow) and pa.types.is_int64(wide):
        return True
    if pa.types.is_float32(narrow) and pa.types.is_float64(wide):
        return True
    if pa.types.is_decimal(narrow) and pa.types.is_decimal(wide):
        return narrow.scale == wide.scale and wide.precision > narrow.precision
    return False


@dataclass
class Reconciled:
    """How rows of an asset's schema go into a table whose columns have other types."""

    #: columns to widen in the table, with the asset's (wider) type
    widen: dict[str, pa.DataType] = field(default_factory=dict)
    #: the schema to write rows in (the table's wider types where the asset's are narrower)
    write_schema: pa.Schema | None = None
    #: (column, the table's type, the asset's type) that no promotion joins
    refused: list[tuple[str, pa.DataType, pa.DataType]] = field(default_factory=list)


def reconcile(current: Mapping[str, pa.DataType], wanted: pa.Schema) -> Reconciled:
    """Compare the table's known column types with the asset's staged schema (columns missing from ``current``
    are new, or of a type the caller does not compare, and pass as given)."""
    out = Reconciled()
    write_fields = []
    for f in wanted:
        have = current.get(f.name)
        if have is None or same_type(f.type, have):
            write_fields.append(f)
        elif widens(f.type, have):  # the table is wider: write in its type
            write_fields.append(pa.field(f.name, have, f.nullable))
        elif widens(have, f.type):  # the asset is wider: widen the table
            out.widen[f.name] = f.type
            write_fields.append(f)
        else:
            out.refused.append((f.name, have, f.type))
            write_fields.append(f)
    if any(not same_type(a.type, b.type) for a, b in zip(write_fields, wanted, strict=True)):
        out.write_schema = pa.schema(write_fields)
    return out


__all__ = ["PROMOTIONS", "Reconciled", "reconcile", "same_type", "widens"]

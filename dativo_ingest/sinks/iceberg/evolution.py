"""When an asset's type of a column differs from the table's: widen the table, write in the table's wider type,
or refuse — Iceberg's type promotions are the rule.

Iceberg lets a column widen only: ``int`` → ``long``, ``float`` → ``double``, ``decimal(P,S)`` → ``decimal(P',S)``
with ``P' > P``. So when the asset now declares a wider type than the table holds, the table's column is widened
(a metadata change; old files are read as the wider type); when the asset declares a narrower type than the
table holds, rows are written in the table's type (lossless); anything else (``string`` ← ``long``,
``decimal`` ← ``double``, a scale change) is one line naming the table, the column and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
from pyiceberg.schema import Schema
from pyiceberg.types import DecimalType, DoubleType, IcebergType, LongType

from dativo_ingest.errors import ConfigError
from dativo_ingest.sinks.promotion import PROMOTIONS, reconcile


@dataclass
class TypeChanges:
    """What reconciling an asset's Arrow schema with a table's schema needs."""

    #: columns to widen in the table, with their new Iceberg type
    widen: dict[str, IcebergType] = field(default_factory=dict)
    #: the schema rows are written in (the table's wider types where the asset's are narrower); None: as given
    write_schema: pa.Schema | None = None


def _iceberg(arrow: pa.DataType) -> IcebergType:
    if pa.types.is_int64(arrow):
        return LongType()
    if pa.types.is_float64(arrow):
        return DoubleType()
    assert pa.types.is_decimal(arrow)
    return DecimalType(arrow.precision, arrow.scale)


def type_changes(table_schema: Schema, wanted: pa.Schema, *, identifier: str, where: object = None) -> TypeChanges:
    """How rows of ``wanted`` (the asset's staged schema) go into a table of ``table_schema`` (see the module)."""
    current = table_schema.as_arrow()
    result = reconcile({f.name: f.type for f in current}, wanted)
    for name, _have, want in result.refused[:1]:
        held = table_schema.find_field(name).field_type
        raise ConfigError(where, f"{identifier}: column '{name}' is {held} in the table but the asset now "
                          f"declares {want}; Iceberg can only widen a column ({PROMOTIONS})",
                          fix="keep the column's type in the asset, or give the asset a new name (a new table) "
                              "and load it again")
    return TypeChanges({name: _iceberg(t) for name, t in result.widen.items()}, result.write_schema)


__all__ = ["PROMOTIONS", "TypeChanges", "type_changes"]

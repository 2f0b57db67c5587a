"""The asset's logical types, and how each is cast in DuckDB and stored in Arrow/Iceberg."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

_DECIMAL = re.compile(r"^decimal\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)$")

#: logical name -> (DuckDB type, Arrow type)
_SIMPLE: dict[str, tuple[str, pa.DataType]] = {
    "string": ("VARCHAR", pa.string()),
    "uuid": ("VARCHAR", pa.string()),
    "integer": ("BIGINT", pa.int64()),
    "int": ("BIGINT", pa.int64()),
    "long": ("BIGINT", pa.int64()),
    "bigint": ("BIGINT", pa.int64()),
    "float": ("FLOAT", pa.float32()),
    "double": ("DOUBLE", pa.float64()),
    "number": ("DOUBLE", pa.float64()),
    "boolean": ("BOOLEAN", pa.bool_()),
    "bool": ("BOOLEAN", pa.bool_()),
    "date": ("DATE", pa.date32()),
    "time": ("TIME", pa.time64("us")),
    "timestamp": ("TIMESTAMP", pa.timestamp("us")),
    "datetime": ("TIMESTAMP", pa.timestamp("us")),
    "timestamptz": ("TIMESTAMPTZ", pa.timestamp("us", tz="UTC")),
    "timestamp_tz": ("TIMESTAMPTZ", pa.timestamp("us", tz="UTC")),
    "json": ("JSON", pa.string()),
    "binary": ("BLOB", pa.binary()),
}


@dataclass(frozen=True)
class LogicalType:
    name: str
    duckdb: str
    arrow: pa.DataType

    @property
    def is_text(self) -> bool:
        return self.duckdb == "VARCHAR"


def parse_type(text: str) -> LogicalType:
    """Map an asset field type (``integer``, ``decimal(10,2)``, ``timestamptz`` …) to its storage types."""
    key = text.strip().lower()
    if key in _SIMPLE:
        duck, arrow = _SIMPLE[key]
        return LogicalType(key, duck, arrow)
    if key == "decimal":
        return LogicalType("decimal(38,9)", "DECIMAL(38,9)", pa.decimal128(38, 9))
    m = _DECIMAL.match(key)
    if m:
        p, s = int(m.group(1)), int(m.group(2))
        if not 1 <= p <= 38 or s > p:
            raise ValueError(f"decimal({p},{s}) is out of range (1 <= precision <= 38, scale <= precision)")
        return LogicalType(f"decimal({p},{s})", f"DECIMAL({p},{s})", pa.decimal128(p, s))
    if key.startswith("array<") and key.endswith(">"):
        # arrays arrive as JSON text from files; kept as JSON strings until a source delivers lists
        return LogicalType(key, "JSON", pa.string())
    raise ValueError(f"unknown type '{text}'")

"""One page of JSON records → one Arrow record batch with the asset's columns.

The records are the Python objects ``orjson`` decoded; pyarrow turns the whole page into a struct array in one
C++ call, with a struct type that holds only the asset's fields (nested paths such as ``address.city`` are
nested struct fields), so no Python runs per record. Each field's *wire type* (how pyarrow reads the JSON value)
is chosen from the asset type and kept for the next pages of the stream; when a page does not fit it (an
id that arrives as a number, say), only that field is probed again, and the last resort is a per-value
conversion to text that the stage then casts or quarantines — never a silent change: a fraction in an
integer field stays text (and fails the cast) instead of being truncated.

After the conversion: Unix times in date/time fields (numbers, or numeric text like Slack's ``ts``) become
timestamps, ISO 8601 text with an offset becomes UTC; objects and arrays become JSON text (``json`` fields,
and any field whose value is nested).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from dativo_ingest.engines.native.rest.spec import FieldSpec
from dativo_ingest.engines.native.rest.templates import dig, render
from dativo_ingest.stage.types import LogicalType, parse_type

#: a wire type that is not an Arrow type: every value converted in Python (text; JSON text when nested)
TEXT = "text"
#: JSON text of every value (``json`` fields)
JSON = "json"

_TEMPORAL = {"DATE", "TIME", "TIMESTAMP", "TIMESTAMPTZ"}
_NUMERIC_TEXT = r"^\s*-?\d+(\.\d+)?([eE][-+]?\d+)?\s*$"


def _wire_candidates(logical: LogicalType) -> list[Any]:
    duck = logical.duckdb
    if duck == "JSON":
        return [JSON]
    if duck == "VARCHAR":
        return [pa.string(), TEXT]
    if duck == "BIGINT":  # float64 first: pyarrow would truncate 1.5 to 1 in an int64 wire
        return [pa.float64(), pa.int64(), pa.string(), TEXT]
    if duck in ("FLOAT", "DOUBLE") or duck.startswith("DECIMAL"):
        return [pa.float64(), pa.string(), TEXT]
    if duck == "BOOLEAN":
        return [pa.bool_(), pa.string(), TEXT]
    if duck in _TEMPORAL:
        return [pa.string(), pa.float64(), pa.int64(), TEXT]
    return [pa.string(), TEXT]


@dataclass
class _Slot:
    """One path read for one asset field, with its current wire type."""

    path: tuple[str, ...]
    candidates: list[Any]
    choice: int = 0

    @property
    def wire(self) -> Any:
        return self.candidates[self.choice]

    @property
    def in_struct(self) -> bool:
        return isinstance(self.wire, pa.DataType)


@dataclass
class OutputField:
    """An asset field and where its values come from."""

    name: str
    logical: LogicalType
    slots: list[_Slot] = field(default_factory=list)
    template: str | None = None
    epoch_ms: bool = False


def output_fields(asset_fields: list[tuple[str, str]], mapping: dict[str, Any]) -> list[OutputField]:
    """The asset's fields (name, type) with their sources: the stream's ``fields`` mapping, else the field's
    own name as a dotted path (``address.city`` reads ``{"address": {"city": …}}``)."""
    out = []
    for name, type_text in asset_fields:
        logical = parse_type(type_text)
        source = mapping.get(name, name)
        spec = source if isinstance(source, FieldSpec) else None
        if spec is None and isinstance(source, str) and source.startswith("{"):
            spec = FieldSpec(template=source)
        elif spec is None:
            spec = FieldSpec(path=source)
        target = OutputField(name, logical, epoch_ms=spec.epoch == "ms")
        if spec.template is not None:
            target.template = spec.template
        else:
            paths = spec.path if isinstance(spec.path, list) else [spec.path]
            target.slots = [_Slot(tuple(str(p).split(".")), _wire_candidates(logical)) for p in paths]
        out.append(target)
    return out


class RecordsError(ValueError):
    """The records of a page are not what the stream declares (not a list of JSON objects)."""


class PageDecoder:
    """Decodes the pages of one stream; remembers the wire types that worked."""

    def __init__(self, fields: list[OutputField]) -> None:
        self.fields = fields
        self._struct: pa.StructType | None = None
        #: each struct slot's field indices in the current struct type
        self._indices: dict[tuple[str, ...], list[int]] = {}

    # -- the struct of every field read by pyarrow -------------------------------------------------------
    def _slots(self) -> list[_Slot]:
        return [s for f in self.fields for s in f.slots]

    def _struct_type(self) -> pa.StructType:
        if self._struct is None:
            tree: dict[str, Any] = {}
            for slot in self._slots():
                if not slot.in_struct:
                    continue
                if not _place(tree, slot.path, slot.wire):  # a path clashes with another (leaf vs object)
                    slot.choice = len(slot.candidates) - 1  # read that one value by value
            self._struct = _to_type(tree)
        return self._struct

    def _convert(self, records: list[Any]) -> pa.StructArray:
        try:
            return pa.array(records, type=self._struct_type())
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass
        if not all(isinstance(r, dict) for r in records):
            raise RecordsError("the records are not JSON objects") from None
        for slot in self._slots():  # find the fields this page does not fit, and read them another way
            while slot.in_struct and not _fits(records, slot):
                slot.choice += 1
        self._struct = None
        self._indices = {}
        return pa.array(records, type=self._struct_type())

    # -- a page --------------------------------------------------------------------------------------------
    def decode(self, records: list[Any], context: dict[str, Any]) -> pa.RecordBatch | None:
        """The page's records as a batch with the asset's columns (``context``: the values templates see);
        None for an empty page."""
        n = len(records)
        if n == 0:
            return None
        struct = self._convert(records)
        # the top-level children in one call (each with the struct's nulls folded in)
        children = dict(zip(self._struct_type().names, struct.flatten(), strict=True))
        columns = []
        for f in self.fields:
            if f.template is not None:
                value = render(f.template, context)
                columns.append(_constant(value, n))
                continue
            parts = [_finish(self._read(children, records, slot), f) for slot in f.slots]
            columns.append(_coalesce(parts))
        return pa.record_batch(columns, names=[f.name for f in self.fields])

    def _read(self, children: dict[str, pa.Array], records: list[Any], slot: _Slot) -> pa.Array:
        if slot.in_struct:
            top = children[slot.path[0]]
            if len(slot.path) == 1:
                return top
            indices = self._indices.get(slot.path)
            if indices is None:
                indices = self._indices[slot.path] = _indices(top.type, slot.path[1:])
            return pc.struct_field(top, indices)
        if len(slot.path) == 1:
            key = slot.path[0]
            values = [r.get(key) for r in records]
        else:
            values = [dig(r, ".".join(slot.path)) for r in records]
        if slot.wire == JSON:
            dumps = orjson.dumps
            return pa.array([None if v is None else dumps(v) for v in values], pa.string())
        return pa.array([_as_text(v) for v in values], pa.string())


def _place(tree: dict[str, Any], path: tuple[str, ...], wire: pa.DataType) -> bool:
    node = tree
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return False
        node = child
    leaf = path[-1]
    if leaf in node and (isinstance(node[leaf], dict) or node[leaf] != wire):
        return False
    node[leaf] = wire
    return True


def _to_type(tree: dict[str, Any]) -> pa.StructType:
    return pa.struct([pa.field(k, _to_type(v) if isinstance(v, dict) else v) for k, v in tree.items()])


def _indices(struct: pa.StructType, path: tuple[str, ...]) -> list[int]:
    out, current = [], struct
    for part in path:
        index = current.get_field_index(part)
        out.append(index)
        current = current.field(index).type
    return out


def _fits(records: list[Any], slot: _Slot) -> bool:
    tree: dict[str, Any] = {}
    _place(tree, slot.path, slot.wire)
    try:
        pa.array(records, type=_to_type(tree))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return False
    return True


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _constant(value: Any, n: int) -> pa.Array:
    text = _as_text(value)
    return pa.array([text] * n, pa.string())


def _coalesce(parts: list[pa.Array]) -> pa.Array:
    if len(parts) == 1:
        return parts[0]
    if len({p.type for p in parts}) > 1:
        parts = [p if pa.types.is_string(p.type) else pc.cast(p, pa.string()) for p in parts]
    return pc.coalesce(*parts)


def _finish(array: pa.Array, f: OutputField) -> pa.Array:
    """Turn a wire column into what the stage can cast exactly to the asset type."""
    duck = f.logical.duckdb
    t = array.type
    if duck == "BIGINT" and pa.types.is_floating(t):
        try:
            return pc.cast(array, pa.int64())  # a safe cast: refuses to drop a fraction
        except pa.ArrowInvalid:
            return pc.cast(array, pa.string())  # a fraction: the stage refuses it rather than rounding
    if duck.startswith("DECIMAL") and pa.types.is_floating(t):
        return pc.cast(array, pa.string())  # shortest text of the double: "12.34", cast exactly by the stage
    if duck in _TEMPORAL:
        return _temporal(array, f)
    return array


def _temporal(array: pa.Array, f: OutputField) -> pa.Array:
    target = f.logical.arrow
    if pa.types.is_string(array.type):
        present = pc.drop_null(array)
        if len(present) and pc.all(pc.match_substring_regex(present, _NUMERIC_TEXT)).as_py():
            array = pc.cast(array, pa.float64())  # Unix time as text (Slack "1512085950.000216")
        else:
            return _iso(array, target)
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
        scale = 1_000 if f.epoch_ms else 1_000_000
        try:
            if pa.types.is_integer(array.type):
                micros = pc.multiply_checked(pc.cast(array, pa.int64()), scale)
            else:
                micros = pc.cast(pc.round(pc.multiply(array, float(scale))), pa.int64())
        except pa.ArrowInvalid:  # out of any date's range: the text goes on, and the stage refuses it
            return pc.cast(array, pa.string())
        stamps = micros.view(pa.timestamp("us", tz="UTC"))  # µs since the epoch, as they are
        return _to_target(stamps, target)
    return array


def _iso(array: pa.Array, target: pa.DataType) -> pa.Array:
    """ISO 8601 text → timestamps when Arrow reads every value (offsets to UTC); otherwise the text as it is."""
    for kind in (pa.timestamp("us", tz="UTC"), pa.timestamp("us")):
        try:
            stamps = pc.cast(array, kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if kind.tz is None:
            stamps = pc.assume_timezone(stamps, "UTC")
        return _to_target(stamps, target)
    return array


def _to_target(stamps: pa.Array, target: pa.DataType) -> pa.Array:
    if pa.types.is_timestamp(target):
        return stamps if target.tz is not None else stamps.cast(pa.timestamp("us"))  # naive: the UTC wall time
    if pa.types.is_date(target):
        return pc.cast(stamps, pa.date32())
    return stamps


__all__ = ["OutputField", "PageDecoder", "RecordsError", "output_fields"]

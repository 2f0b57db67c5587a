"""Markdown-KV: one Markdown document per record, LLM-friendly and exactly reversible.

```
## 42
id: 42
name: Ana Lucía
note: "two\\nlines"
```

Each record is ``## <doc id>`` followed by one ``key: value`` line per non-null field (a null is an absent
line), records separated by a blank line. The doc id is the record's primary key (values joined by ``|``), or
its ordinal when the asset has none. Values are written as Arrow casts them to text (ISO dates and times,
shortest round-trip floats, exact decimals, ``true``/``false``) and binary as base64; a string that is empty,
starts with ``"``, has leading or trailing whitespace or holds a control character (a newline…) is written as a
JSON string literal. ``decode`` with the same schema gives back the same table, value for value.

Encoding is columnar (Arrow compute); only the rare strings that need quoting and binary values go through
Python one by one.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

DOC_PREFIX = "## "
ID_SEPARATOR = "|"
#: a string value written raw would not read back the same (or would break the line)
_NEEDS_QUOTES = '^$|^"|^\\s|\\s$|[\\x00-\\x1f\\x7f\\x{85}\\x{2028}\\x{2029}]'


def _quote_where_needed(text: pa.Array) -> pa.Array:
    """Strings as written: raw, or a JSON literal where raw text would not read back the same."""
    needs = pc.fill_null(pc.match_substring_regex(text, _NEEDS_QUOTES), False)
    if not pc.any(needs).as_py():
        return text
    quoted = [json.dumps(v, ensure_ascii=False) for v in pc.filter(text, needs).to_pylist()]
    return pc.replace_with_mask(text, needs, pa.array(quoted, pa.string()))


def _as_text(column: pa.Array) -> pa.Array:
    """A column as the text written after ``key: `` (nulls stay null)."""
    t = column.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _quote_where_needed(pc.cast(column, pa.string()))
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return pa.array([None if v is None else base64.b64encode(v).decode() for v in column.to_pylist()],
                        pa.string())
    if (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_boolean(t)
            or pa.types.is_date(t) or pa.types.is_time(t) or pa.types.is_timestamp(t)):
        return pc.cast(column, pa.string())
    raise NotImplementedError(f"Markdown-KV cannot write a column of Arrow type {t} (only the stage's scalar types)")


def _key_text(name: str) -> str:
    return json.dumps(name, ensure_ascii=False) if (":" in name or name.startswith(("#", '"')) or
                                                     name != name.strip() or not name.isprintable()) else name


def doc_ids(table: pa.Table, id_columns: Sequence[str], start: int = 0) -> pa.Array:
    """The doc id of each row: the primary-key values joined by ``|``, or ordinals from ``start``."""
    if not id_columns:
        return pc.cast(pa.array(range(start, start + table.num_rows), pa.int64()), pa.string())
    parts = [pc.fill_null(pc.cast(table.column(c), pa.string()), "") for c in id_columns]
    ids = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, ID_SEPARATOR)
    return _quote_where_needed(ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids)


def encode(table: pa.Table, id_columns: Sequence[str] = (), *, start: int = 0) -> pa.Array:
    """One Markdown-KV document per row (each ending with a blank line), as a string array."""
    table = table.combine_chunks()
    lines: list[pa.Array] = [pc.binary_join_element_wise(DOC_PREFIX, doc_ids(table, id_columns, start), "")]
    for name in table.column_names:
        text = _as_text(table.column(name).combine_chunks())
        lines.append(pc.binary_join_element_wise(f"{_key_text(name)}: ", text, ""))  # null stays null
    lines.append(pa.array([""] * table.num_rows, pa.string()))  # the blank line after each document
    return pc.binary_join_element_wise(*lines, "\n", null_handling="skip")


def encode_bytes(table: pa.Table, id_columns: Sequence[str] = (), *, start: int = 0) -> bytes:
    """The documents of ``table`` as one UTF-8 text (no per-row Python: the string array's data buffer)."""
    docs = encode(table, id_columns, start=start)
    if len(docs) == 0:
        return b""
    docs = pc.binary_join_element_wise(docs, "", "\n")  # "…\n" + "\n" + "" → each document ends with a blank line
    offsets = pa.Array.from_buffers(pa.int32(), len(docs) + 1, [None, docs.buffers()[1]], offset=docs.offset)
    first, last = offsets[0].as_py(), offsets[len(docs)].as_py()
    return docs.buffers()[2][first:last].to_pybytes()


# -- reading back ---------------------------------------------------------------------------------------------


def parse_key(line: str) -> tuple[str, str]:
    """``(key, value text)`` of one ``key: value`` line (a key with ``: `` in it is a JSON string)."""
    if line.startswith('"'):
        key, end = json.JSONDecoder().raw_decode(line)
        if line[end:end + 2] != ": ":
            raise ValueError(f"expected ': ' after the key in {line[:60]!r}")
        return key, line[end + 2:]
    key, sep, value = line.partition(": ")
    if not sep:
        raise ValueError(f"not a 'key: value' line: {line[:60]!r}")
    return key, value


def parse(text: str) -> tuple[list[str], dict[str, list[str | None]]]:
    """(doc ids, column name → raw value texts) of a Markdown-KV text; keys missing in a document are None."""
    ids: list[str] = []
    columns: dict[str, list[str | None]] = {}
    row = -1
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line:
            continue
        if line.startswith(DOC_PREFIX):
            row += 1
            ids.append(line[len(DOC_PREFIX):])
            continue
        if row < 0:
            raise ValueError(f"line {lineno}: a 'key: value' line before the first '## <id>' heading")
        try:
            key, value = parse_key(line)
        except ValueError as exc:
            raise ValueError(f"line {lineno}: {exc}") from None
        col = columns.setdefault(key, [])
        col.extend([None] * (row + 1 - len(col)))
        col[row] = value
    for col in columns.values():
        col.extend([None] * (len(ids) - len(col)))
    return ids, columns


def unquote(text: pa.Array) -> pa.Array:
    """Values written as JSON strings (they begin with a quote) decoded; the others as they are."""
    quoted = pc.fill_null(pc.starts_with(text, '"'), False)
    if not pc.any(quoted).as_py():
        return text
    values = [json.loads(v) for v in pc.filter(text, quoted).to_pylist()]
    return pc.replace_with_mask(text, quoted, pa.array(values, pa.string()))


def _from_text(text: pa.Array, t: pa.DataType) -> pa.Array:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pc.cast(unquote(text), t)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return pa.array([None if v is None else base64.b64decode(v) for v in text.to_pylist()], t)
    if pa.types.is_time(t):  # Arrow has no string → time cast: go through a timestamp on 1970-01-01
        ts = pc.cast(pc.binary_join_element_wise("1970-01-01 ", text, ""), pa.timestamp("ns"))
        return pc.cast(ts, t)
    return pc.cast(text, t)


def decode(text: str, schema: pa.Schema) -> pa.Table:
    """A Markdown-KV text back into a table of ``schema`` (keys not in the schema are an error)."""
    ids, columns = parse(text)
    unknown = sorted(set(columns) - set(schema.names))
    if unknown:
        raise ValueError(f"keys not in the schema: {', '.join(unknown[:5])}")
    rows = len(ids)
    arrays = [_from_text(pa.array(columns.get(f.name, [None] * rows), pa.string()), f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


# -- Markdown-KV in an Iceberg table (target.markdown_kv_storage.mode) --------------------------------------

#: ``string``: one row per record {doc_id, content}; ``structured``: one row per non-null field
#: {doc_id, section, key, value}. The run's system columns (``_dativo_*``, ``ingest_date``) follow either way.
STORAGE_MODES = ("string", "structured")


def storage_schema(mode: str, schema: pa.Schema, data_columns: Sequence[str]) -> pa.Schema:
    """The Iceberg table's schema in ``mode``: the storage columns, then ``schema``'s non-data columns."""
    head = ([pa.field("doc_id", pa.string(), nullable=False), pa.field("content", pa.string(), nullable=False)]
            if mode == "string" else
            [pa.field("doc_id", pa.string(), nullable=False), pa.field("section", pa.string()),
             pa.field("key", pa.string(), nullable=False), pa.field("value", pa.string(), nullable=False)])
    return pa.schema(head + [f for f in schema if f.name not in set(data_columns)])


def _plain_text(column: pa.Array) -> pa.Array:
    """A value as text, unquoted (the ``value`` column is a string: no escaping needed)."""
    t = column.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pc.cast(column, pa.string())
    return _as_text(column)


def to_storage(mode: str, table: pa.Table, data_columns: Sequence[str], id_columns: Sequence[str], *,
               section: str, start: int = 0) -> pa.Table:
    """Clean rows as the ``mode`` storage table (see ``storage_schema``); ids are ordinals from ``start`` when
    the asset has no primary key."""
    table = table.combine_chunks()
    ids = doc_ids(table, id_columns, start)
    rest = [n for n in table.column_names if n not in set(data_columns)]
    if mode == "string":
        content = encode(table.select(list(data_columns)), id_columns, start=start)
        return pa.Table.from_arrays([ids, content] + [table.column(n) for n in rest],
                                    names=["doc_id", "content", *rest])
    ordinal = pc.subtract(pc.cumulative_sum(pc.cast(pc.is_valid(ids), pa.int64())), 1)  # 0 … n-1
    rows, order, keys, values = [], [], [], []
    for j, name in enumerate(data_columns):
        column = table.column(name).combine_chunks()
        present = pc.is_valid(column)
        count = pc.sum(pc.cast(present, pa.int64())).as_py() or 0
        if not count:
            continue
        rows.append(pc.filter(ordinal, present))
        order.append(pa.repeat(pa.scalar(j, pa.int64()), count))
        keys.append(pa.repeat(pa.scalar(name, pa.string()), count))
        values.append(pc.filter(_plain_text(column), present))
    if not rows:
        return storage_schema(mode, table.schema, data_columns).empty_table()
    long = pa.table({"row": pa.concat_arrays(rows), "j": pa.concat_arrays(order), "key": pa.concat_arrays(keys),
                     "value": pa.concat_arrays(values)})
    long = long.take(pc.sort_indices(long, [("row", "ascending"), ("j", "ascending")]))
    row = long.column("row")
    return pa.Table.from_arrays(
        [pc.take(ids, row), pa.repeat(pa.scalar(section, pa.string()), long.num_rows), long.column("key"),
         long.column("value")] + [pc.take(table.column(n), row) for n in rest],
        names=["doc_id", "section", "key", "value", *rest])

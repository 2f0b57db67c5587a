"""What an Iceberg table keeps of its asset's contract, so another engine reading the table sees it too.

- **Required fields** (``required: true``, and every primary-key field) are ``required`` columns of a new table;
  a column added later is optional (the rows already there have no value for it).
- **The primary key** is the table's identifier fields (when every key column is required and not a float).
- **Descriptions** become column docs; a changed description updates the doc.
- **Owner, domain, data product, classifications and compliance** become table properties (``dativo.owner``,
  ``dativo.domain``, ``dativo.data_product``, ``dativo.classification`` — ``{"field": "PII", …}`` as JSON —
  and ``dativo.compliance`` as JSON), with any secret value replaced by its ``${NAME}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import pyarrow as pa
from pyiceberg.schema import Schema

from dativo_ingest.config.models import AssetDefinition

#: the Arrow field-metadata key pyiceberg reads a column doc from
DOC_KEY = b"doc"


def contract_schema(schema: pa.Schema, asset: AssetDefinition) -> pa.Schema:
    """``schema`` (the staged rows) with the asset's required fields not nullable and its descriptions as docs."""
    required = asset.required_names
    docs = {f.name: f.description for f in asset.fields if f.description}
    out = []
    for f in schema:
        field = f.with_nullable(f.name not in required)
        if f.name in docs:
            field = field.with_metadata({**(f.metadata or {}), DOC_KEY: docs[f.name].encode()})
        out.append(field)
    return pa.schema(out, metadata=schema.metadata)


def identifier_fields(schema: pa.Schema, primary_key: Iterable[str]) -> list[str]:
    """The primary key as Iceberg identifier fields, or none when a key column may be null or is a float."""
    key = list(primary_key)
    if not key or any(k not in schema.names for k in key):
        return []
    fields = [schema.field(k) for k in key]
    if any(f.nullable or pa.types.is_floating(f.type) for f in fields):
        return []
    return key


def docs_to_update(table_schema: Schema, wanted: pa.Schema) -> dict[str, str]:
    """``{column: doc}`` for the table's columns whose doc differs from the asset's description (when it has one)."""
    out = {}
    for f in wanted:
        doc = (f.metadata or {}).get(DOC_KEY)
        if doc is None or f.name not in table_schema.column_names:
            continue
        if table_schema.find_field(f.name).doc != doc.decode():
            out[f.name] = doc.decode()
    return out


def nullable_as_table(schema: pa.Schema, table_schema: Schema) -> pa.Schema:
    """``schema`` with each column's nullability as the table has it (rows must say "not null" where the table
    requires a value; a column the table does not hold yet stays nullable)."""
    names = set(table_schema.column_names)
    return pa.schema([f.with_nullable(not table_schema.find_field(f.name).required) if f.name in names
                      else f.with_nullable(True) for f in schema], metadata=schema.metadata)


def contract_properties(asset: AssetDefinition, conceal: Callable[[str], str] = str) -> dict[str, str]:
    """The table properties carrying the asset's ownership, domain, classifications and compliance."""
    props: dict[str, str] = {}
    owner = _owner(asset.team)
    if owner:
        props["dativo.owner"] = owner
    if asset.domain:
        props["dativo.domain"] = asset.domain
    if asset.dataProduct:
        props["dativo.data_product"] = asset.dataProduct
    classes = {f.name: f.classification for f in asset.fields if f.classification}
    if classes:
        props["dativo.classification"] = json.dumps(classes, sort_keys=True)
    if asset.compliance:
        props["dativo.compliance"] = json.dumps(asset.compliance, sort_keys=True, default=str)
    return {k: conceal(v) for k, v in props.items()}


def _owner(team: Any) -> str | None:
    """``team.owner`` (dativo dialect), else the first member of an ODCS ``team`` list."""
    if isinstance(team, dict) and team.get("owner"):
        return str(team["owner"])
    if isinstance(team, list):
        for member in team:
            if isinstance(member, dict) and (member.get("username") or member.get("name")):
                return str(member.get("username") or member.get("name"))
    return None


__all__ = ["DOC_KEY", "contract_properties", "contract_schema", "docs_to_update",
           "identifier_fields", "nullable_as_table"]

"""Pydantic models of the four config files: job, asset (ODCS v3.0.2 + dativo), connector recipe, registry.

The models are strict (no silent coercion: ``header: "yes"`` is an error, not ``True``) so that they
agree with the JSON Schemas generated from them (``export_schemas``). Checks that JSON Schema cannot
express (a partition column must be a schema field, a default engine must be supported) live in
model validators; everything else is a type, a pattern or a literal and so appears in both.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from dativo_ingest.config.names import (
    ASSET_NAME_PATTERN,
    PATH_SEGMENT_PATTERN,
    TENANT_FIX,
    TENANT_ID_PATTERN,
    asset_name_problem,
    column_name_problem,
    object_name_problem,
    path_segment_problem,
    tenant_problem,
)

# -- shared patterns (used verbatim by pydantic and by the generated JSON Schema) -------------------------


FIELD_TYPE_PATTERN = (
    r"^(?i:string|integer|int|long|bigint|float|double|number|boolean|bool|date|time|timestamp|timestamptz"
    r"|timestamp_tz|datetime|json|binary|uuid|decimal|decimal\(\s*\d+\s*,\s*\d+\s*\)|array<.+>)$"
)

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
PARTITION_PATTERN = (
    rf"^(?:{_IDENT}"
    rf"|(?i:day|month|year|hour|identity)\(\s*{_IDENT}\s*\)"
    rf"|(?i:bucket|truncate)\(\s*\d+\s*,\s*{_IDENT}\s*\))$"
)
_PARTITION_COLUMN = re.compile(rf"({_IDENT})\s*\)$")

ENGINE_NAME_PATTERN = r"^[a-z][a-z0-9_-]*$"
LOG_LEVEL_PATTERN = r"^(?i:debug|info|warn|warning|error|critical)$"

#: columns the stage adds to every table; a partition spec may name them
SYSTEM_PARTITION_COLUMNS = frozenset({"ingest_date", "_dativo_ingest_ts"})

FieldType = Annotated[str, Field(pattern=FIELD_TYPE_PATTERN)]
PartitionEntry = Annotated[str, Field(pattern=PARTITION_PATTERN)]
EngineName = Annotated[str, Field(pattern=ENGINE_NAME_PATTERN)]
NonEmptyStr = Annotated[str, Field(min_length=1)]


def _checked(problem: Any, fix: str | None = None) -> Any:
    """An ``AfterValidator`` raising ``problem(value)`` (a one-line message, then ``fix``) when it is not None."""

    def check(value: str) -> str:
        message = problem(value)
        if message:
            raise ValueError(f"{message} ({fix})" if fix else message)
        return value

    return AfterValidator(check)


#: names whose rule JSON Schema holds as a pattern and pydantic checks with a one-line message
TenantId = Annotated[str, Field(json_schema_extra={"pattern": TENANT_ID_PATTERN}), _checked(tenant_problem, TENANT_FIX)]
AssetName = Annotated[str, Field(json_schema_extra={"pattern": ASSET_NAME_PATTERN}), _checked(asset_name_problem)]
PathSegment = Annotated[str, Field(json_schema_extra={"pattern": PATH_SEGMENT_PATTERN}),
                        _checked(path_segment_problem)]
ObjectName = Annotated[str, Field(min_length=1, max_length=255), _checked(object_name_problem)]
ColumnName = Annotated[str, Field(min_length=1, max_length=255), _checked(column_name_problem)]

IncrementalStrategy = Literal[
    "updated_at", "created", "updated_after", "file_modified_time", "spreadsheet_modified_time", "cursor",
    "full_refresh", "full", "none",  # read everything every run (read_policy.FULL_REFRESH_STRATEGIES)
]
WriteModeName = Literal["append", "overwrite", "merge"]
ValidationModeName = Literal["strict", "warn"]
FileFormat = Literal["parquet", "markdown_kv", "csv", "jsonl"]


class ClosedModel(BaseModel):
    """Unknown keys are errors (they are usually typos)."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class OpenModel(BaseModel):
    """Unknown keys are kept (connector- or ODCS-specific settings)."""

    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)


def is_canonical(raw: dict[str, Any]) -> bool:
    """A canonical ODCS contract's schema holds objects with ``properties`` (a flat one: fields with ``type``); the
    canonical form is read by ``odcs.asset_from_canonical``."""
    schema = raw.get("schema")
    return isinstance(schema, list) and any(
        isinstance(item, dict) and ("properties" in item or item.get("logicalType") == "object") for item in schema)


def partition_column(entry: str) -> str:
    """The column a partition entry names: ``day(created_at)`` -> ``created_at``, ``region`` -> ``region``."""
    match = _PARTITION_COLUMN.search(entry)
    return match.group(1) if match else entry.strip()


# -- job ---------------------------------------------------------------------------------------------------


class EngineSpec(ClosedModel):
    """``engine: {name, options}``; ``name`` may be omitted when only options are given."""

    name: EngineName | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class CsvOptionsMixin(OpenModel):
    delimiter: str | None = None
    quote_char: str | None = None
    encoding: str | None = None
    header: bool | None = None
    null_values: list[str] | None = None
    skip_rows: int | None = Field(default=None, ge=0)


class SourceFile(CsvOptionsMixin):
    path: str | None = None
    object: ObjectName | None = None
    id: str | None = None


class SourceTable(OpenModel):
    name: NonEmptyStr
    object: ObjectName | None = None
    cursor_field: str | None = None
    primary_key: str | list[str] | None = None


class Incremental(ClosedModel):
    strategy: IncrementalStrategy | None = None
    cursor_field: str | None = None
    lookback_days: int | None = Field(default=None, ge=0)
    lookback: str | int | None = None
    #: read the source's primary keys after the rows and delete target rows whose key is gone (merge only)
    detect_deletes: bool | None = None


class LoggingConfig(ClosedModel):
    redaction: bool = False
    level: Annotated[str, Field(pattern=LOG_LEVEL_PATTERN)] = "INFO"


class JobSource(CsvOptionsMixin):
    """A job's ``source`` section; in ``JobPlan.source`` the same model holds the job's section merged over its
    recipe's ``connection_template`` and ``options`` (the job wins, deep), expanded, csv options folded to the top
    level. Connector-specific keys no field names stay in ``model_extra``."""

    files: list[SourceFile] | None = None
    #: one file or glob: the short form of ``files: [{path: …}]``
    path: str | None = None
    objects: list[ObjectName] | None = None
    tables: list[SourceTable] | None = None
    query: str | None = None
    incremental: Incremental | None = None
    engine: EngineSpec | None = None
    connection: dict[str, Any] | None = None
    options: dict[str, Any] | None = None

    @property
    def connection_values(self) -> dict[str, Any]:
        """``connection`` as a fresh dict (empty when there is none)."""
        return dict(self.connection or {})

    def file_entries(self) -> list[SourceFile]:
        """``files``, else one entry for ``path``, else none."""
        if self.files:
            return list(self.files)
        return [SourceFile(path=self.path)] if self.path else []

    def file_field(self, index: int) -> str:
        """The dotted name of the ``index``-th entry of ``file_entries()``, for errors."""
        return f"source.files[{index}].path" if self.files else "source.path"

    def as_mapping(self) -> dict[str, Any]:
        """The section as plain data (what a connector's config rules look values up in)."""
        return self.model_dump(mode="python", by_alias=True, exclude_none=True)


class JobTarget(OpenModel):
    """A job's ``target`` section; in ``JobPlan.target`` merged over its recipe like ``JobSource`` (``catalog`` as a
    mapping there, ``storage`` chosen)."""

    connection: dict[str, Any] | None = None
    catalog: str | dict[str, Any] | None = None
    #: file targets: the folder or key prefix the files are written under (also ``connection.path``)
    path: str | None = None
    #: database targets: the schema the table is created in (default: the tenant id)
    db_schema: str | None = Field(default=None, alias="schema")
    #: commit every N rows read (0: once at the end); each commit carries the state of what it holds
    commit_every_rows: int | None = Field(default=None, ge=0)
    #: rows per staged chunk (default 1,000,000)
    chunk_rows: int | None = Field(default=None, ge=1)
    #: target size of a Parquet file of a file target, in MB
    parquet_target_size_mb: int | float | None = Field(default=None, gt=0)
    warehouse: str | None = None
    branch: str | None = None
    file_format: FileFormat | None = None
    write_mode: WriteModeName | None = None
    markdown_kv_storage: dict[str, Any] | None = None
    partitioning: list[PartitionEntry] | None = None
    #: where an iceberg (or markdown_kv) target keeps its files: chosen here, never by which variables are set
    storage: Literal["local", "s3", "azure"] | None = None

    @property
    def connection_values(self) -> dict[str, Any]:
        """``connection`` as a fresh dict (empty when there is none)."""
        return dict(self.connection or {})

    @property
    def catalog_spec(self) -> dict[str, Any] | None:
        """``catalog`` as a mapping (``catalog: rest`` is ``{type: rest}``), or None for the embedded catalog."""
        if self.catalog is None:
            return None
        return {"type": self.catalog} if isinstance(self.catalog, str) else dict(self.catalog)


class SingerExtractor(ClosedModel):
    """A Meltano ``extractors:`` entry pasted into a job (engine ``singer`` / ``meltano``).

    ``pip_url``/``executable`` replace the tap of ``engines/singer.yaml``; ``config`` is merged over the
    settings mapped from the connection; ``select`` (``stream.property`` rules, ``!`` to exclude) and
    ``metadata`` (``{stream: {replication-method: …, replication-key: …}}``) replace the selection made
    from the asset.
    """

    name: NonEmptyStr
    variant: str | None = None
    pip_url: str | None = None
    executable: str | None = None
    capabilities: list[str] | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    select: list[str] | None = None
    metadata: dict[str, dict[str, Any]] | None = None


class JobConfig(ClosedModel):
    """A job file: ``jobs/<tenant>/<name>.yaml``."""

    tenant_id: TenantId | None = None
    environment: str | None = None
    source_connector: NonEmptyStr
    source_connector_path: str | None = None
    target_connector: NonEmptyStr
    target_connector_path: str | None = None
    asset: str | None = None
    asset_path: NonEmptyStr
    engine: EngineName | EngineSpec | None = None
    source: JobSource | None = None
    target: JobTarget | None = None
    schema_validation_mode: ValidationModeName | None = None
    logging: LoggingConfig | None = None
    #: metadata catalog integration (e.g. OpenMetadata); passed through untouched
    catalog: dict[str, Any] | None = None
    schedule: str | None = None
    #: a Meltano extractor block for the singer/meltano engine
    extractor: SingerExtractor | None = None

    @property
    def engine_name(self) -> str | None:
        """The job's own engine choice: top-level ``engine`` first, then ``source.engine.name``."""
        if isinstance(self.engine, str):
            return self.engine
        if self.engine is not None and self.engine.name:
            return self.engine.name
        if self.source is not None and self.source.engine is not None:
            return self.source.engine.name
        return None


# -- asset -------------------------------------------------------------------------------------------------


#: ODCS ``quality`` library metrics (v3.1+), the level each may be declared at
QUALITY_METRIC_LEVELS: dict[str, frozenset[str]] = {
    "nullValues": frozenset({"property"}),
    "missingValues": frozenset({"property"}),
    "invalidValues": frozenset({"property"}),
    "duplicateValues": frozenset({"property", "object"}),
    "rowCount": frozenset({"object"}),
}
#: the comparison operators of an ODCS quality rule (exactly one per library or sql rule)
QUALITY_OPERATORS = ("mustBe", "mustNotBe", "mustBeGreaterThan", "mustBeGreaterOrEqualTo", "mustBeLessThan",
                     "mustBeLessOrEqualTo", "mustBeBetween", "mustNotBeBetween")
#: ``invalidValues`` arguments dativo evaluates: ODCS ``validValues`` and ``pattern``, and the value range and
#: length bounds of ODCS ``logicalTypeOptions`` (``minimum``, ``maximum``, ``exclusiveMinimum``, …)
INVALID_VALUES_ARGUMENTS = ("validValues", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                            "minLength", "maxLength")

Number = float | int
Pair = Annotated[list[Number], Field(min_length=2, max_length=2)]


class QualityRule(ClosedModel):
    """One ODCS v3.1 ``quality`` entry: a library ``metric`` or an ``sql`` query and one operator to compare with.

    ``text`` and ``custom`` entries are kept (and exported) but not evaluated by dativo.
    """

    id: str | None = None
    name: str | None = None
    description: str | None = None
    type: Literal["library", "sql", "text", "custom"] | None = None
    metric: str | None = None
    #: deprecated spelling of ``metric`` (ODCS v3.0)
    rule: str | None = None
    arguments: dict[str, Any] | None = None
    unit: str | None = None
    query: str | None = None
    engine: str | None = None
    implementation: str | dict[str, Any] | None = None
    dimension: str | None = None
    method: str | None = None
    severity: str | None = None
    businessImpact: str | None = None
    schedule: str | None = None
    scheduler: str | None = None
    tags: list[str] | None = None
    authoritativeDefinitions: list[dict[str, Any]] | None = None
    customProperties: list[dict[str, Any]] | None = None
    mustBe: Any = None
    mustNotBe: Any = None
    mustBeGreaterThan: Number | None = None
    mustBeGreaterOrEqualTo: Number | None = None
    mustBeLessThan: Number | None = None
    mustBeLessOrEqualTo: Number | None = None
    mustBeBetween: Pair | None = None
    mustNotBeBetween: Pair | None = None

    @property
    def kind(self) -> str:
        """``library`` (also when only ``metric`` is given, as ODCS allows), ``sql``, ``text`` or ``custom``."""
        return self.type or "library"

    @property
    def metric_name(self) -> str | None:
        return self.metric or self.rule

    @property
    def operators(self) -> dict[str, Any]:
        """The operators set on this rule (``mustBe: 0`` -> ``{"mustBe": 0}``)."""
        return {op: getattr(self, op) for op in QUALITY_OPERATORS if op in self.model_fields_set}

    @model_validator(mode="after")
    def _check_rule(self) -> QualityRule:
        if self.kind in ("text", "custom"):
            return self
        if len(self.operators) != 1:
            raise ValueError(f"a {self.kind} quality rule needs exactly one operator "
                             f"(give one of {', '.join(QUALITY_OPERATORS)})")
        if self.unit is not None and self.unit not in ("rows", "percent"):
            raise ValueError(f"quality unit '{self.unit}' is not evaluated (use rows or percent)")
        if self.kind == "sql":
            if not (self.query or "").strip():
                raise ValueError("an sql quality rule needs a query (add 'query: SELECT ... FROM {object}')")
            return self
        metric = self.metric_name
        if metric not in QUALITY_METRIC_LEVELS:
            raise ValueError(f"unknown quality metric '{metric}' (use {', '.join(QUALITY_METRIC_LEVELS)})"
                             if metric else "a library quality rule needs a metric "
                             f"(add 'metric: ' one of {', '.join(QUALITY_METRIC_LEVELS)})")
        args = self.arguments or {}
        if metric == "invalidValues" and not any(args.get(k) is not None for k in INVALID_VALUES_ARGUMENTS):
            raise ValueError("invalidValues needs arguments: validValues (a list), pattern (a regular expression), "
                             "minimum/maximum (a value range) or minLength/maxLength")
        if metric == "invalidValues" and args.get("validValues") is not None and \
                not isinstance(args["validValues"], list):
            raise ValueError("invalidValues: arguments.validValues must be a list (e.g. [a, b])")
        if metric == "missingValues" and args.get("missingValues") is not None and \
                not isinstance(args["missingValues"], list):
            raise ValueError("missingValues: arguments.missingValues must be a list (e.g. [null, '', 'N/A'])")
        if metric == "rowCount" and self.unit == "percent":
            raise ValueError("rowCount counts rows; unit percent does not apply (remove 'unit')")
        return self


def check_quality_level(rules: list[QualityRule] | None, level: str, where: str, columns: set[str]) -> None:
    """Library metrics are declared where they apply: ``rowCount`` on the object, ``nullValues`` on a property…"""
    for i, rule in enumerate(rules or []):
        metric = rule.metric_name
        if rule.kind != "library" or metric not in QUALITY_METRIC_LEVELS:
            continue
        if level not in QUALITY_METRIC_LEVELS[metric]:
            other = "object (the schema object's quality)" if level == "property" else "property (the field's quality)"
            raise ValueError(f"{where}[{i}]: metric {metric} is measured per {other}, not per {level} "
                             f"(move the rule there)")
        if metric == "duplicateValues" and level == "object":
            props = (rule.arguments or {}).get("properties")
            if not isinstance(props, list) or not props or not all(isinstance(p, str) for p in props):
                raise ValueError(f"{where}[{i}]: duplicateValues on the object needs arguments.properties, "
                                 "the list of fields that together must be unique")
            unknown = [p for p in props if p not in columns]
            if unknown:
                raise ValueError(f"{where}[{i}]: duplicateValues names {', '.join(unknown)}, not schema fields "
                                 "(use the names of the asset's fields)")


class SchemaField(OpenModel):
    name: ColumnName
    type: FieldType
    required: bool = False
    classification: str | None = None
    primary_key: bool = False
    #: this field's place in a composite primary key (1 = first); default: schema order
    primary_key_position: int | None = Field(default=None, ge=1)
    unique: bool = False
    description: str | None = None
    examples: list[Any] | None = None
    quality: list[QualityRule] | None = None

    @model_validator(mode="after")
    def _check_field(self) -> SchemaField:
        if self.primary_key_position is not None and not self.primary_key:
            raise ValueError(f"field '{self.name}': primary_key_position without primary_key "
                             "(set primary_key: true or remove primary_key_position)")
        check_quality_level(self.quality, "property", f"field '{self.name}': quality", set())
        return self


class AssetTarget(OpenModel):
    file_format: FileFormat | None = None
    partitioning: list[PartitionEntry] | None = None
    mode: ValidationModeName | None = None
    write_mode: WriteModeName | None = None


class AssetDescription(OpenModel):
    purpose: str | None = None
    limitations: str | None = None
    usage: str | None = None


EMPTY_SCHEMA_MESSAGE = "Asset definition has empty 'schema' field"


class AssetDefinition(OpenModel):
    """An ODCS v3.0.2 data contract with dativo extensions: ``assets/<source_type>/v<version>/<name>.yaml``."""

    schema_uri: str | None = Field(default=None, alias="$schema")
    apiVersion: str | None = None
    kind: str | None = None
    id: str | None = None
    name: AssetName
    version: str | None = None
    status: str | None = None
    domain: PathSegment | None = None
    dataProduct: PathSegment | None = None
    tenant: str | None = None
    description: str | AssetDescription | None = None
    tags: list[str] | None = None
    source_type: str | None = None
    object: ObjectName | None = None
    target: AssetTarget | None = None
    fields: list[SchemaField] = Field(alias="schema", min_length=1)
    team: dict[str, Any] | list[Any] | None = None
    compliance: dict[str, Any] | None = None
    data_quality: dict[str, Any] | None = None
    change_management: dict[str, Any] | None = None
    #: ODCS quality rules on the whole object (``rowCount``, ``duplicateValues`` over several fields, ``sql``)
    quality: list[QualityRule] | None = None

    @field_validator("fields", mode="before")
    @classmethod
    def _schema_not_empty(cls, value: Any) -> Any:
        if value is None or (isinstance(value, list) and not value):
            raise ValueError(EMPTY_SCHEMA_MESSAGE)
        return value

    @model_validator(mode="after")
    def _check_fields(self) -> AssetDefinition:
        seen: set[str] = set()
        lower: dict[str, str] = {}
        for f in self.fields:
            if f.name in seen:
                raise ValueError(f"schema: field '{f.name}' is declared twice (remove one of them)")
            if f.name.lower() in lower:
                raise ValueError(f"schema: fields '{lower[f.name.lower()]}' and '{f.name}' differ only by case "
                                 "(sources are matched to fields ignoring case: rename one of them)")
            seen.add(f.name)
            lower[f.name.lower()] = f.name
        if self.target is not None and self.target.partitioning:
            check_partitioning(self.target.partitioning, seen, "target.partitioning")
        positions = [f.primary_key_position for f in self.fields if f.primary_key_position is not None]
        if len(positions) != len(set(positions)):
            raise ValueError("schema: two primary key fields have the same primary_key_position (number them 1, 2, …)")
        check_quality_level(self.quality, "object", "quality", seen)
        return self

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def primary_key(self) -> list[str]:
        """Names of the fields with ``primary_key: true``: by ``primary_key_position``, then in schema order."""
        keyed = [(f.primary_key_position is None, f.primary_key_position or 0, i, f.name)
                 for i, f in enumerate(self.fields) if f.primary_key]
        return [name for *_, name in sorted(keyed)]

    @property
    def required_names(self) -> set[str]:
        """The fields a table of this asset requires (never null): ``required: true`` ones and the primary key."""
        return {f.name for f in self.fields if f.required or f.primary_key}


def check_partitioning(entries: list[str], columns: set[str], where: str) -> None:
    """Every partition entry must name a schema field (or a system column such as ``ingest_date``)."""
    for entry in entries:
        column = partition_column(entry)
        if column not in columns and column not in SYSTEM_PARTITION_COLUMNS:
            raise ValueError(
                f"{where}: entry '{entry}' names '{column}', which is not a schema field or ingest_date "
                f"(add '{column}' to the asset's schema or partition by a declared field)"
            )


# -- connector recipe --------------------------------------------------------------------------------------


class ConnectorRecipe(OpenModel):
    """HOW to connect: ``connectors/sources/<name>.yaml`` or ``connectors/targets/<name>.yaml``."""

    name: NonEmptyStr
    type: Literal["source", "target"]
    engine: EngineName | EngineSpec
    connection_template: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    rate_limits: dict[str, Any] | None = None
    incremental_strategy: IncrementalStrategy | None = None
    credentials: dict[str, Any] | None = None

    @property
    def engine_name(self) -> str | None:
        return self.engine if isinstance(self.engine, str) else self.engine.name

    @property
    def engine_options(self) -> dict[str, Any]:
        return {} if isinstance(self.engine, str) else dict(self.engine.options)


# -- registry ----------------------------------------------------------------------------------------------


class RegistryConnector(ClosedModel):
    roles: list[Literal["source", "target"]] = Field(min_length=1)
    category: str | None = None
    default_engine: EngineName
    engines_supported: list[EngineName] = Field(min_length=1)
    allowed_in_cloud: bool = True
    supports_incremental: bool = False
    incremental_strategy_default: IncrementalStrategy | None = None
    objects_supported: list[str] | None = None
    requires_tables: bool = False
    supports_queries: bool = False
    file_formats: list[FileFormat] | None = None
    supports_schema_evolution: bool = False

    @model_validator(mode="after")
    def _default_is_supported(self) -> RegistryConnector:
        if self.default_engine not in self.engines_supported:
            raise ValueError(
                f"default_engine '{self.default_engine}' is not in engines_supported "
                f"(add it to engines_supported: {', '.join(self.engines_supported)})"
            )
        return self


class Registry(ClosedModel):
    """``registry/connectors.yaml``: connector types and capabilities."""

    version: Literal[3]
    connectors: dict[str, RegistryConnector]

    def known(self) -> str:
        return ", ".join(sorted(self.connectors))


MODELS: dict[str, type[BaseModel]] = {
    "job": JobConfig,
    "asset": AssetDefinition,
    "connector": ConnectorRecipe,
    "registry": Registry,
}


# -- turning pydantic errors into one-line problems ---------------------------------------------------------

#: fields whose offending value may be shown in an error (never a value that could come from secrets)
_SHOWABLE_FIELDS = frozenset({"type", "partitioning", "tenant_id", "version"})

_SCALAR_KINDS = frozenset({"string_type", "int_type", "bool_type", "float_type", "literal_error",
                           "string_pattern_mismatch"})

_TYPE_FIXES = {
    "bool_type": "use true or false, without quotes",
    "bool_parsing": "use true or false, without quotes",
    "int_type": "use a whole number, without quotes",
    "int_parsing": "use a whole number, without quotes",
    "int_from_float": "use a whole number",
    "float_type": "use a number, without quotes",
    "string_type": "quote the value, e.g. \"...\"",
    "list_type": "use a YAML list, e.g. [a, b]",
    "dict_type": "use a mapping of key: value lines",
    "model_type": "use a mapping of key: value lines",
    "model_attributes_type": "use a mapping of key: value lines",
}


_MODEL_NAME_RE = re.compile(r"a valid dictionary or instance of \w+")


def _pattern_problem(leaf: str, shown: str) -> tuple[str, str]:
    if leaf == "type" and re.search(r"decimal\(\s*\d+\s*'?$", shown.strip(), re.IGNORECASE):
        return (f"unknown field type{shown}",
                'quote it, e.g. type: "decimal(10,2)" — inside { } a comma ends the value')
    if leaf == "type":
        return (f"unknown field type{shown}",
                "use string, integer, long, float, double, boolean, date, timestamp, decimal(p,s), json, "
                "binary, uuid or array<...>")
    if leaf == "partitioning":
        return (f"invalid partitioning entry{shown}",
                "use a column name or day(col), month(col), year(col), hour(col), identity(col), "
                "bucket(N, col), truncate(N, col)")
    if leaf == "tenant_id":
        return (f"invalid tenant id{shown}", "use lowercase letters, digits, '_' and '-' only")
    if leaf in ("engine", "name", "default_engine", "engines_supported"):
        return "invalid engine name", "use a lowercase name such as native, airbyte, singer or meltano"
    if leaf == "level":
        return "invalid log level", "use DEBUG, INFO, WARNING or ERROR"
    return "has an invalid format", "check the value against the documentation"


def render_loc(loc: tuple[Any, ...] | list[Any]) -> str:
    """``('source', 'files', 0, 'path')`` -> ``source.files[0].path``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _clean_loc(loc: tuple[Any, ...], data: Any, keep_last: bool) -> tuple[Any, ...]:
    """Drop the union-member tags pydantic inserts (``engine.str``): keep only parts present in ``data``."""
    kept: list[Any] = []
    current = data
    for i, part in enumerate(loc):
        if isinstance(current, dict) and part in current:
            kept.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            kept.append(part)
            current = current[part]
        elif keep_last and i == len(loc) - 1:
            kept.append(part)
    return tuple(kept)


def _step(annotation: Any, part: Any) -> Any:
    """The annotation one path step below ``annotation`` (a model field, a list item, a dict value)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        info = annotation.model_fields.get(part) if isinstance(part, str) else None
        info = info or next((f for f in annotation.model_fields.values() if f.alias == part), None)
        return info.annotation if info is not None else None
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is list and isinstance(part, int):
        return args[0] if args else None
    if origin is dict and isinstance(part, str):
        return args[1] if len(args) == 2 else None
    for arg in args:  # Union / Optional / Annotated: the first branch that has this step
        found = _step(arg, part)
        if found is not None:
            return found
    return None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the model accepts at ``loc`` (for 'did you mean' hints)."""
    annotation: Any = model
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return []
    found = _model_in(annotation)
    return [f.alias or name for name, f in found.model_fields.items()] if found else []


def validation_problems(
    exc: Any, data: Any, model: type[BaseModel], *, show_values: bool = True
) -> list[tuple[str | None, str, str | None]]:
    """One ``(field, message, fix)`` per distinct problem of a pydantic ``ValidationError``."""
    import difflib

    problems: list[tuple[str | None, str, str | None]] = []
    seen: dict[str, int] = {}
    for err in exc.errors(include_url=False):
        kind = err["type"]
        loc = _clean_loc(tuple(err["loc"]), data, keep_last=kind == "missing")
        in_union_branch = len(loc) < len(err["loc"]) and kind != "missing"
        if in_union_branch and kind in _SCALAR_KINDS and isinstance(err.get("input"), dict | list):
            continue  # a mapping was given: the mapping branch of the union explains what is wrong
        field = render_loc(loc) or None
        leaf = next((p for p in reversed(loc) if isinstance(p, str)), "")
        value = err.get("input")
        shown = f" '{value}'" if show_values and leaf in _SHOWABLE_FIELDS and isinstance(value, str | int) else ""
        fix: str | None
        if kind == "missing":
            message, fix = "is required", f"add '{leaf}'"
        elif kind == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1])
            close = difflib.get_close_matches(str(leaf), allowed, n=1)
            message = "unknown key"
            fix = f"did you mean '{close[0]}'?" if close else (
                f"remove it; allowed keys: {', '.join(allowed)}" if allowed else "remove it")
        elif kind == "value_error":
            message, fix = str(err["msg"]).removeprefix("Value error, "), None
        elif kind == "literal_error":
            expected = err.get("ctx", {}).get("expected", "one of the allowed values")
            message = f"{shown.strip()} is not allowed; must be {expected}" if shown else f"must be {expected}"
            fix = "use one of the allowed values"
        elif kind == "string_pattern_mismatch":
            message, fix = _pattern_problem(leaf, shown)
        elif kind == "too_short":
            message, fix = "must not be empty", f"give at least one entry under '{leaf}'"
        else:
            message = _MODEL_NAME_RE.sub("a mapping", str(err["msg"]).replace("Input should be", "must be"))
            fix = _TYPE_FIXES.get(kind, "use a larger value" if kind.startswith("greater") else
                                  "use a smaller value" if kind.startswith("less") else "see the documentation")
        key = field or ""
        if key in seen:  # the alternatives of a union: merge into one line
            f0, m0, x0 = problems[seen[key]]
            if message not in m0:
                problems[seen[key]] = (f0, f"{m0}, or {message.removeprefix('must be ')}", x0)
            continue
        seen[key] = len(problems)
        problems.append((field, message, fix))
    return problems

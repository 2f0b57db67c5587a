"""The Spark engine's options (``engine.options.spark``) and the narrow inputs it takes from a job plan."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dativo_ingest.config.models import JobSource, SourceTable
from dativo_ingest.engines.native.sources import SQL_DIALECTS
from dativo_ingest.errors import ConfigError

if TYPE_CHECKING:
    from dativo_ingest.config.plan import JobPlan

#: what ``master`` may be: local threads, a standalone master, YARN, Kubernetes, or Spark Connect
MASTER = re.compile(r"^(local(\[(\d+|\*)\])?|spark://\S+|yarn|k8s://\S+|sc://\S+)$")
#: the JDBC driver family of each SQL dialect Spark reads (SQLite is a local file: the native engine's)
JDBC_FAMILIES = {"postgres": "postgresql", "mysql": "mariadb"}
#: database connectors Spark reads over JDBC, by the name a job gives them (``SQL_DIALECTS``) → the driver family
JDBC_SOURCES = {name: JDBC_FAMILIES[dialect] for name, dialect in SQL_DIALECTS.items() if dialect in JDBC_FAMILIES}
#: file connectors Spark reads (local paths and globs)
FILE_SOURCES = frozenset({"csv"})
#: file formats Spark reads, by ``source.format`` or the file's extension
FILE_FORMATS = {"csv": "csv", "parquet": "parquet", "jsonl": "json", "json": "json", "ndjson": "json"}


class SparkOptions(BaseModel):
    """``engine.options.spark``: where Spark runs and how it reads."""

    model_config = ConfigDict(extra="forbid")

    #: ``local[N]`` (default ``local[2]``), ``spark://host:7077``, ``yarn``, ``k8s://…``, or Spark Connect ``sc://…``
    master: str = "local[2]"
    #: passed through to the SparkSession (``spark.executor.memory``: ``4g`` …)
    conf: dict[str, str] = Field(default_factory=dict)
    #: JDBC: the numeric, date or timestamp column the read is split on (default: a one-column integer primary key)
    partition_column: str | None = None
    #: JDBC: how many parallel reads (default: Spark's default parallelism)
    num_partitions: int | None = Field(default=None, ge=1, le=10_000)
    #: JDBC: rows per round trip
    fetch_size: int = Field(default=10_000, ge=1)
    #: extra jars (JDBC drivers) besides the Debian ones found under /usr/share/java
    jars: list[str] = Field(default_factory=list)

    @field_validator("master")
    @classmethod
    def _master(cls, value: str) -> str:
        if not MASTER.match(value):
            raise ValueError(f"'{value}' is not a Spark master: use local[N], spark://host:port, yarn, k8s://… "
                             f"or sc://host:port")
        return value

    @field_validator("conf", mode="before")
    @classmethod
    def _conf(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
        return value

    @property
    def is_connect(self) -> bool:
        """Spark Connect (``sc://``): the session is remote."""
        return self.master.startswith("sc://")


def spark_options(options: dict[str, Any], job_path: Path | None) -> SparkOptions:
    """The job's ``engine.options.spark`` validated; a mistake is one ``ConfigError`` naming the field and fix."""
    raw = options.get("spark") or {}
    if not isinstance(raw, dict):
        raise ConfigError(job_path, "must be a mapping", field="engine.options.spark",
                          fix="e.g. spark: {master: 'local[2]', conf: {spark.driver.memory: 2g}}")
    try:
        return SparkOptions.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error.get("loc", ()))
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        fix = ("remove it; known options: " + ", ".join(SparkOptions.model_fields)) \
            if error.get("type") == "extra_forbidden" else "fix the value"
        raise ConfigError(job_path, message, field=f"engine.options.spark.{where}", fix=fix) from None


@dataclass(frozen=True)
class SparkInputs:
    """What the Spark engine needs of a job plan, read in one place (``inputs``)."""

    job_path: Path
    connector: str
    options: SparkOptions
    #: the source's ``connection`` mapping (databases)
    connection: dict[str, Any] = field(default_factory=dict)
    #: the job's source section as the native resolvers read it (files, and their CSV options)
    source: JobSource | None = None
    #: databases: ``source.tables`` or ``source.query``
    tables: list[SourceTable] = field(default_factory=list)
    query: str | None = None
    #: ``source.format`` for files (csv, parquet, jsonl), None: by extension
    file_format: str | None = None
    chunk_rows: int = 1_000_000
    #: files: the project root, the stream of a file that names none, and which local files may be read
    project_root: Path = Path(".")
    default_stream: str = ""
    file_access: Any = None

    @property
    def is_jdbc(self) -> bool:
        """A database read over JDBC."""
        return self.connector in JDBC_SOURCES


def inputs(plan: JobPlan) -> SparkInputs:
    """The narrow, typed view of ``plan.source`` / ``plan.target`` / ``plan.engine_options`` this engine uses."""
    source = plan.source
    fmt = (source.model_extra or {}).get("format")
    return SparkInputs(
        job_path=plan.job_path,
        connector=plan.source_connector,
        options=spark_options(plan.engine_options, plan.job_path),
        connection=source.connection_values,
        source=source,
        tables=list(source.tables or []),
        query=source.query,
        file_format=str(fmt).lower() if fmt else None,
        chunk_rows=plan.target.chunk_rows or 1_000_000,
        project_root=plan.project_root,
        default_stream=plan.default_stream,
        file_access=plan.file_access,
    )


__all__ = ["FILE_FORMATS", "FILE_SOURCES", "JDBC_FAMILIES", "JDBC_SOURCES", "SparkInputs", "SparkOptions", "inputs",
           "spark_options"]

"""Java, the JDBC drivers and the one SparkSession of this process.

The session is made once per process and shared by every Spark run in it (a JVM takes seconds to start); its
conf is the job's ``engine.options.spark.conf`` over ours. Java and the drivers come from Debian packages
(``openjdk-17-jre-headless``, ``libpostgresql-jdbc-java``, ``libmariadb-java``) or from ``JAVA_HOME`` and
``engine.options.spark.jars``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dativo_ingest.engines.spark.options import JDBC_SOURCES, SparkOptions
from dativo_ingest.errors import ConfigError, InfrastructureError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: where Debian's JDBC driver packages put their jars
JAVA_SHARE = Path(os.environ.get("DATIVO_JDBC_JARS", "/usr/share/java"))
#: driver family → (jar names to look for, Debian package, JDBC driver class)
DRIVERS = {
    "postgresql": (("postgresql.jar",), "libpostgresql-jdbc-java", "org.postgresql.Driver"),
    "mariadb": (("mariadb-java-client.jar",), "libmariadb-java", "org.mariadb.jdbc.Driver"),
}
#: our defaults; the job's conf wins
BASE_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.ui.enabled": "false",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "65536",
    "spark.sql.shuffle.partitions": "8",
    # a CHAR(n)-typed JDBC column (MySQL SET, CHAR) as the database returns it, not padded to n by Spark
    "spark.sql.readSideCharPadding": "false",
}

_lock = threading.Lock()
_session: SparkSession | None = None
_session_key: tuple[str, tuple[tuple[str, str], ...]] | None = None
#: runs using the session now (``run --job-dir`` runs jobs on threads: they share it)
_users = 0


def java_problem() -> str | None:
    """Why no Java 17+ can run Spark here (None: one can)."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        return "no Java found (install openjdk-17-jre-headless, or set JAVA_HOME)"
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{java} does not run ({type(exc).__name__})"
    text = (out.stderr or out.stdout).split('"')
    version = text[1] if len(text) > 1 else ""
    major = version.split(".")[0] if not version.startswith("1.") else version.split(".")[1]
    if not major.isdigit() or int(major) < 17:
        return f"{java} is Java {version or '?'}; Spark 4 needs Java 17 or newer (install openjdk-17-jre-headless)"
    return None


def driver_jar(family: str, extra: list[str]) -> Path | None:
    """The JDBC driver jar of ``family`` (``postgresql``, ``mariadb``): one of ``extra``, else Debian's."""
    names, _package, _cls = DRIVERS[family]
    for jar in extra:
        if family in Path(jar).name.lower() and Path(jar).is_file():
            return Path(jar)
    for name in names:
        if (JAVA_SHARE / name).is_file():
            return JAVA_SHARE / name
    return None


def driver_class(connector: str) -> str:
    """The JDBC driver class for a database connector."""
    return DRIVERS[JDBC_SOURCES[connector]][2]


def check_runtime(options: SparkOptions, connector: str, job_path: Path) -> None:
    """pyspark, Java and the connector's JDBC driver are here; one line naming the fix otherwise."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise ConfigError(job_path, "engine spark needs pyspark, which is not installed", field="engine",
                          fix="pip install 'dativo-ingest[spark]'") from None
    if options.is_connect:  # the remote server runs the JVM and holds the drivers; we need the gRPC client
        try:
            import grpc_status  # noqa: F401
        except ImportError:
            raise ConfigError(job_path, "a Spark Connect master needs pyspark[connect], which is not installed",
                              field="engine.options.spark.master", fix="pip install 'dativo-ingest[spark]'") from None
        return
    problem = java_problem()
    if problem:
        raise InfrastructureError(f"{job_path}: engine spark: {problem}")
    for jar in options.jars:
        if not Path(jar).is_file():
            raise ConfigError(job_path, f"jar not found: {jar}", field="engine.options.spark.jars",
                              fix="give the path of an existing .jar")
    family = JDBC_SOURCES.get(connector)
    if family and driver_jar(family, options.jars) is None:
        package = DRIVERS[family][1]
        raise InfrastructureError(f"{job_path}: engine spark: the {family} JDBC driver is not installed "
                                  f"(apt-get install {package}, or list its jar in engine.options.spark.jars)")


def session_conf(options: SparkOptions) -> dict[str, str]:
    """The session's conf: ours, the drivers found, then the job's ``conf`` (Spark Connect: only the session's
    time zone and the job's ``conf``; the server was started with its own jars and JVM options)."""
    if options.is_connect:
        return {"spark.sql.session.timeZone": "UTC", "spark.sql.readSideCharPadding": "false", **options.conf}
    conf = dict(BASE_CONF)
    jars = [str(j) for j in options.jars]
    for family in DRIVERS:
        jar = driver_jar(family, options.jars)
        if jar is not None and str(jar) not in jars:
            jars.append(str(jar))
    if jars:
        conf["spark.jars"] = ",".join(jars)
    if options.master.startswith("local"):  # the workers are this interpreter, with this package and its deps
        conf["spark.pyspark.python"] = sys.executable
        conf["spark.pyspark.driver.python"] = sys.executable
    conf.update(options.conf)
    return conf


@contextmanager
def spark_session(options: SparkOptions, job_path: Path) -> Iterator[SparkSession]:
    """The process's SparkSession for these options, held for one run (see ``get_session``)."""
    global _users
    session = get_session(options, job_path)
    try:
        yield session
    finally:
        with _lock:
            _users -= 1


def get_session(options: SparkOptions, job_path: Path | None = None) -> SparkSession:
    """The process's SparkSession for these options, counted as used until ``spark_session`` releases it (made on
    first use; a different master or conf stops the previous one first when no run uses it: one JVM per
    process, so two runs at once on different options are refused)."""
    global _session, _session_key, _users
    conf = session_conf(options)
    key = (options.master, tuple(sorted(conf.items())))
    with _lock:
        if _session is not None and _session_key == key:
            _users += 1
            return _session
        if _session is not None and _users > 0:
            raise ConfigError(job_path, "another job of this process runs on Spark with other options (one "
                              "SparkSession per process)", field="engine.options.spark",
                              fix="give the jobs run together the same master and conf, or run this one apart")
        if _session is not None:
            _session.stop()
            _session = None
        _forget_connect_mode()
        from pyspark.sql import SparkSession

        if options.master.startswith("local"):
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder: Any = SparkSession.builder.appName("dativo-ingest")
        builder = builder.remote(options.master) if options.is_connect else builder.master(options.master)
        for name, value in conf.items():
            builder = builder.config(name, value)
        logging.getLogger("py4j").setLevel(logging.WARNING)  # its connection chatter, also at interpreter exit
        was_set = CONNECT_MODE_VARIABLE in os.environ
        session = builder.getOrCreate()
        if options.is_connect and not was_set:  # pyspark set it, process-wide: unset when this session goes
            _set_by_us.add(CONNECT_MODE_VARIABLE)
        if not options.is_connect:
            session.sparkContext.setLogLevel("ERROR")
        _session, _session_key = session, key
        _users += 1
        return session


def parallelism(spark: SparkSession) -> int:
    """How many tasks Spark runs at once by default (Spark Connect: ``spark.default.parallelism``, else 4)."""
    try:
        return int(spark.sparkContext.defaultParallelism)
    except Exception:  # noqa: BLE001 - a Spark Connect session has no SparkContext
        return int(spark.conf.get("spark.default.parallelism", "4") or 4)


def stop_session() -> None:
    """Stop this process's SparkSession, if one was made."""
    global _session, _session_key, _users
    with _lock:
        if _session is not None:
            _session.stop()
        _session, _session_key, _users = None, None, 0
        _forget_connect_mode()


#: pyspark marks the whole process as "Spark Connect" in this variable when a Connect session is made; a classic
#: session made after it would then ask for a Connect URL (CONNECT_URL_NOT_SET)
CONNECT_MODE_VARIABLE = "SPARK_CONNECT_MODE_ENABLED"
_set_by_us: set[str] = set()


def _forget_connect_mode() -> None:
    """Unset what pyspark set for a Connect session of ours that is gone (never a variable the user set)."""
    for name in list(_set_by_us):
        os.environ.pop(name, None)
        _set_by_us.discard(name)


__all__ = ["check_runtime", "driver_class", "driver_jar", "get_session", "java_problem", "parallelism",
           "session_conf", "spark_session", "stop_session"]

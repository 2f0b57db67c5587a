"""The Spark engine: one job's extract, cast and Parquet write spread over a Spark cluster; our process commits.

``engine: spark`` (optional extra ``.[spark]``). The modules: ``options`` (the job's ``engine.options.spark`` and
the narrow inputs of the plan), ``session`` (Java, JDBC drivers, the one SparkSession), ``jdbc`` and ``files``
(the readers), ``partition`` (what each Spark task runs: the DuckDB stage's casts and violations, then Parquet
files written straight into the table's location), ``run`` (the driver: one Iceberg commit of exactly those
files and the state envelope), ``engine`` (the ``Engine`` of ``engines.base``).
"""

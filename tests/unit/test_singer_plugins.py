"""engines/singer.yaml and the job's extractor block → the tap, its settings and its streams."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dativo_ingest.config.loader import load_job_plan
from dativo_ingest.engines import get_engine
from dativo_ingest.engines.singer.engine import SingerEngine
from dativo_ingest.engines.singer.plugins import TapStream, resolve_tap, tap_config, tap_streams
from dativo_ingest.errors import ConfigError
from tests.acceptance.helpers import REPO, write_yaml

ASSET = {"apiVersion": "v3.0.2", "kind": "DataContract", "name": "orders", "version": "1.0", "object": "orders",
         "schema": [{"name": "id", "type": "long", "primary_key": True}, {"name": "updated_at", "type": "timestamptz"}]}


def plan_for(tmp_path: Path, job: dict, *, secrets: dict[str, str] | None = None):
    project = tmp_path / "project"
    for folder in ("registry", "connectors"):
        shutil.copytree(REPO / folder, project / folder, dirs_exist_ok=True)
    write_yaml(project / "assets/orders.yaml", ASSET)
    secrets_dir = tmp_path / "secrets"
    (secrets_dir / "acme").mkdir(parents=True, exist_ok=True)
    (secrets_dir / "acme" / "pg.env").write_text("".join(f"{k}={v}\n" for k, v in (secrets or {}).items()))
    path = write_yaml(project / "jobs/acme/j.yaml", {"tenant_id": "acme", "target_connector": "iceberg",
                                                     "asset_path": "assets/orders.yaml", **job})
    return load_job_plan(path, secrets_dir=secrets_dir)


def test_singer_and_meltano_are_one_engine():
    assert isinstance(get_engine("singer"), SingerEngine) and isinstance(get_engine("meltano"), SingerEngine)


def test_postgres_settings_come_from_the_recipe_and_the_tenant_secrets(tmp_path):
    plan = plan_for(tmp_path, {"source_connector": "postgres", "source": {
        "tables": [{"name": "sales.orders"}, {"name": "public.users", "object": "users", "cursor_field": "updated_at"},
                   {"name": "sales.items"}],
        "incremental": {"strategy": "updated_at", "cursor_field": "updated_at"}}},
        secrets={"POSTGRES_HOST": "db.internal", "POSTGRES_DB": "shop", "POSTGRES_USER": "reader",
                 "POSTGRES_PASSWORD": "s3cret-pw", "POSTGRES_PORT": "6543"})
    assert plan.engine == "singer"  # the postgres recipe says meltano
    plugin = resolve_tap(plan)
    assert plugin.name == "tap-postgres" and plugin.pip_url.startswith("meltanolabs-tap-postgres==")
    assert tap_config(plan, plugin) == {"host": "db.internal", "port": 6543, "user": "reader",
                                        "password": "s3cret-pw", "database": "shop",
                                        "filter_schemas": ["sales", "public"]}
    assert tap_streams(plan, plugin) == [
        TapStream("sales.orders", "sales-orders", "INCREMENTAL", "updated_at"),
        TapStream("users", "public-users", "INCREMENTAL", "updated_at"),
        TapStream("sales.items", "sales-items", "INCREMENTAL", "updated_at")]


def test_a_full_refresh_selects_full_table(tmp_path):
    plan = plan_for(tmp_path, {"source_connector": "postgres", "target": {"write_mode": "overwrite"},
                               "source": {"connection": {"host": "h", "database": "d", "user": "u"},
                                          "tables": [{"name": "t"}], "incremental": {"cursor_field": "updated_at"}}})
    assert tap_streams(plan, resolve_tap(plan)) == [TapStream("t", "public-t", "FULL_TABLE", None)]


def test_csv_files_map_onto_tap_spreadsheets(tmp_path):
    plan = plan_for(tmp_path, {"source_connector": "csv", "engine": "singer", "source": {
        "delimiter": ";", "files": [{"path": "data/a.csv", "object": "a"}, {"path": "/abs/b.csv", "skip_rows": 2}]}})
    plugin = resolve_tap(plan)
    root = plan.project_root
    assert tap_config(plan, plugin) == {"files": [
        {"path": str(root / "data/a.csv"), "format": "csv", "table_name": "a", "delimiter": ";",
         "primary_keys": ["id"]},
        {"path": "/abs/b.csv", "format": "csv", "table_name": "orders", "delimiter": ";", "skip_rows": 2,
         "primary_keys": ["id"]}]}
    assert [s.tap_stream_id for s in tap_streams(plan, plugin)] == ["a", "orders"]


def test_a_pasted_meltano_extractor_overrides_the_plugin(tmp_path):
    plan = plan_for(tmp_path, {"source_connector": "postgres", "source": {
        "connection": {"host": "h", "database": "d", "user": "u"}, "tables": [{"name": "t"}]},
        "extractor": {"name": "tap-postgres", "variant": "meltanolabs", "pip_url": "meltanolabs-tap-postgres==0.9.0",
                      "config": {"ssl_enable": True, "port": 5433}, "select": ["public-t.*"],
                      "metadata": {"public-t": {"replication-method": "INCREMENTAL"}}}})
    plugin = resolve_tap(plan)
    assert plugin.pip_url == "meltanolabs-tap-postgres==0.9.0" and plugin.executable == "tap-postgres"
    config = tap_config(plan, plugin)
    assert config["ssl_enable"] is True and config["port"] == 5433 and config["host"] == "h"
    assert tap_streams(plan, plugin) is None  # the extractor's select decides, after discovery


def test_another_tap_in_the_extractor_does_not_inherit_the_connectors_mapping(tmp_path):
    plan = plan_for(tmp_path, {"source_connector": "singer_tap", "extractor": {
        "name": "tap-custom", "executable": "tools/tap.py", "config": {"token": "${API_TOKEN:-x}"}}})
    plugin = resolve_tap(plan)
    assert plugin.config_map == {} and plugin.capabilities is None and plugin.pip_url is None
    assert tap_config(plan, plugin) == {"token": "x"}
    assert tap_streams(plan, plugin) == [TapStream("orders", "orders", None, None)]


@pytest.mark.parametrize(("job", "message"), [
    ({"source_connector": "postgres", "source": {"connection": {"host": "h", "database": "d", "user": "u"},
                                                 "query": "select 1"}},
     "source.query: the Singer tap tap-postgres reads tables, not queries"),
    ({"source_connector": "postgres", "source": {"connection": {"host": "h", "database": "d", "user": "u",
                                                                "port": "not-a-port"}, "tables": [{"name": "t"}]}},
     "'connection.port' must be integer for the Singer tap"),
])
def test_mapping_problems_are_one_line(tmp_path, job, message):
    plan = plan_for(tmp_path, job)
    with pytest.raises(ConfigError, match=message):
        plugin = resolve_tap(plan)
        tap_config(plan, plugin)
        tap_streams(plan, plugin)


def test_mysql_is_read_by_pipelinewise_tap_mysql(tmp_path):
    plan = plan_for(tmp_path, {"source_connector": "mysql", "source": {
        "connection": {"host": "h", "database": "d", "user": "u"},
        "tables": [{"name": "t", "object": "o"}, {"name": "other.t2"}],
        "incremental": {"strategy": "updated_at", "cursor_field": "updated_at"}}})
    assert plan.engine == "singer"  # the mysql recipe says meltano
    plugin = resolve_tap(plan)
    assert (plugin.name, plugin.pip_url) == ("tap-mysql", "pipelinewise-tap-mysql==1.6.0")
    assert tap_config(plan, plugin) == {"host": "h", "port": 3306, "user": "u", "password": "", "database": "d",
                                        "filter_dbs": "d"}
    streams = tap_streams(plan, plugin)
    assert [(s.stream, s.tap_stream_id, s.replication_key) for s in streams] == [
        ("o", "d-t", "updated_at"), ("other.t2", "other-t2", "updated_at")]


def test_the_extractor_block_is_closed(tmp_path):
    with pytest.raises(ConfigError, match="extractor.pipurl: unknown key .did you mean 'pip_url'"):
        plan_for(tmp_path, {"source_connector": "singer_tap", "extractor": {"name": "t", "pipurl": "x"}})

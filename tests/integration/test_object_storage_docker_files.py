"""docker-compose.dev.yml and images/Dockerfile cannot run here (no Docker daemon): check that they say what
the README and the example secrets (images/dev.env) say — services, ports, credentials, variables."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import yaml

from dativo_ingest.config.expand import variables_in
from dativo_ingest.config.secrets import parse_env_file
from tests.acceptance.helpers import REPO

COMPOSE = REPO / "docker-compose.dev.yml"
DEV_ENV = REPO / "images" / "dev.env"
SEED_PORTS = {"minio": {9000, 9001}, "nessie": {19120}, "postgres": {5432}, "mysql": {3306}}


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _published(service: dict) -> set[int]:
    out = set()
    for entry in service.get("ports", []):
        host, _, container = str(entry).rpartition(":")
        assert host == container, f"host and container ports differ in {entry}"
        out.add(int(host))
    return out


def test_services_ports_and_health_checks():
    services = _compose()["services"]
    assert set(services) == {"minio", "minio-init", "nessie", "postgres", "mysql"}
    for name, ports in SEED_PORTS.items():
        assert _published(services[name]) == ports, name
        test = services[name]["healthcheck"]["test"]
        assert test and test[0] in ("CMD", "CMD-SHELL"), name
    init = services["minio-init"]
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"
    assert services["nessie"]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"


def test_example_secrets_point_at_the_compose_services():
    env = parse_env_file(DEV_ENV)
    services = _compose()["services"]
    minio = services["minio"]["environment"]
    assert urlparse(env["S3_ENDPOINT"]).port == urlparse(env["MINIO_ENDPOINT"]).port == 9000
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (minio["MINIO_ROOT_USER"],
                                                                       minio["MINIO_ROOT_PASSWORD"])
    assert (env["MINIO_ACCESS_KEY"], env["MINIO_SECRET_KEY"]) == (minio["MINIO_ROOT_USER"],
                                                                 minio["MINIO_ROOT_PASSWORD"])
    init = " ".join(services["minio-init"]["command"])
    assert f"mc mb --ignore-existing local/{env['S3_BUCKET']}" in init
    assert f"{minio['MINIO_ROOT_USER']} {minio['MINIO_ROOT_PASSWORD']}" in init
    nessie = services["nessie"]["environment"]
    assert env["NESSIE_URI"] == "http://localhost:19120/api/v1"  # the seed's form; the engine finds /iceberg/
    assert nessie["nessie.catalog.warehouses.warehouse.location"].startswith(f"s3://{env['S3_BUCKET']}/")
    assert (nessie["minio.name"], nessie["minio.secret"]) == (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"])
    pg = services["postgres"]["environment"]
    assert (env["POSTGRES_PORT"], env["POSTGRES_DB"], env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == (
        "5432", pg["POSTGRES_DB"], pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"])
    my = services["mysql"]["environment"]
    assert (env["MYSQL_PORT"], env["MYSQL_DB"], env["MYSQL_USER"], env["MYSQL_PASSWORD"]) == (
        "3306", my["MYSQL_DATABASE"], "root", my["MYSQL_ROOT_PASSWORD"])


def test_every_required_variable_of_the_recipes_is_in_the_example_secrets():
    env = parse_env_file(DEV_ENV)
    for recipe in ("targets/iceberg", "targets/s3", "targets/minio", "sources/postgres", "sources/mysql"):
        data = yaml.safe_load((REPO / "connectors" / f"{recipe}.yaml").read_text())
        text = yaml.safe_dump(data.get("connection_template") or {})
        required = {m.group(1) for m in re.finditer(r"\$\{([A-Z0-9_]+)\}", text)}
        assert required <= set(env), (recipe, required - set(env))
        assert variables_in(data.get("connection_template")) - set(env) <= {
            "AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_CONTAINER",
            "AZURE_STORAGE_ENDPOINT", "ICEBERG_REST_CREDENTIAL", "ICEBERG_REST_WAREHOUSE"}, recipe


def test_readme_names_the_compose_file_ports_and_example_secrets():
    readme = (REPO / "README.md").read_text()
    assert "docker compose -f docker-compose.dev.yml up -d" in readme
    assert "cp images/dev.env secrets/acme/" in readme
    for port in ("9000", "9001", "19120", "5432", "3306"):
        assert port in readme


def test_engine_image_runs_as_a_non_root_user_with_the_cli_as_entrypoint():
    lines = [ln.strip() for ln in (REPO / "images" / "Dockerfile").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines[0].startswith("FROM python:3.")
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert any("useradd" in ln and users[-1] in ln for ln in lines)
    assert lines.index(next(ln for ln in lines if ln.startswith("USER "))) > lines.index(
        next(ln for ln in lines if "pip install ." in ln))
    assert 'ENTRYPOINT ["dativo_ingest"]' in lines
    copied = " ".join(ln for ln in lines if ln.startswith("COPY "))
    assert "pyproject.toml" in copied and "dativo_ingest" in copied
    ignore = (REPO / "images" / "Dockerfile.dockerignore").read_text().split()
    assert ignore[ignore.index("*") + 1:][:3] == ["!pyproject.toml", "!README.md", "!dativo_ingest/"]

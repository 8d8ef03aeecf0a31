"""The estate file: loading, overrides, secret references, errors naming file:line and key, JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from pipelines.config.load import BUNDLED_ESTATE, EstateError, load_estate
from pipelines.config.model import SecretRef
from pipelines.config.schema import SCHEMA_FILE, render
from pipelines.config.secrets import SecretError, SecretResolver
from pipelines.connect.render import ConnectorSpecError, check_spec, kafka_client_security, render_connector

pytestmark = pytest.mark.unit

MINIMAL = """\
name: shop
services:
  sales:
    engine: postgresql
    host: db.internal
    port: 5432
    database: sales
    cdc: {user: cdc, password: {env: SALES_CDC_PW}}
    reader: {user: reader, password: {file: secrets/sales_reader}}
    connector: sales/connector.json
    projection: sales/projection.yaml
kafka:
  bootstrap_servers: [k1:9092, k2:9092]
connect:
  urls: [http://connect:8083]
reporting:
  backend: duckdb
  duckdb: {path: "{state_dir}/r.duckdb"}
dagster:
  home: "{state_dir}/dagster"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "reporting.yaml"
    p.write_text(text)
    return p


def test_minimal_file_loads_with_paths_relative_to_it(tmp_path):
    e = load_estate(write(tmp_path, MINIMAL), environ={})
    (svc,) = e.services
    assert (svc.name, svc.engine, svc.host, svc.port) == ("sales", "postgresql", "db.internal", 5432)
    assert svc.connector == tmp_path / "sales" / "connector.json"
    assert svc.reader.password.file == tmp_path / "secrets" / "sales_reader"
    assert e.state_dir == tmp_path / ".state" and e.reporting.duckdb.path == tmp_path / ".state" / "r.duckdb"
    assert e.kafka.bootstrap == "k1:9092,k2:9092" and e.connect.url == "http://connect:8083"
    assert e.pipeline.consumer_group == "reporting-pipeline"  # defaults filled


def test_bundled_estate_declares_a_projection_and_connector_for_every_service():
    e = load_estate(BUNDLED_ESTATE, environ={})
    for svc in e.services:
        assert svc.connector.is_file() and svc.projection.is_file(), svc.name
        assert svc.schema_sql is not None and svc.schema_sql.is_file(), svc.name
    assert set(e.secret_refs()) >= {f"services.{s.name}.reader.password" for s in e.services}


@pytest.mark.parametrize(("change", "expected"), [
    (("    port: 5432\n", "    port: 99999\n"), r"reporting.yaml:6: services\.sales\.port: .*less than or equal to 65535"),
    (("    engine: postgresql\n", "    engine: oracle\n"), r"reporting.yaml:4: services\.sales\.engine: "),
    (("cdc: {user: cdc, password: {env: SALES_CDC_PW}}", "cdc: {user: cdc, password: hunter2}"),
     r"reporting.yaml:8: services\.sales\.cdc\.password: "),
    (("  urls: [http://connect:8083]\n", "  urls: [connect:8083]\n"), r"reporting.yaml:15: connect\.urls.*http"),
    (("  bootstrap_servers: [k1:9092, k2:9092]\n", "  bootstrap_servers: [k1]\n"),
     r"reporting.yaml:13: kafka\.bootstrap_servers.*host:port"),
    (("dagster:\n", "colour: blue\ndagster:\n"), r"reporting.yaml:19: colour: Extra inputs are not permitted"),
    (("  backend: duckdb\n", "  backend: postgres\n"), r"reporting.yaml:16: reporting: .*'reporting.postgres' is not declared"),
    (("    database: sales\n", ""), r"reporting.yaml:3: services\.sales\.database: Field required"),
])
def test_errors_name_file_line_and_key(tmp_path, change, expected):
    old, new = change
    assert old in MINIMAL
    with pytest.raises(EstateError, match=expected):
        load_estate(write(tmp_path, MINIMAL.replace(old, new)), environ={})


def test_invalid_yaml_names_its_line(tmp_path):
    with pytest.raises(EstateError, match=r"reporting.yaml:\d+: invalid YAML"):
        load_estate(write(tmp_path, MINIMAL + "  - [unclosed\n"), environ={})


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(EstateError, match="cannot read the estate file"):
        load_estate(tmp_path / "nope.yaml", environ={})


def test_environment_overrides_and_port_offset(tmp_path):
    path = write(tmp_path, MINIMAL.replace("reporting:\n", "reporting:\n  postgres: {host: pg, port: 5433, database: r, "
                                           "writer: {user: w, password: {env: W}}, reader: {user: b, password: {env: B}}}\n"))
    e = load_estate(path, environ={"REPORTING_PORT_OFFSET": "100", "REPORTING_BACKEND": "postgres",
                                   "REPORTING_STATE_DIR": str(tmp_path / "elsewhere"), "REPORTING_PLANNERS": "2"})
    assert e.services[0].port == 5532 and e.kafka.bootstrap_servers == ("k1:9192", "k2:9192")
    assert e.connect.url == "http://connect:8183" and e.reporting.postgres.port == 5533 and e.dagster.port == 53000  # not declared: the default is not shifted
    assert e.reporting.backend == "postgres" and e.pipeline.planners == 2
    assert e.state_dir == tmp_path / "elsewhere" and e.dagster.home == tmp_path / "elsewhere" / "dagster"


def test_secret_references_resolve_from_environment_env_file_and_file(tmp_path):
    env_file = tmp_path / "secrets.env"
    env_file.write_text("# local\nFROM_FILE=b\n")
    (tmp_path / "pw").write_text("c")
    (tmp_path / "pw-newline").write_text("c\n")
    resolver = SecretResolver({"FROM_ENV": "a"}, env_file)
    assert resolver.get(SecretRef(env="FROM_ENV"), "k") == "a"
    assert resolver.get(SecretRef(env="FROM_FILE"), "k") == "b"
    assert resolver.get(SecretRef(file=tmp_path / "pw"), "k") == "c"
    with pytest.raises(SecretError, match=r"services\.x\.reader\.password: environment variable NOPE is not set"):
        resolver.get(SecretRef(env="NOPE"), "services.x.reader.password")
    with pytest.raises(SecretError, match="ends with a newline"):
        resolver.get(SecretRef(file=tmp_path / "pw-newline"), "k")
    with pytest.raises(SecretError, match="cannot read secret file"):
        resolver.get(SecretRef(file=tmp_path / "missing"), "k")
    with pytest.raises(ValueError, match="exactly one"):
        SecretRef(env="A", file=tmp_path)


def test_committed_json_schema_is_current_and_validates_the_bundled_file():
    assert SCHEMA_FILE.read_text() == render(), "run `python -m pipelines.config.schema`"
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.validate(yaml.safe_load(BUNDLED_ESTATE.read_text()), schema)
    jsonschema.validate(yaml.safe_load(MINIMAL), schema)  # what the loader defaults is optional here too
    bad = yaml.safe_load(MINIMAL)
    bad["services"]["sales"]["port"] = "five"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    bad = yaml.safe_load(MINIMAL)
    bad["services"]["Bad-Name"] = bad["services"].pop("sales")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


# --- connector files completed from the estate ---------------------------------------------------------
def _estate(tmp_path, security: str = ""):
    text = MINIMAL.replace("  bootstrap_servers: [k1:9092, k2:9092]\n",
                           "  bootstrap_servers: [k1:9092, k2:9092]\n" + security)
    return load_estate(write(tmp_path, text), environ={})


def test_connector_gets_endpoints_and_password_placeholders_from_the_estate(tmp_path):
    e = _estate(tmp_path)
    spec = {"name": "sales-cdc", "config": {"connector.class": "io.debezium.connector.postgresql.PostgresConnector",
                                            "table.include.list": "public.sales",
                                            "signal.enabled.channels": "source,kafka"}}
    config = render_connector(check_spec(spec, Path("c.json")), e.services[0], e.kafka)["config"]
    assert config["database.hostname"] == "db.internal" and config["database.port"] == "5432"
    assert config["database.user"] == "cdc" and config["database.password"] == "${env:SALES_CDC_PW}"
    assert config["database.dbname"] == "sales" and config["topic.prefix"] == "sales"
    assert config["slot.name"] == config["publication.name"] == "reporting_sales"
    assert config["signal.kafka.bootstrap.servers"] == "k1:9092,k2:9092"
    assert "signal.consumer.security.protocol" not in config  # PLAINTEXT: nothing added


def test_connector_file_may_not_set_what_the_estate_owns_nor_a_plain_password(tmp_path):
    with pytest.raises(ConnectorSpecError, match=r"c.json: config.database.hostname comes from the estate file"):
        check_spec({"name": "x", "config": {"database.hostname": "h"}}, Path("c.json"))
    with pytest.raises(ConnectorSpecError, match=r"config.some.password must come from a config provider"):
        check_spec({"name": "x", "config": {"some.password": "hunter2"}}, Path("c.json"))
    e = _estate(tmp_path)
    spec = {"name": "x", "config": {"connector.class": "io.debezium.connector.mariadb.MariaDbConnector"}}
    with pytest.raises(ConnectorSpecError, match="does not capture a postgresql service"):
        render_connector(spec, e.services[0], e.kafka)


def test_sasl_security_is_passed_to_connector_clients_as_placeholders(tmp_path):
    e = _estate(tmp_path, "  security: {protocol: SASL_PLAINTEXT, sasl_mechanism: SCRAM-SHA-256, username: rep, "
                          "password: {env: KAFKA_PW}}\n")
    props = kafka_client_security(e.kafka.security, "signal.consumer.")
    assert props["signal.consumer.security.protocol"] == "SASL_PLAINTEXT"
    assert props["signal.consumer.sasl.mechanism"] == "SCRAM-SHA-256"
    assert 'ScramLoginModule required username="rep" password="${env:KAFKA_PW}";' in props["signal.consumer.sasl.jaas.config"]
    with pytest.raises(EstateError, match="needs sasl_mechanism, username and password"):
        _estate(tmp_path, "  security: {protocol: SASL_SSL}\n")


def test_ducklake_takes_one_catalog_sqlite_or_postgres_and_maintenance_defaults(tmp_path):
    sqlite = MINIMAL.replace('  backend: duckdb\n  duckdb: {path: "{state_dir}/r.duckdb"}\n',
                             '  backend: ducklake\n  ducklake:\n    catalog: "{state_dir}/lake/c.sqlite"\n'
                             '    data_path: "{state_dir}/lake/data"\n')
    lake = load_estate(write(tmp_path, sqlite), environ={}).reporting.ducklake
    assert lake.catalog == tmp_path / ".state" / "lake" / "c.sqlite" and lake.postgres_catalog is None
    m = lake.maintenance
    assert (m.schedule, m.keep_snapshots_hours, m.keep_daily_days, m.keep_files_hours) == ("*/15 * * * *", 1, 400, 0.25)
    assert lake.inlining_rows is None  # DuckLake's own default

    pg = sqlite.replace('    catalog: "{state_dir}/lake/c.sqlite"\n',
                        '    postgres_catalog:\n      host: cat.internal\n      port: 5432\n      database: lake\n'
                        '      login: {user: lake_writer, password: {env: LAKE_PW}}\n')
    lake = load_estate(write(tmp_path, pg), environ={}).reporting.ducklake
    assert lake.catalog is None and lake.postgres_catalog.login.password.env == "LAKE_PW"

    both = sqlite.replace('    data_path:', '    postgres_catalog: {host: h, port: 5432, database: d, '
                                            'login: {user: u, password: {env: P}}}\n    data_path:')
    with pytest.raises(EstateError, match="exactly one of 'catalog'"):
        load_estate(write(tmp_path, both), environ={})

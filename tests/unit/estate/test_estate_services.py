"""The estate as data: private schemas, what the connectors capture, and the fake data (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.dialects import postgresql

from estate import fake
from estate.services import SERVICES, get

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]

# Contract columns (shared brief) and the ONE private table that feeds each contract table.
CONTRACT_SOURCES = {
    "customers_v1": ("customers", "customers", {"email", "full_name", "country_code", "status", "registered_at",
                                                 "verified_at"}),
    "orders_v2": ("orders", "orders", {"order_status", "total_amount", "currency", "order_placed_at", "updated_at",
                                        "sales_channel", "status"}),
    "order_lines_v1": ("orders", "order_lines", {"line_number", "quantity", "unit_price", "line_amount"}),
    "payments_v1": ("payments", "payments", {"status", "amount", "currency", "refunded_amount", "authorised_at",
                                              "captured_at", "updated_at"}),
    "products_v1": ("warehouse", "catalog_items", {"title", "artist", "format", "price", "currency", "is_active",
                                                    "updated_at"}),
    "stock_levels_v1": ("warehouse", "bin_stock", {"location", "on_hand", "reserved", "updated_at"}),
    "shipments_v1": ("warehouse", "fulfilments", {"status", "carrier", "tracking_number", "picked_at", "packed_at",
                                                   "shipped_at", "updated_at"}),
}
SECRETS = {"customers": {"password_hash"}, "payments": {"card_token"}}


def test_simulator_services_are_the_bundled_estate_files_services():
    from tests.support.estate import bundled_estate

    declared = {s.name: s.engine for s in bundled_estate().services}
    assert {n: s.engine for n, s in SERVICES.items()} == declared
    with pytest.raises(KeyError, match=f"known: {next(iter(SERVICES))}"):
        get("no_such_service")


def test_every_private_table_has_a_primary_key():
    for service in SERVICES.values():
        for table in service.metadata.sorted_tables:
            assert table.primary_key.columns, f"{service.name}.{table.name}"


@pytest.mark.parametrize("contract", sorted(CONTRACT_SOURCES))
def test_private_columns_do_not_look_like_the_contract(contract):
    service, table, business_columns = CONTRACT_SOURCES[contract]
    private = {c.name for c in SERVICES[service].metadata.tables[_qualified(service, table)].columns}
    assert not private & business_columns, f"{contract} reuses private names {private & business_columns}"


def test_the_orders_schema_is_the_fixed_one_from_the_brief():
    orders = SERVICES["orders"].metadata.tables["public.orders"]
    assert [c.name for c in orders.columns] == [
        "id", "customer_ref", "state_code", "total_cents", "currency_iso", "created_ts", "modified_ts",
        "fraud_score", "internal_note", "terms_snapshot", "metadata"]
    types = {c.name: (c.type.compile(dialect=postgresql.dialect()), c.nullable) for c in orders.columns}
    assert types == {
        "id": ("BIGINT", False), "customer_ref": ("BIGINT", False), "state_code": ("SMALLINT", False),
        "total_cents": ("BIGINT", False), "currency_iso": ("CHAR(3)", False),
        "created_ts": ("TIMESTAMP WITH TIME ZONE", False), "modified_ts": ("TIMESTAMP WITH TIME ZONE", False),
        "fraud_score": ("NUMERIC(5, 4)", True), "internal_note": ("TEXT", True), "terms_snapshot": ("TEXT", False),
        "metadata": ("JSONB", True)}
    assert orders.c.id.autoincrement is True and [c.name for c in orders.primary_key.columns] == ["id"]
    lines = SERVICES["orders"].metadata.tables["public.order_lines"]
    assert [c.name for c in lines.primary_key.columns] == ["order_id", "line_no"]
    (fk,) = lines.c.order_id.foreign_keys
    assert fk.ondelete == "CASCADE" and fk.column.table is orders
    assert str(lines.c.discount_cents.server_default.arg) == "0"


def _qualified(service: str, table: str) -> str:
    return f"public.{table}" if SERVICES[service].engine == "postgresql" else table


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_connector_file_captures_exactly_the_service_tables_and_drops_its_secrets(name):
    """The connector as registered: its file's capture settings, endpoints from the estate file."""
    from pipelines.connect.client import estate_connectors
    from tests.support.estate import bundled_estate

    service = SERVICES[name]
    estate = bundled_estate()
    declared = estate.service(name)
    spec = next(c for c in estate_connectors(estate) if c["name"] == f"{name}-cdc")
    config = spec["config"]
    assert config["topic.prefix"] == name
    assert config["table.include.list"].split(",") == service.table_include_list()
    excluded = config["column.exclude.list"].split(",")
    assert excluded == service.column_exclude_list()
    for secret in SECRETS.get(name, ()):
        assert any(c.endswith(f".{secret}") for c in excluded), secret
    assert (config["database.hostname"], config["database.port"]) == (declared.host, str(declared.port))
    assert config["database.user"] == declared.cdc.user
    assert config["database.password"] == f"${{env:REPORTING_{name.upper()}_CDC_PASSWORD}}"
    fixed = {"decimal.handling.mode": "string", "time.precision.mode": "adaptive_time_microseconds",
             "binary.handling.mode": "base64", "tombstones.on.delete": "true",
             "provide.transaction.metadata": "true", "heartbeat.interval.ms": "10000",
             "value.converter.schemas.enable": "false", "key.converter.schemas.enable": "false"}
    assert {k: config[k] for k in fixed} == fixed
    if service.engine == "postgresql":
        assert config["connector.class"] == "io.debezium.connector.postgresql.PostgresConnector"
        assert config["plugin.name"] == "pgoutput" and config["publication.autocreate.mode"] == "filtered"
        assert config["slot.name"] == config["publication.name"] == f"reporting_{name}"
        assert config["database.dbname"] == service.database
    else:
        assert config["connector.class"] == "io.debezium.connector.mariadb.MariaDbConnector"
        assert config["schema.history.internal.kafka.bootstrap.servers"] == estate.kafka.bootstrap
        assert config["database.include.list"] == service.database


def test_slots_are_unique_per_service():
    slots = [s.slot_name for s in SERVICES.values() if s.engine == "postgresql"]
    assert len(set(slots)) == len(slots)


def test_cdc_setup_creates_a_filtered_publication_for_postgres_services():
    (grant_usage, grant_select, publication) = SERVICES["orders"].cdc_setup_sql()
    assert "public.orders, public.order_lines" in grant_select
    assert "CREATE PUBLICATION reporting_orders FOR TABLE public.orders, public.order_lines" in publication
    assert "REPLICATION SLAVE" in SERVICES["warehouse"].cdc_setup_sql()[0]


def test_terms_are_long_enough_to_be_toasted_and_stable():
    for version in fake.TERMS_VERSIONS:
        assert len(fake.terms_snapshot(version).encode()) > 2048
        assert fake.terms_snapshot(version) == fake.terms_snapshot(version)
    assert len({fake.terms_snapshot(v) for v in fake.TERMS_VERSIONS}) == len(fake.TERMS_VERSIONS)


def test_catalog_items_are_stable_and_priced_in_cents():
    assert fake.catalog_item(42) == fake.catalog_item(42)
    item = fake.catalog_item(42)
    assert item.sku == "MC-000042" and isinstance(item.price_cents, int) and item.price_cents > 0
    assert 0 < item.supplier_cost_cents < item.price_cents

"""Projection files: the orders projection, and every load-time error naming file:line."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from pipelines.cdc.types import UNAVAILABLE, TypeDecodeError
from pipelines.projection import ProjectionError, load_projection, load_projections, parse_projection

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
ORDERS = REPO / "connectors" / "orders" / "projection.yaml"
INTERNAL = {"fraud_score", "internal_note", "terms_snapshot"}


def order_row(**changes):
    row = {"id": 1, "customer_ref": 501, "state_code": 10, "total_cents": 12345, "currency_iso": "eur",
           "created_ts": "2024-11-25T09:58:41.5Z", "modified_ts": "2024-11-25T10:00:00.123456Z",
           "fraud_score": "0.0420", "internal_note": "vip", "terms_snapshot": "t" * 3000,
           "metadata": '{"channel": "web"}'}
    row.update(changes)
    return row


@pytest.fixture(scope="module")
def orders():
    return load_projection(ORDERS)


def test_orders_projection_shape(orders):
    assert (orders.service, orders.engine, orders.topic_prefix) == ("orders", "postgresql", "orders")
    assert set(orders.by_topic) == {"orders.public.orders", "orders.public.order_lines"}
    table = orders.table("public.orders")
    assert table.key == ("id",) and table.topic == "orders.public.orders"
    assert [t.physical_name for t in table.targets] == ["orders_v1", "orders_v2"]
    assert table.target("orders_v1").key_columns == ("order_id",)
    lines = orders.table("public.order_lines")
    assert lines.key == ("order_id", "line_no")
    assert lines.target("order_lines_v1").key_columns == ("order_id", "line_number")


def test_internal_columns_never_reach_a_target(orders):
    for table in orders.tables.values():
        assert not INTERNAL & set(table.column_types)
        for target in table.targets:
            assert not INTERNAL & set(target.columns)
            for expr in target.expressions:
                assert not INTERNAL & expr.columns
    projected = orders.project("public.orders", order_row())
    assert not any(INTERNAL & set(cols) for cols in projected.values())
    assert "vip" not in repr(projected) and "0.0420" not in repr(projected)


def test_orders_v1_and_v2(orders):
    out = orders.project("public.orders", order_row(state_code=95))
    assert out["orders_v1"] == {
        "order_id": 1, "customer_id": 501, "status": "CANCELLED", "total_amount": Decimal("123.45"),
        "currency": "EUR", "placed_at": datetime(2024, 11, 25, 9, 58, 41, 500000, tzinfo=UTC),
        "updated_at": datetime(2024, 11, 25, 10, 0, 0, 123456, tzinfo=UTC),
    }
    v2 = out["orders_v2"]
    assert v2["order_status"] == "REFUNDED" and v2["sales_channel"] == "web"
    assert v2["order_placed_at"] == out["orders_v1"]["placed_at"]


@pytest.mark.parametrize(("code", "v1", "v2"), [
    (10, "PLACED", "PLACED"), (20, "PAID", "PAID"), (30, "PACKED", "PACKED"), (40, "SHIPPED", "SHIPPED"),
    (90, "CANCELLED", "CANCELLED"), (95, "CANCELLED", "REFUNDED"),
])
def test_status_maps(orders, code, v1, v2):
    out = orders.project("public.orders", order_row(state_code=code))
    assert (out["orders_v1"]["status"], out["orders_v2"]["order_status"]) == (v1, v2)


def test_unmapped_status_is_a_projection_error(orders):
    with pytest.raises(ProjectionError, match=r"orders_v1.status: state_code value 50 has no mapping"):
        orders.project("public.orders", order_row(state_code=50))


def test_order_line_amount(orders):
    row = {"order_id": 7, "line_no": 2, "sku": "LP-1", "qty": 3, "unit_price_cents": 2499, "discount_cents": 398}
    out = orders.project("public.order_lines", row)["order_lines_v1"]
    assert out == {"order_id": 7, "line_number": 2, "sku": "LP-1", "quantity": 3,
                   "unit_price": Decimal("24.99"), "line_amount": Decimal("70.99")}


def test_tolerant_reader_and_missing_column(orders):
    assert orders.project("public.orders", order_row(brand_new_column=1))["orders_v1"]["order_id"] == 1
    row = order_row()
    del row["customer_ref"]
    with pytest.raises(ProjectionError) as err:
        orders.project("public.orders", row)
    assert str(err.value) == "source column customer_ref missing in public.orders (schema drift?)"


def test_toast_placeholder_only_affects_dependent_columns(orders):
    out = orders.project("public.orders", order_row(metadata="__debezium_unavailable_value",
                                                    terms_snapshot="__debezium_unavailable_value"))
    assert out["orders_v2"]["sales_channel"] is UNAVAILABLE
    assert UNAVAILABLE not in out["orders_v1"].values()


def test_type_drift_is_a_type_error(orders):
    with pytest.raises(TypeDecodeError, match="public.orders.total_cents"):
        orders.project("public.orders", order_row(total_cents="12345"))


def test_unknown_source_table(orders):
    with pytest.raises(ProjectionError, match="no projection for source table public.nope"):
        orders.project("public.nope", {})


BASE = """\
service: shop
engine: postgresql
tables:
  public.items:
    key: [id]
    columns:
      id: bigint
      name: text
      state: smallint
    targets:
      items_v1:
        item_id: id
        title: upper(name)
        status: {map: state, values: {1: ON, 2: OFF}}
"""


def _load(text: str, tmp_path: Path, name: str = "projection.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return load_projection(path)


def test_minimal_file_loads(tmp_path):
    p = _load(BASE, tmp_path)
    assert p.project("public.items", {"id": 1, "name": "x", "state": 2}) == {
        "items_v1": {"item_id": 1, "title": "X", "status": "OFF"}}


def test_yaml_12_booleans_keep_country_codes_as_text(tmp_path):
    text = BASE.replace("{1: ON, 2: OFF}", "{1: NO, 2: yes}")
    p = _load(text, tmp_path)
    assert p.project("public.items", {"id": 1, "name": "x", "state": 1})["items_v1"]["status"] == "NO"


def test_map_default_and_null(tmp_path):
    p = _load(BASE.replace("values: {1: ON, 2: OFF}", "values: {1: ON}, default: OTHER"), tmp_path)
    assert p.project("public.items", {"id": 1, "name": "x", "state": 7})["items_v1"]["status"] == "OTHER"
    assert p.project("public.items", {"id": 1, "name": "x", "state": None})["items_v1"]["status"] is None


def test_map_on_text_column_accepts_numeric_looking_keys(tmp_path):
    text = BASE.replace("state: smallint", "state: varchar(4)").replace("{1: ON, 2: OFF}", "{1: ON, B: OFF}")
    p = _load(text, tmp_path)
    assert p.project("public.items", {"id": 1, "name": "x", "state": "1"})["items_v1"]["status"] == "ON"


def test_topic_prefix_override(tmp_path):
    p = _load(BASE.replace("engine: postgresql", "engine: postgresql\ntopic_prefix: legacy.shop"), tmp_path)
    assert set(p.by_topic) == {"legacy.shop.public.items"}


@pytest.mark.parametrize(("old", "new", "line", "message"), [
    ("service: shop", "service: Shop", 1, "service 'Shop' is not a plain identifier"),
    ("engine: postgresql", "engine: oracle", 2, "engine must be one of postgresql, mariadb"),
    ("engine: postgresql", "engine: postgresql\nowner: me", 3, "unknown key 'owner' in the file"),
    ("  public.items:", "  items:", 4, "source table 'items' must be <schema>.<table>"),
    ("    key: [id]", "    key: [id]\n    filter: x", 6, "unknown key 'filter' in table public.items"),
    ("    key: [id]", "    key: [nope]", 5, "key column 'nope' is not declared under columns:"),
    ("    key: [id]", "    key: []", 5, "key must be a non-empty list"),
    ("      name: text", "      name: money", 8, "public.items.name: unknown source type 'money'"),
    ("      name: text", "      Name: text", 8, "source column of public.items 'Name' is not a plain identifier"),
    ("      items_v1:", "      items:", 11, "target 'items' must be named <contract table>_v<major>"),
    ("      items_v1:", "      items_v0:", 11, "must be named <contract table>_v<major>"),
    ("        title: upper(name)", "        title: __import__('os').system('id')", 13,
     "items_v1.title: expression \"__import__('os').system('id')\": attribute access is not allowed"),
    ("        title: upper(name)", "        title: __import__('os')", 13, "function '__import__' is not allowed"),
    ("        title: upper(name)", "        title: eval(name)", 13, "function 'eval' is not allowed"),
    ("        title: upper(name)", "        title: name[0]", 13, "subscripts are not allowed"),
    ("        title: upper(name)", "        title: upper(nam)", 13, "unknown source column 'nam'"),
    ("        title: upper(name)", "        title: 5", 13, "expected a column name, an expression string or a"),
    ("        title: upper(name)", "        _title: upper(name)", 13, "names starting with '_' are provenance"),
    ("        title: upper(name)", "        title: upper(name)\n        title: name", 14, "duplicate key 'title'"),
    ("{1: ON, 2: OFF}", "{one: ON}", 14, "map key 'one' must be an integer (state is smallint)"),
    ("{1: ON, 2: OFF}", "{true: ON}", 14, "map key True is a boolean; quote it"),
    ("{1: ON, 2: OFF}", "{1: [ON]}", 14, "map value for 1 must be a scalar"),
    ("{map: state, values: {1: ON, 2: OFF}}", "{values: {1: ON}}", 14, "a map needs 'map:"),
    ("{map: state, values: {1: ON, 2: OFF}}", "{map: state, values: {1: ON}, else: X}", 14,
     "unknown key 'else' in items_v1.status"),
    ("{map: state, values: {1: ON, 2: OFF}}", "{map: 'state.x', values: {1: ON}}", 14, "attribute access"),
    ("        item_id: id", "        item_id: id + 0", 11, "must copy source key column public.items.id into exactly"),
    ("        item_id: id", "        item_id: id\n        other_id: id", 11, "(found 2)"),
    ("        status: {map: state, values: {1: ON, 2: OFF}}", "", 9,
     "public.items.state is declared but no target uses it"),
    ("        title: upper(name)", "        title: 'unterminated", 13, "invalid YAML"),
])
def test_errors_name_file_and_line(tmp_path, old, new, line, message):
    assert old in BASE
    with pytest.raises(ProjectionError) as err:
        _load(BASE.replace(old, new, 1), tmp_path)
    path = tmp_path / "projection.yaml"
    assert str(err.value).startswith(f"{path}:{line}: "), str(err.value)
    assert message in str(err.value)
    assert err.value.line == line and err.value.path == path


def test_tables_must_be_a_mapping():
    with pytest.raises(ProjectionError, match=r"^<projection>:3: tables must be a non-empty mapping"):
        parse_projection("service: shop\nengine: mariadb\ntables: []\n")


def test_target_fed_by_two_tables(tmp_path):
    text = BASE + textwrap.indent(textwrap.dedent("""\
        public.more:
          key: [id]
          columns: {id: bigint}
          targets:
            items_v1: {item_id: id}
        """), "  ")
    with pytest.raises(ProjectionError, match="items_v1 is fed by both public.items and public.more"):
        _load(text, tmp_path)


def test_mariadb_source_tables_are_db_dot_table():
    p = parse_projection(textwrap.dedent("""\
        service: warehouse
        engine: mariadb
        tables:
          warehouse.stock:
            key: [sku, location]
            columns: {sku: varchar(32), location: varchar(16), on_hand: int, updated_at: timestamp_ms}
            targets:
              stock_levels_v1: {sku: sku, location: location, on_hand: on_hand, updated_at: updated_at}
        """))
    assert set(p.by_topic) == {"warehouse.warehouse.stock"}


def test_missing_file():
    with pytest.raises(ProjectionError, match="cannot read"):
        load_projection("/nonexistent/projection.yaml")


def test_load_projections_routes_by_topic(tmp_path):
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "projection.yaml").write_text(BASE)
    (tmp_path / "orders").mkdir()
    (tmp_path / "orders" / "projection.yaml").write_text(ORDERS.read_text())
    (tmp_path / "empty").mkdir()  # a connector without projection is fine
    routes = load_projections(tmp_path)
    assert sorted(routes) == ["orders.public.order_lines", "orders.public.orders", "shop.public.items"]
    assert routes["shop.public.items"].source_table == "public.items"


def test_load_projections_checks_folder_and_duplicates(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "projection.yaml").write_text(BASE)
    with pytest.raises(ProjectionError, match="service 'shop' does not match the service it is declared for \\('other'\\)"):
        load_projections(tmp_path)
    (tmp_path / "other" / "projection.yaml").unlink()
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "projection.yaml").write_text(BASE)
    (tmp_path / "zshop").mkdir()
    (tmp_path / "zshop" / "projection.yaml").write_text(
        BASE.replace("service: shop", "service: zshop").replace("public.items", "public.items2"))
    with pytest.raises(ProjectionError, match="target items_v1 is already fed by"):
        load_projections(tmp_path)


def test_real_connectors_folder_loads():
    routes = load_projections(REPO / "connectors")
    assert "orders.public.orders" in routes

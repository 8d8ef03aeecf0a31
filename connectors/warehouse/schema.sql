-- Generated from estate/warehouse.py by `python -m estate.schema_sql`: do not edit by hand.
-- The schema the local stack creates for the warehouse service (MariaDB; run by the mariadb client in database warehouse).
-- Idempotent: every statement can be run again. Edit the Python and regenerate.

CREATE TABLE IF NOT EXISTS bin_stock (
	sku VARCHAR(32) NOT NULL,
	site_code VARCHAR(16) NOT NULL,
	qty_on_hand INTEGER NOT NULL,
	qty_allocated INTEGER NOT NULL COMMENT 'units held by reservations',
	modified_on DATETIME(6) NOT NULL,
	PRIMARY KEY (sku, site_code)
)ENGINE=InnoDB CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS catalog_items (
	sku VARCHAR(32) NOT NULL,
	release_title VARCHAR(200) NOT NULL,
	artist_name VARCHAR(200) NOT NULL,
	format_code CHAR(2) NOT NULL COMMENT 'LP vinyl, CD, MC cassette, DL digital',
	price_cents INTEGER NOT NULL,
	currency_iso CHAR(3) NOT NULL COMMENT 'lower case',
	listed TINYINT(1) NOT NULL COMMENT '1 on sale, 0 withdrawn',
	supplier_cost_cents INTEGER COMMENT 'INTERNAL: purchase price',
	modified_on DATETIME(6) NOT NULL,
	PRIMARY KEY (sku)
)ENGINE=InnoDB CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS fulfilments (
	id BIGINT NOT NULL AUTO_INCREMENT,
	order_ref BIGINT NOT NULL,
	stage_code TINYINT NOT NULL COMMENT '1 picking, 2 packed, 3 shipped, 9 cancelled',
	carrier_code VARCHAR(32),
	tracking_ref VARCHAR(64),
	picker_id INTEGER COMMENT 'INTERNAL: employee who picked',
	picked_on DATETIME(6),
	packed_on DATETIME(6),
	shipped_on DATETIME(6),
	modified_on DATETIME(6) NOT NULL,
	PRIMARY KEY (id)
)ENGINE=InnoDB CHARSET=utf8mb4;

CREATE INDEX IF NOT EXISTS fulfilments_by_order ON fulfilments (order_ref);

CREATE TABLE IF NOT EXISTS reservations (
	id BIGINT NOT NULL AUTO_INCREMENT,
	order_ref BIGINT NOT NULL,
	sku VARCHAR(32) NOT NULL,
	site_code VARCHAR(16) NOT NULL,
	qty INTEGER NOT NULL,
	hold_state CHAR(1) NOT NULL COMMENT 'H held, R released, C consumed',
	created_on DATETIME(6) NOT NULL,
	modified_on DATETIME(6) NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT reservations_one_per_order_sku UNIQUE (order_ref, sku)
)ENGINE=InnoDB CHARSET=utf8mb4;

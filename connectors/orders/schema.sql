-- Generated from estate/orders.py by `python -m estate.schema_sql`: do not edit by hand.
-- The schema the local stack creates for the orders service (PostgreSQL; run by psql as orders_app in database orders).
-- Idempotent: every statement can be run again. Edit the Python and regenerate.

CREATE TABLE IF NOT EXISTS public.orders (
	id BIGSERIAL NOT NULL,
	customer_ref BIGINT NOT NULL,
	state_code SMALLINT NOT NULL,
	total_cents BIGINT NOT NULL,
	currency_iso CHAR(3) NOT NULL,
	created_ts TIMESTAMP WITH TIME ZONE NOT NULL,
	modified_ts TIMESTAMP WITH TIME ZONE NOT NULL,
	fraud_score NUMERIC(5, 4),
	internal_note TEXT,
	terms_snapshot TEXT NOT NULL,
	metadata JSONB,
	PRIMARY KEY (id)
);

COMMENT ON COLUMN public.orders.customer_ref IS 'customers.id in the customers service';

COMMENT ON COLUMN public.orders.state_code IS '10 placed, 20 paid, 30 packed, 40 shipped, 90 cancelled, 95 refunded';

COMMENT ON COLUMN public.orders.currency_iso IS 'lower case, e.g. eur';

COMMENT ON COLUMN public.orders.fraud_score IS 'INTERNAL';

COMMENT ON COLUMN public.orders.internal_note IS 'INTERNAL';

COMMENT ON COLUMN public.orders.terms_snapshot IS 'checkout terms (> 2 kB), stored out of line';

COMMENT ON COLUMN public.orders.metadata IS 'e.g. {"channel": "web", "utm": {...}}';

CREATE TABLE IF NOT EXISTS public.order_lines (
	order_id BIGINT NOT NULL,
	line_no SMALLINT NOT NULL,
	sku VARCHAR(32) NOT NULL,
	qty INTEGER NOT NULL,
	unit_price_cents BIGINT NOT NULL,
	discount_cents BIGINT DEFAULT 0 NOT NULL,
	PRIMARY KEY (order_id, line_no),
	FOREIGN KEY(order_id) REFERENCES public.orders (id) ON DELETE CASCADE
);

DO $$ BEGIN IF (SELECT attstorage FROM pg_attribute WHERE attrelid = 'public.orders'::regclass AND attname = 'terms_snapshot') <> 'e' THEN ALTER TABLE public.orders ALTER COLUMN terms_snapshot SET STORAGE EXTERNAL; END IF; END $$;

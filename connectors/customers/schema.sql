-- Generated from estate/customers.py by `python -m estate.schema_sql`: do not edit by hand.
-- The schema the local stack creates for the customers service (PostgreSQL; run by psql as customers_app in database customers).
-- Idempotent: every statement can be run again. Edit the Python and regenerate.

CREATE TABLE IF NOT EXISTS public.customers (
	id BIGSERIAL NOT NULL,
	email_address VARCHAR(254) NOT NULL,
	display_name VARCHAR(200),
	country_iso CHAR(2) NOT NULL,
	status_code CHAR(1) NOT NULL,
	password_hash TEXT,
	marketing_segment VARCHAR(32),
	signup_ts TIMESTAMP WITH TIME ZONE NOT NULL,
	verified_ts TIMESTAMP WITH TIME ZONE,
	erased_ts TIMESTAMP WITH TIME ZONE,
	modified_ts TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT customers_status_code_known CHECK (status_code IN ('P', 'V', 'E')),
	UNIQUE (email_address)
);

COMMENT ON COLUMN public.customers.country_iso IS 'ISO 3166 alpha-2, lower case';

COMMENT ON COLUMN public.customers.status_code IS 'P pending, V verified, E erased';

COMMENT ON COLUMN public.customers.password_hash IS 'INTERNAL secret: never leaves this database';

COMMENT ON COLUMN public.customers.marketing_segment IS 'INTERNAL profiling data';

CREATE TABLE IF NOT EXISTS public.addresses (
	id BIGSERIAL NOT NULL,
	customer_id BIGINT NOT NULL,
	kind CHAR(1) NOT NULL,
	line1 VARCHAR(200) NOT NULL,
	line2 VARCHAR(200),
	city VARCHAR(100) NOT NULL,
	postcode VARCHAR(16) NOT NULL,
	country_iso CHAR(2) NOT NULL,
	created_ts TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(customer_id) REFERENCES public.customers (id) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS addresses_by_customer ON public.addresses (customer_id);

COMMENT ON COLUMN public.addresses.kind IS 'S shipping, B billing';

CREATE TABLE IF NOT EXISTS public.pending_enrollments (
	customer_id BIGINT NOT NULL,
	verification_token VARCHAR(64) NOT NULL,
	expires_ts TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (customer_id),
	FOREIGN KEY(customer_id) REFERENCES public.customers (id) ON DELETE CASCADE
);

COMMENT ON COLUMN public.pending_enrollments.verification_token IS 'INTERNAL secret';

-- Generated from estate/payments.py by `python -m estate.schema_sql`: do not edit by hand.
-- The schema the local stack creates for the payments service (PostgreSQL; run by psql as payments_app in database payments).
-- Idempotent: every statement can be run again. Edit the Python and regenerate.

CREATE TABLE IF NOT EXISTS public.payments (
	id BIGSERIAL NOT NULL,
	order_ref BIGINT NOT NULL,
	state_code SMALLINT NOT NULL,
	amount_cents BIGINT NOT NULL,
	currency_iso CHAR(3) NOT NULL,
	refunded_cents BIGINT DEFAULT 0 NOT NULL,
	card_token VARCHAR(64),
	processor_response JSONB,
	authorised_ts TIMESTAMP WITH TIME ZONE NOT NULL,
	captured_ts TIMESTAMP WITH TIME ZONE,
	modified_ts TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT payments_refund_within_amount CHECK (refunded_cents >= 0 AND refunded_cents <= amount_cents)
);

CREATE INDEX IF NOT EXISTS payments_by_order ON public.payments (order_ref);

COMMENT ON COLUMN public.payments.order_ref IS 'orders.id in the orders service';

COMMENT ON COLUMN public.payments.state_code IS '1 authorised, 2 captured, 3 partially refunded, 4 refunded, 8 failed, 9 voided';

COMMENT ON COLUMN public.payments.currency_iso IS 'lower case';

COMMENT ON COLUMN public.payments.refunded_cents IS 'running total of refunds, updated with each refund';

COMMENT ON COLUMN public.payments.card_token IS 'INTERNAL secret: PSP card token';

COMMENT ON COLUMN public.payments.processor_response IS 'INTERNAL: raw PSP answer';

CREATE TABLE IF NOT EXISTS public.refunds (
	id BIGSERIAL NOT NULL,
	payment_id BIGINT NOT NULL,
	amount_cents BIGINT NOT NULL,
	reason_code VARCHAR(16) NOT NULL,
	processor_response JSONB,
	created_ts TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT refunds_amount_positive CHECK (amount_cents > 0),
	FOREIGN KEY(payment_id) REFERENCES public.payments (id)
);

CREATE INDEX IF NOT EXISTS refunds_by_payment ON public.refunds (payment_id);

COMMENT ON COLUMN public.refunds.reason_code IS 'return, cancel, goodwill, damaged';

COMMENT ON COLUMN public.refunds.processor_response IS 'INTERNAL';

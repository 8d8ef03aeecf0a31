"""The payments service's private PostgreSQL schema (database `payments`, schema `public`).

Contract payments_v1 is projected row by row from `payments`: id → payment_id, order_ref → order_id,
state_code (see `estate.domain.PaymentState`) → status, amount_cents / 100 → amount,
upper(currency_iso) → currency, refunded_cents / 100 → refunded_amount, authorised_ts → authorised_at,
captured_ts → captured_at, modified_ts → updated_at. `refunded_cents` is a running total kept in
the same transaction as each `refunds` row, so no aggregate over refunds is ever needed.

INTERNAL (excluded at the connector): payments.card_token, payments.processor_response,
refunds.processor_response.
"""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    MetaData,
    SmallInteger,
    String,
    Table,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

metadata = MetaData(schema="public")
TSTZ = TIMESTAMP(timezone=True)

payments = Table(
    "payments",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),  # BIGSERIAL
    Column("order_ref", BigInteger, nullable=False, comment="orders.id in the orders service"),
    Column("state_code", SmallInteger, nullable=False,
           comment="1 authorised, 2 captured, 3 partially refunded, 4 refunded, 8 failed, 9 voided"),
    Column("amount_cents", BigInteger, nullable=False),
    Column("currency_iso", CHAR(3), nullable=False, comment="lower case"),
    Column("refunded_cents", BigInteger, nullable=False, server_default=text("0"),
           comment="running total of refunds, updated with each refund"),
    Column("card_token", String(64), comment="INTERNAL secret: PSP card token"),
    Column("processor_response", JSONB, comment="INTERNAL: raw PSP answer"),
    Column("authorised_ts", TSTZ, nullable=False),
    Column("captured_ts", TSTZ),
    Column("modified_ts", TSTZ, nullable=False),
    CheckConstraint("refunded_cents >= 0 AND refunded_cents <= amount_cents", name="payments_refund_within_amount"),
    Index("payments_by_order", "order_ref"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("payment_id", BigInteger, ForeignKey("public.payments.id"), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("reason_code", String(16), nullable=False, comment="return, cancel, goodwill, damaged"),
    Column("processor_response", JSONB, comment="INTERNAL"),
    Column("created_ts", TSTZ, nullable=False),
    CheckConstraint("amount_cents > 0", name="refunds_amount_positive"),
    Index("refunds_by_payment", "payment_id"),
)

SECRET_COLUMNS = ("payments.card_token", "payments.processor_response", "refunds.processor_response")

"""The customers service's private PostgreSQL schema (database `customers`, schema `public`).

Contract customers_v1 is projected row by row from `customers`:
id → customer_id, email_address → email, display_name → full_name, upper(country_iso) → country_code,
status_code (P/V/E, see `estate.domain.CustomerStatus`) → status, signup_ts → registered_at,
verified_ts → verified_at.

INTERNAL (never captured: excluded at the connector): customers.password_hash,
customers.marketing_segment, pending_enrollments.verification_token.
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
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import TIMESTAMP

metadata = MetaData(schema="public")
TSTZ = TIMESTAMP(timezone=True)

customers = Table(
    "customers",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),  # BIGSERIAL
    Column("email_address", String(254), nullable=False, unique=True),
    Column("display_name", String(200)),
    Column("country_iso", CHAR(2), nullable=False, comment="ISO 3166 alpha-2, lower case"),
    Column("status_code", CHAR(1), nullable=False, comment="P pending, V verified, E erased"),
    Column("password_hash", Text, comment="INTERNAL secret: never leaves this database"),
    Column("marketing_segment", String(32), comment="INTERNAL profiling data"),
    Column("signup_ts", TSTZ, nullable=False),
    Column("verified_ts", TSTZ),
    Column("erased_ts", TSTZ),
    Column("modified_ts", TSTZ, nullable=False),
    CheckConstraint("status_code IN ('P', 'V', 'E')", name="customers_status_code_known"),
)

addresses = Table(
    "addresses",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("customer_id", BigInteger, ForeignKey("public.customers.id", ondelete="CASCADE"), nullable=False),
    Column("kind", CHAR(1), nullable=False, comment="S shipping, B billing"),
    Column("line1", String(200), nullable=False),
    Column("line2", String(200)),
    Column("city", String(100), nullable=False),
    Column("postcode", String(16), nullable=False),
    Column("country_iso", CHAR(2), nullable=False),
    Column("created_ts", TSTZ, nullable=False),
    Index("addresses_by_customer", "customer_id"),
)

pending_enrollments = Table(
    "pending_enrollments",
    metadata,
    Column("customer_id", BigInteger, ForeignKey("public.customers.id", ondelete="CASCADE"), primary_key=True),
    Column("verification_token", String(64), nullable=False, comment="INTERNAL secret"),
    Column("expires_ts", TSTZ, nullable=False),
)

SECRET_COLUMNS = ("customers.password_hash", "customers.marketing_segment", "pending_enrollments.verification_token")

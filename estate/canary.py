"""Canary secrets: unique values planted in the columns that must never leave their service.

`plant_canaries(urls)` registers a customer whose `password_hash` and an authorised payment whose
`card_token` carry a fresh random marker, each through the normal business flow (one transaction
per service). Tests then search every Kafka topic and the reporting database for the returned
values: finding one means a secret leaked past the connector's column.exclude.list or a projection.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from estate import fake, flows
from estate.db import connect_postgres
from estate.domain import OrderLine
from estate.fake import Person


@dataclass(frozen=True)
class Canaries:
    marker: str
    """The random part shared by both values (search for it to catch partial leaks too)."""
    password_hash: str
    card_token: str
    customer_id: int
    order_id: int
    payment_id: int

    @property
    def values(self) -> tuple[str, ...]:
        """Every string that must never be found outside its service database."""
        return (self.marker, self.password_hash, self.card_token)


def plant_canaries(urls: Mapping[str, str], marker: str | None = None) -> Canaries:
    """Write a unique canary into customers.password_hash and payments.card_token; return the values.

    A customer registers (password hash = canary), places a one-line order and the payment is
    authorised (card token = canary), through the normal flows, so every reference stays valid.
    The marker appears ONLY in secret columns (hash, card token, verification token, PSP response),
    never in a column the reporting contract carries. Uses the customers, orders and payments URLs.
    """
    marker = marker or f"canary{secrets.token_hex(12)}"
    password_hash = f"$argon2id$v=19$m=65536,t=3,p=4${marker}$pw"
    card_token = f"tok_{marker}"
    with connect_postgres(urls["customers"]) as customers:
        person = Person(email=f"canary.{secrets.token_hex(6)}@canary.example.com", display_name="Canary Customer",
                        country_iso="nl", city="Amsterdam", line1="1 Canary Wharf", postcode="1000",
                        marketing_segment=None)
        customer_id = flows.register_customer(customers, person, password_hash=password_hash,
                                              verification_token=f"{marker}-verify")
    with connect_postgres(urls["orders"]) as orders:
        order_id = flows.place_order(orders, customer_id, [OrderLine(fake.sku(0), 1, 1999)],
                                     terms=fake.terms_snapshot(fake.TERMS_VERSIONS[-1]), metadata={"channel": "web"})
    with connect_postgres(urls["payments"]) as payments:
        payment_id = flows.authorise_payment(
            payments, order_id, 1999, card_token=card_token,
            processor_response={"psp": "adyen-sim", "result": "Authorised", "card_token": card_token})
    return Canaries(marker, password_hash, card_token, customer_id, order_id, payment_id)

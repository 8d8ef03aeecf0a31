"""Deterministic, plausible MusicCorp data: people, records, the catalog and the checkout terms.

Pure: everything is a function of its arguments (an index or a `random.Random`), so a seed
always produces the same estate.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from estate.domain import MediaFormat

FIRST_NAMES = ("Ada", "Björn", "Chloé", "Dmitri", "Esther", "Farid", "Greta", "Hiro", "Inès", "Jonas",
               "Kemi", "Lars", "Maëlle", "Nikolai", "Olu", "Priya", "Quentin", "Rosa", "Sven", "Tariq",
               "Uma", "Vera", "Wim", "Xiu", "Yusuf", "Zoë")
LAST_NAMES = ("Andersen", "Bakker", "Costa", "Dubois", "Eriksson", "Fischer", "García", "Horvát", "Ivanova",
              "Jansen", "Kowalski", "Lambert", "Müller", "Nowak", "O'Brien", "Papadopoulos", "Quinn",
              "Rossi", "Silva", "Tanaka", "Ulrich", "Virtanen", "Weber", "Yılmaz", "Zieliński")
COUNTRIES = ("nl", "gb", "de", "fr", "be", "se", "es", "it", "pl", "ie", "dk", "us")
CITIES = ("Amsterdam", "London", "Berlin", "Paris", "Brussels", "Stockholm", "Madrid", "Rome", "Warsaw",
          "Dublin", "Copenhagen", "Seattle")
SEGMENTS = ("crate-digger", "casual", "collector", "gift-buyer", "audiophile", None)
CHANNELS = ("web", "web", "web", "app", "app", "marketplace", "store")
ARTIST_WORDS = ("Velvet", "Echo", "Northern", "Saturn", "Paper", "Midnight", "Copper", "Silent", "Neon", "Glass",
                "Wild", "Lunar", "Hollow", "Golden", "Static", "Crimson", "Ocean", "Desert", "Electric", "Honey")
ARTIST_NOUNS = ("Owls", "Machines", "Tides", "Sisters", "Collective", "Engine", "Orchestra", "Foxes", "Youth",
                "Ghosts", "Radio", "Choir", "Satellites", "Kids", "Parade")
TITLE_WORDS = ("Songs", "Nights", "Light", "Rivers", "Static", "Dreams", "Weather", "Gardens", "Signals", "Hearts",
               "Avenues", "Summer", "Winter", "Motion", "Silence", "Stories", "Colours", "Distance")
FORMAT_WEIGHTS = ((MediaFormat.VINYL, 5), (MediaFormat.CD, 3), (MediaFormat.CASSETTE, 1), (MediaFormat.DIGITAL, 2))
BASE_PRICE_CENTS = {MediaFormat.VINYL: 2499, MediaFormat.CD: 1299, MediaFormat.CASSETTE: 999,
                    MediaFormat.DIGITAL: 899}

TERMS_VERSIONS = ("2025-03", "2025-11", "2026-06")
_TERMS_CLAUSES = (
    "MusicCorp B.V. sells records, compact discs, cassettes and downloads to consumers in the EU, the UK and the US.",
    "Prices include VAT at the rate of the country of delivery; shipping costs are shown before you pay.",
    "You may withdraw from a purchase of physical goods within 14 days of delivery without giving a reason.",
    "Sealed audio recordings that you unseal after delivery cannot be returned unless they are defective.",
    "Downloads are delivered immediately; by starting the download you waive your right of withdrawal.",
    "We reserve stock when your payment is authorised and take payment when the order is handed to the carrier.",
    "Pre-orders are charged on release; if a release is delayed by more than 30 days you may cancel for free.",
    "Records are packed in rigid mailers; damage in transit is our risk until the parcel is delivered.",
    "Refunds go back to the original means of payment within 14 days of us receiving the returned goods.",
    "Personal data is processed as described in our privacy notice; you may ask us to erase it at any time.",
    "Disputes are governed by Dutch law without prejudice to the mandatory consumer law of your country.",
    "Limited editions are limited to one copy per customer; orders above that limit may be cancelled.",
)


def terms_snapshot(version: str) -> str:
    """The checkout terms accepted with an order: ~3 kB of text, one fixed text per terms version."""
    rng = random.Random(f"terms-{version}")
    clauses = list(_TERMS_CLAUSES)
    parts = [f"MusicCorp terms and conditions of sale, version {version}."]
    article = 1
    while sum(len(p) + 1 for p in parts) < 3000:
        rng.shuffle(clauses)
        for clause in clauses:
            parts.append(f"Article {article}. {clause}")
            article += 1
    return "\n".join(parts)


def sku(index: int) -> str:
    """Catalog SKU number `index` (stable across runs): MC-000042."""
    return f"MC-{index:06d}"


@dataclass(frozen=True)
class CatalogItem:
    sku: str
    title: str
    artist: str
    format: MediaFormat
    price_cents: int
    supplier_cost_cents: int


def catalog_item(index: int) -> CatalogItem:
    """The catalog entry for SKU `index`: the same record whatever the seed."""
    rng = random.Random(f"sku-{index}")
    fmt = rng.choices([f for f, _ in FORMAT_WEIGHTS], weights=[w for _, w in FORMAT_WEIGHTS])[0]
    price = BASE_PRICE_CENTS[fmt] + rng.randrange(0, 1500, 100)
    artist = f"The {rng.choice(ARTIST_WORDS)} {rng.choice(ARTIST_NOUNS)}"
    title = f"{rng.choice(TITLE_WORDS)} of {rng.choice(TITLE_WORDS)}"
    return CatalogItem(sku(index), title, artist, fmt, price, int(price * rng.uniform(0.35, 0.6)))


@dataclass(frozen=True)
class Person:
    email: str
    display_name: str
    country_iso: str
    city: str
    line1: str
    postcode: str
    marketing_segment: str | None


def person(rng: random.Random, serial: int, domain: str = "example.com") -> Person:
    """A new customer; `serial` makes the e-mail address unique among people made with the same domain."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    country = rng.choice(COUNTRIES)
    email = f"{_ascii(first)}.{_ascii(last)}.{serial}@{domain}".lower()
    return Person(email=email, display_name=f"{first} {last}", country_iso=country,
                  city=CITIES[COUNTRIES.index(country)], line1=f"{rng.randint(1, 300)} {rng.choice(TITLE_WORDS)} Street",
                  postcode=f"{rng.randint(1000, 99999)}", marketing_segment=rng.choice(SEGMENTS))


def _ascii(name: str) -> str:
    table = str.maketrans("öéëèüçığńłáíóÖ'", "oeeeucignlaioO-")
    return name.translate(table).replace(" ", "")


def fake_password_hash(rng: random.Random) -> str:
    """Something shaped like an argon2id hash (no real password behind it)."""
    return f"$argon2id$v=19$m=65536,t=3,p=4${rng.getrandbits(128):032x}${rng.getrandbits(256):064x}"


def fake_card_token(rng: random.Random) -> str:
    return f"tok_{rng.getrandbits(96):024x}"

"""Kafka client settings from the estate: brokers and security, as kafka-python keyword arguments."""

from __future__ import annotations

from typing import Any


def client_security(settings) -> dict[str, Any]:
    """kafka-python security arguments for the estate's `kafka.security` ({} for PLAINTEXT).

    kafka-python takes the SASL user and password as `sasl_plain_username/password` for PLAIN and
    SCRAM alike; the password is resolved from its reference now, never stored in the estate."""
    sec = settings.estate.kafka.security
    if sec.protocol == "PLAINTEXT":
        return {}
    out: dict[str, Any] = {"security_protocol": sec.protocol}
    if sec.sasl_mechanism:
        out["sasl_mechanism"] = sec.sasl_mechanism
        out["sasl_plain_username"] = sec.username
        out["sasl_plain_password"] = settings.secret(sec.password, "kafka.security.password")
    if sec.ca_file:
        out["ssl_cafile"] = str(sec.ca_file)
    return out


def client_config(settings) -> dict[str, Any]:
    """`bootstrap_servers` plus security: what every KafkaConsumer/Producer/AdminClient is given."""
    return {"bootstrap_servers": list(settings.estate.kafka.bootstrap_servers), **client_security(settings)}


def as_client_kwargs(client: str | dict[str, Any]) -> dict[str, Any]:
    """A bootstrap string (tests, the local stack) or a `client_config` dict → client keyword arguments."""
    return dict(client) if isinstance(client, dict) else {"bootstrap_servers": client}


class KafkaUnavailable(RuntimeError):
    """Kafka could not be reached or refused our credentials; the message names brokers and login."""


def bootstrap_error(settings, exc: BaseException) -> KafkaUnavailable:
    """One readable line for a client that could not bootstrap (kafka-python retries an authentication
    failure until its bootstrap timeout, then reports only a timeout)."""
    sec = settings.estate.kafka.security
    servers = settings.estate.kafka.bootstrap
    if sec.protocol.startswith("SASL_"):
        login = (f"SASL {sec.sasl_mechanism} authentication as {sec.username!r} failed or the brokers are down "
                 f"(check kafka.security.password: {sec.password.describe() if sec.password else 'not set'})")
    else:
        login = "the brokers are down or not reachable from here (plaintext; is kafka.security needed?)"
    return KafkaUnavailable(f"Kafka {servers}: {login}; {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")

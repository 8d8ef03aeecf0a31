"""Kafka Connect: connector specs from the estate (render, pure) and the REST client (client)."""

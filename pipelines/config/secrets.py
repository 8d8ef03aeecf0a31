"""Secret references → values, at the moment a connection is made.

An `env` reference is looked up in the environment captured when the configuration was built, then
in the estate's `env_file` (a dotenv file, read when needed: `reporting stack up` may have just
written it). A `file` reference reads the whole file, which must not end with a newline (Kafka
Connect's DirectoryConfigProvider would keep it). A missing secret is one
readable line naming the key of the estate file and where it looked.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pipelines.config.model import SecretRef


class SecretError(LookupError):
    """A secret reference that does not resolve."""


def read_env_file(path: Path | None) -> dict[str, str]:
    """`KEY=value` lines of a dotenv file (comments and blank lines skipped); {} when absent."""
    if path is None or not path.exists():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            values[k.strip().removeprefix("export ").strip()] = v.strip().strip("'\"")
    return values


class SecretResolver:
    def __init__(self, environ: Mapping[str, str], env_file: Path | None) -> None:
        self._environ = dict(environ)
        self.env_file = env_file

    def get(self, ref: SecretRef, key: str) -> str:
        """The value of `ref`; `key` is where it is declared (e.g. services.orders.reader.password)."""
        if ref.env:
            if ref.env in self._environ:
                return self._environ[ref.env]
            from_file = read_env_file(self.env_file)
            if ref.env in from_file:
                return from_file[ref.env]
            also = f" nor in {self.env_file}" if self.env_file else ""
            raise SecretError(f"{key}: environment variable {ref.env} is not set{also}")
        assert ref.file is not None
        try:
            value = ref.file.read_text()
        except OSError as exc:
            raise SecretError(f"{key}: cannot read secret file {ref.file}: {exc.strerror or exc}") from exc
        if value.endswith(("\n", "\r")):
            # Kafka Connect's DirectoryConfigProvider reads the file as it is: a newline would become
            # part of the connector's password, so refuse it here rather than fail differently there
            raise SecretError(f"{key}: secret file {ref.file} ends with a newline, which Kafka Connect would read "
                              "as part of the secret; write it without one (printf '%s' ...)")
        return value

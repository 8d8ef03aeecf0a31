"""`reporting bi superset install | up | down | status`: Superset's web server (gunicorn, one worker) from
its own venv.

`install` (also the first step of `up`): install the venv from the lock if needed (`venv.ensure_venv`),
generate the secrets and superset_config.py, initialise the metadata database once (`superset db upgrade`,
`superset init`, the admin user). `up` then starts gunicorn on the estate's host:port with a pid file, waits
until `/health` answers, and provisions the database connection, datasets and dashboards (`provision`).
Everything is local: no example data, no network at run time. `down` stops exactly the process of the pid
file and its children.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines.settings import Settings
from pipelines.stack import proc
from pipelines.stack.errors import StackError
from pipelines.superset import config as cfg
from pipelines.superset.api import SupersetApi
from pipelines.superset.provision import Provisioned, provision, sqlalchemy_uri
from pipelines.superset.venv import ensure_venv, lock_hash, superset_bin, venv_dir

START_TIMEOUT_S = 300

ADMIN_SCRIPT = """
import os
from superset.app import create_app

app = create_app()
with app.app_context():
    from superset.extensions import db, security_manager as sm
    name, password = os.environ["SUPERSET_ADMIN_USER"], os.environ["SUPERSET_ADMIN_PASSWORD"]
    user = sm.find_user(username=name)
    if user is None:
        if not sm.add_user(name, "Reporting", "Admin", name + "@localhost", sm.find_role("Admin"), password=password):
            raise SystemExit("could not create the admin user " + name)
        print("admin user created:", name)
    else:
        sm.reset_password(user.id, password)
        print("admin user password set:", name)
    db.session.commit()
"""


@dataclass(frozen=True)
class SupersetStatus:
    running: bool
    pid: int | None
    url: str
    healthy: bool
    rss_mb: float
    processes: int


def _env(settings: Settings) -> dict[str, str]:
    return cfg.process_env(settings, cfg.ensure_secrets(settings)[cfg.SECRET_KEY_ENV])


def _initialise(settings: Settings, env: dict[str, str], say: Callable[[str], None]) -> None:
    """Metadata DB schema, roles and permissions, admin user: once per venv (lock) version.

    `superset db upgrade` + `superset init` take one to two minutes on 2 cores; their result (no user, no
    secret) is kept beside the venv as a template, so a fresh state folder on the same machine copies it and
    only runs the quick admin step."""
    paths = cfg.paths(settings)
    venv = venv_dir(settings)
    stamp = hashlib.sha256((lock_hash() + cfg.render_config(Path("/"))).encode()).hexdigest()
    if paths.initialised.exists() and paths.initialised.read_text().strip() == stamp:
        return
    started = time.monotonic()
    template = venv / f"superset-metadata-{stamp[:16]}.db"
    if template.exists() and not paths.metadata_db.exists():
        say(f"superset: metadata database from the template {template.name} (initialised before on this machine)")
        shutil.copyfile(template, paths.metadata_db)
    else:
        say(f"superset: initialising the metadata database {paths.metadata_db} (superset db upgrade)")
        proc.run([superset_bin(venv), "db", "upgrade"], "superset db upgrade", env=env, timeout=900)
        say("superset: superset init (roles and permissions)")
        proc.run([superset_bin(venv), "init"], "superset init", env=env, timeout=900)
        if not template.exists():
            shutil.copyfile(paths.metadata_db, template.with_suffix(".tmp"))
            template.with_suffix(".tmp").replace(template)
    say("superset: admin user")
    set_admin(settings, env)
    paths.initialised.write_text(stamp + "\n")
    say(f"superset: initialised in {time.monotonic() - started:.0f}s")


def set_admin(settings: Settings, env: dict[str, str]) -> None:
    """Create the admin user, or reset its password to the one in the env_file (passed in the environment
    of this one process, never on a command line)."""
    admin_env = {**env, "SUPERSET_ADMIN_USER": cfg.superset_section(settings).admin_user,
                 "SUPERSET_ADMIN_PASSWORD": cfg.admin_password(settings)}
    proc.run([str(venv_dir(settings) / "bin" / "python"), "-c", ADMIN_SCRIPT], "superset: admin user",
             env=admin_env, timeout=300)


def _healthy(url: str) -> bool:
    import requests

    with contextlib.suppress(requests.RequestException):
        r = requests.get(f"{url}/health", timeout=3)
        return r.status_code == 200 and r.text.strip() == "OK"
    return False


def login(settings: Settings) -> SupersetApi:
    """The admin's API session (after `up`)."""
    return SupersetApi(cfg.url(settings)).login(cfg.superset_section(settings).admin_user, cfg.admin_password(settings))


def install(settings: Settings, say: Callable[[str], None] = print) -> dict[str, str]:
    """Everything `up` needs before it starts the server: the venv, the secrets, superset_config.py and the
    metadata database with the admin user. Idempotent; returns the server's environment. Run on its own
    (`reporting bi superset install`) it takes the minutes of a first start out of the first `up`."""
    ensure_venv(settings, say=say)
    cfg.write_config(settings)
    env = _env(settings)
    _initialise(settings, env, say)
    return env


def up(settings: Settings, say: Callable[[str], None] = print, provision_dashboards: bool = True) -> Provisioned | None:
    sqlalchemy_uri(settings)  # the PostgreSQL backend and its BI password, before anything is installed
    section = cfg.superset_section(settings)
    paths = cfg.paths(settings)
    url = cfg.url(settings)
    pid = proc.live_pid(paths.pid_file)
    if pid is None:
        env = install(settings, say=say)
        started = time.monotonic()
        proc.ensure_port_free("superset", section.host, cfg.port(settings))
        cmd = [superset_bin(venv_dir(settings), "gunicorn"), "--bind", f"{section.host}:{cfg.port(settings)}",
               "--workers", "1", "--worker-class", "gthread", "--threads", "8", "--timeout", "120",
               "--limit-request-line", "0", "--limit-request-field_size", "0", "--access-logfile", "-",
               "--error-logfile", "-", "superset.app:create_app()"]
        say(f"superset: starting gunicorn on {url} (log {paths.log})")
        pid = proc.spawn(cmd, paths.log, paths.pid_file, env=env, cwd=paths.home)
        try:
            proc.wait_until("superset", lambda: _healthy(url), START_TIMEOUT_S, log=paths.log,
                            alive=lambda: proc.pid_alive(pid), interval=1.0)
        except BaseException:
            down(settings, say=lambda _m: None)
            raise
        say(f"superset: up in {time.monotonic() - started:.0f}s (pid {pid})")
    else:
        say(f"superset: already running (pid {pid}) on {url}")
    result = None
    if provision_dashboards:
        try:
            api = login(settings)
        except StackError:  # the env_file's password changed since the user was created
            set_admin(settings, _env(settings))
            api = login(settings)
        result = provision(settings, api, cfg.dashboards_dir(settings), say=say)
    say(f"superset: {url}/  user {section.admin_user}, password {cfg.ADMIN_PASSWORD_ENV} in "
        f"{settings.secrets_file}")
    return result


def _tree(pid: int) -> list:
    import psutil

    with contextlib.suppress(psutil.Error):
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    return []


def down(settings: Settings, say: Callable[[str], None] = print) -> bool:
    """Stop gunicorn (the pid file's process) and its workers. True if it was running."""

    paths = cfg.paths(settings)
    stopped = proc.stop_pid_tree(paths.pid_file, "superset", timeout=30)
    say("superset stopped" if stopped else "superset was not running")
    return stopped


def status(settings: Settings) -> SupersetStatus:
    import psutil

    paths = cfg.paths(settings)
    url = cfg.url(settings)
    pid = proc.live_pid(paths.pid_file)
    rss, count = 0, 0
    if pid is not None:
        for p in _tree(pid):
            with contextlib.suppress(psutil.Error):
                rss += p.memory_info().rss
                count += 1
    return SupersetStatus(pid is not None, pid, url, pid is not None and _healthy(url), rss / 2**20, count)

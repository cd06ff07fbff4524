"""Shared fixtures: a real Rasa + action server stack on free loopback ports.

Starting Rasa takes tens of seconds, so the stack is session-scoped and
shared by every test that needs it (`rasa_stack`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator

import pytest

from launcher.supervisor import free_port  # noqa: F401  (re-exported for tests)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")


@dataclass
class RasaStack:
    """Addresses and secrets of a running test stack."""

    url: str
    actions_url: str
    reminders_url: str
    token: str
    var_dir: Path
    env: Dict[str, str]

    @property
    def rest(self) -> str:
        return f"{self.url}/webhooks/rest/webhook"


@pytest.fixture(scope="session")
def rasa_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RasaStack]:
    """Rasa (trained model of the current inputs), the action server, the
    knowledge base and the reminders service, on free loopback ports, with
    their data in a temporary var/ folder (the knowledge-base index cache,
    keyed by content and model, is shared)."""
    from launcher.model import latest_model
    from launcher.processes import Ports, base_environment, stack
    from launcher.supervisor import Supervisor

    model = latest_model()
    if model is None:
        pytest.fail("No trained model for the current inputs: run `make train` (make test does).")
    var_dir = tmp_path_factory.mktemp("var")
    ports = Ports.free()
    secrets = {"RASA_AUTH_TOKEN": "test-token", "REMINDERS_API_TOKEN": "test-reminders-token"}
    specs = [s for s in stack(model, ports, secrets, var_dir) if s.name in ("actions", "knowledge_base", "reminders", "rasa")]
    env = base_environment(ports, secrets, var_dir)
    with Supervisor(specs, env, var_dir / "log"):
        yield RasaStack(
            url=f"http://127.0.0.1:{ports.rasa}",
            actions_url=f"http://127.0.0.1:{ports.actions}",
            reminders_url=f"http://127.0.0.1:{ports.reminders}",
            token=secrets["RASA_AUTH_TOKEN"],
            var_dir=var_dir,
            env=env,
        )


@dataclass
class TestEngines:
    """The scale-out engines (PostgreSQL and Redis) and a way to get a scratch database."""

    engines: "object"   # launcher.engines.Engines
    local_postgres: "object"  # launcher.engines.LocalPostgres, or None for an external server
    created: "list" = None

    def drop_created(self) -> None:
        """Drop the scratch databases (FORCE: a test may leave a connection open)."""
        import psycopg2

        pg = self.engines.postgres
        conn = psycopg2.connect(host=pg.host, port=pg.port, user=pg.user, password=pg.password, dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            for name in self.created or []:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()

    def fresh_database(self, prefix: str = "test") -> str:
        """Create an empty database with a unique name; its SQLAlchemy URL."""
        import secrets as _secrets

        from launcher.engines import create_databases

        name = f"{prefix}_{_secrets.token_hex(4)}"
        create_databases(self.engines.postgres, (name,))
        self.created = [*(self.created or []), name]
        return self.engines.postgres.url(name)


@pytest.fixture(scope="session")
def engines() -> Iterator[TestEngines]:
    """PostgreSQL and Redis for the scale-out tests: those of `make engines-up`
    (var/, the default ports) when running, else started here and stopped after.
    Tests use scratch databases, never the cluster's own. Skipped, with the
    reason printed, when neither the servers nor Debian's packages are there."""
    from launcher.engines import (ENGINE_SECRETS, LocalPostgres, ensure_engines, missing_engines,
                                  missing_message, stop_engines)
    from launcher.processes import ROOT
    from launcher.secrets_file import ensure_secrets

    missing = missing_engines()
    if missing:
        pytest.skip(f"{missing_message(missing)}; .ci/run installs them")
    var_dir = ROOT / "var"
    secrets = ensure_secrets(var_dir / "secrets.env", ENGINE_SECRETS)
    found = ensure_engines(var_dir, secrets)
    local = None if os.environ.get("CLUSTER_POSTGRES_URL") else LocalPostgres(var_dir, secrets["POSTGRES_PASSWORD"])
    handle = TestEngines(found, local)
    try:
        yield handle
    finally:
        handle.drop_created()
        stop_engines(found)

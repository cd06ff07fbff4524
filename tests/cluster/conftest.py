"""The scale-out stack for tests: `make run-cluster`'s processes on free ports,
on scratch databases of the `engines` fixture (PostgreSQL and Redis)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from launcher.cluster import ClusterLayout, cluster_supervisor
from launcher.supervisor import Supervisor

TOKEN = "cluster-test-token"


@dataclass
class Cluster:
    """A running cluster: its front door, its processes and its databases."""

    layout: ClusterLayout
    supervisor: Supervisor
    rasa_db_url: str
    reminders_db_url: str
    var_dir: Path
    token: str = TOKEN

    @property
    def front(self) -> str:
        return f"http://127.0.0.1:{self.layout.front.rasa}"

    @property
    def rest(self) -> str:
        return f"{self.front}/webhooks/rest/webhook"

    def upstream_name(self, served_by: str) -> str:
        """'rasa-1' for the X-Served-By address of the first Rasa server."""
        port = int(served_by.rsplit(":", 1)[1])
        return f"rasa-{self.layout.rasa.index(port) + 1}"


@pytest.fixture(scope="session")
def cluster(engines, tmp_path_factory) -> Iterator[Cluster]:
    from launcher.cluster import nginx_binary
    from launcher.model import latest_model

    try:
        nginx_binary()
    except FileNotFoundError as error:
        pytest.skip(f"scale-out chat tests: {error} (.ci/run installs it)")
    model = latest_model()
    if model is None:
        pytest.fail("No trained model for the current inputs: run `make train` (make test does).")
    rasa_url = engines.fresh_database("rasa_test")
    reminders_url = engines.fresh_database("reminders_test")
    scratch = dataclasses.replace(engines.engines, rasa_db=rasa_url.rsplit("/", 1)[1],
                                  reminders_db=reminders_url.rsplit("/", 1)[1])
    var_dir = tmp_path_factory.mktemp("cluster")
    secrets = {"RASA_AUTH_TOKEN": TOKEN, "REMINDERS_API_TOKEN": "cluster-reminders-token",
               "POSTGRES_PASSWORD": scratch.postgres.password, "REDIS_PASSWORD": scratch.redis.password}
    layout = ClusterLayout.free(replicas=2)
    supervisor = cluster_supervisor(model, layout, secrets, var_dir, scratch)
    with supervisor:
        yield Cluster(layout, supervisor, rasa_url, reminders_url, var_dir)

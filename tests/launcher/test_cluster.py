"""Scale-out layout as data: the front door's configuration and the engines' addresses."""
import shutil
import subprocess

import pytest

from launcher.cluster import ClusterLayout, cluster_stack, nginx_config
from launcher.engines import Engines, PostgresAddress, RedisAddress
from launcher.processes import Ports


def test_default_layout_puts_replicas_beside_the_front_ports():
    layout = ClusterLayout.default(replicas=3)
    assert layout.front == Ports()
    assert layout.rasa == (5105, 5205, 5305)
    assert layout.reminders == (8102, 8202, 8302)


def test_nginx_config_names_every_replica_and_routes_rasa_by_sender(tmp_path):
    layout = ClusterLayout.default(replicas=2)
    text = nginx_config(layout, tmp_path)
    assert "@" not in text.split("http {", 1)[1].replace("\"", "")  # every placeholder filled
    for port in layout.rasa + layout.actions + layout.knowledge_base + layout.reminders:
        assert f"server 127.0.0.1:{port} " in text
    rasa_block = text.split("upstream rasa {", 1)[1].split("}", 1)[0]
    assert "hash $path_sender$arg_sender$body_sender consistent;" in rasa_block
    assert f"listen 127.0.0.1:{layout.front.rasa};" in text


@pytest.mark.skipif(not shutil.which("nginx") and not shutil.which("/usr/sbin/nginx"),
                    reason="nginx is not installed (apt-get install nginx; .ci/run installs it)")
def test_nginx_accepts_the_generated_config(tmp_path):
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_config(ClusterLayout.default(), tmp_path))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    result = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_addresses_from_urls_and_the_environment_they_give():
    pg = PostgresAddress.from_url("postgresql://app:s%40cret@db.internal:5433")
    assert (pg.host, pg.port, pg.user) == ("db.internal", 5433, "app")
    assert pg.url("rasa").endswith("@db.internal:5433/rasa")
    engines = Engines(pg, RedisAddress.from_url("redis://:pw@cache:6380"), [], reminders_db="r2")
    env = engines.environment()
    assert env["REDIS_PORT"] == "6380" and env["DATABASE_URL"].endswith("/r2") and env["POSTGRES_PORT"] == "5433"


def test_cluster_replicas_are_named_and_share_the_reminders_database(tmp_path):
    layout = ClusterLayout.default(replicas=2)
    engines = Engines(PostgresAddress("127.0.0.1", 1, "u", "p"), RedisAddress("127.0.0.1", 2, "p"), [])
    specs = cluster_stack(tmp_path / "model.tar.gz", layout, {"RASA_AUTH_TOKEN": "t"}, tmp_path, engines)
    names = [s.name for s in specs]
    assert names[0] == "nginx" and names[-2:] == ["rasa-1", "rasa-2"]
    reminders = [s for s in specs if s.name.startswith("reminders-")]
    assert {s.env["DATABASE_URL"] for s in reminders} == {engines.postgres.url("reminders")}
    assert {s.env["REMINDERS_WORKER_ID"] for s in reminders} == {"reminders-1", "reminders-2"}
    assert all("bot/endpoints.cluster.yml" in s.argv for s in specs if s.name.startswith("rasa-"))

"""Scale-out mode as data: the same processes as `make run`, in replicas.

Layout on one machine (`make run-cluster`); on several machines each line
is a host and the front door's upstream lists name them:

    nginx (front door, the single-machine ports)
      ├─ Rasa ×N            routed by sender id; trackers in PostgreSQL, locks in Redis
      ├─ action server ×N   stateless
      ├─ knowledge base ×N  stateless (each reads the built index)
      └─ reminders ×N       one API + sweep worker each, sharing PostgreSQL
    hotline console ×1      staff sessions and tickets in its own SQLite file
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Sequence, Tuple

from launcher.engines import Engines
from launcher.processes import (
    Ports,
    ProcessSpec,
    actions_spec,
    base_environment,
    free_port,
    hotline_spec,
    knowledge_base_spec,
    rasa_spec,
    reminders_spec,
)
from launcher.supervisor import Supervisor

TEMPLATE = Path(__file__).with_name("nginx.conf.template")
FRONT_HEALTH = "/nginx-health"
LOCK_LIFETIME_SECONDS = "20"


@dataclass(frozen=True)
class ClusterLayout:
    """The front door's ports (those of the single stack) and each replica's port."""

    front: Ports
    rasa: Tuple[int, ...]
    actions: Tuple[int, ...]
    knowledge_base: Tuple[int, ...]
    reminders: Tuple[int, ...]

    @classmethod
    def default(cls, replicas: int = 2, front: Ports = Ports()) -> "ClusterLayout":
        """Replica i of a service listens on its front port + 100 * (i + 1)."""
        def ports(base: int) -> Tuple[int, ...]:
            return tuple(base + 100 * (i + 1) for i in range(replicas))
        return cls(front, ports(front.rasa), ports(front.actions), ports(front.knowledge_base),
                   ports(front.reminders))

    @classmethod
    def free(cls, replicas: int = 2) -> "ClusterLayout":
        """Every port free right now (tests and benchmarks run beside other stacks)."""
        def ports() -> Tuple[int, ...]:
            return tuple(free_port() for _ in range(replicas))
        front = Ports.free()
        return cls(front, ports(), ports(), ports(), ports())


def _servers(ports: Sequence[int]) -> str:
    # A server that refuses a connection is skipped for 5 s, then tried again.
    return "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in ports)


def nginx_config(layout: ClusterLayout, prefix: Path) -> str:
    """The front door's configuration, from launcher/nginx.conf.template."""
    values = {
        "PREFIX": str(prefix),
        "RASA_SERVERS": _servers(layout.rasa),
        "ACTIONS_SERVERS": _servers(layout.actions),
        "KNOWLEDGE_BASE_SERVERS": _servers(layout.knowledge_base),
        "REMINDERS_SERVERS": _servers(layout.reminders),
        "RASA_PORT": str(layout.front.rasa),
        "ACTIONS_PORT": str(layout.front.actions),
        "KNOWLEDGE_BASE_PORT": str(layout.front.knowledge_base),
        "REMINDERS_PORT": str(layout.front.reminders),
        "FRONT_HEALTH": FRONT_HEALTH,
    }
    text = TEMPLATE.read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    if re.search(r"@[A-Z_]+@", text):
        raise ValueError("nginx.conf.template has a placeholder launcher/cluster.py does not fill")
    return text


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        raise FileNotFoundError("nginx is not installed: apt-get install nginx")
    return found


def nginx_spec(layout: ClusterLayout, var_dir: Path) -> ProcessSpec:
    """Write the configuration and describe the nginx process (in the foreground)."""
    prefix = (var_dir / "cluster" / "nginx").resolve()
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_config(layout, prefix), encoding="utf-8")
    return ProcessSpec(
        name="nginx",
        argv=[nginx_binary(), "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
        health_url=f"http://127.0.0.1:{layout.front.rasa}{FRONT_HEALTH}",
        start_timeout=20.0,
    )


def cluster_environment(layout: ClusterLayout, secrets: Mapping[str, str], var_dir: Path,
                        engines: Engines) -> Dict[str, str]:
    """What every process of the cluster sees: the front door's addresses and the engines."""
    return {
        **base_environment(layout.front, secrets, var_dir),
        **engines.environment(),
        # A Rasa server killed mid-turn leaves its conversation's Redis lock behind: the
        # conversation, moved to another server, waits until the lock expires. Rasa's default
        # is 60 s; a turn here takes well under a second (each action call times out at 5 s).
        "TICKET_LOCK_LIFETIME": LOCK_LIFETIME_SECONDS,
    }


def cluster_stack(model: Path, layout: ClusterLayout, secrets: Mapping[str, str], var_dir: Path,
                  engines: Engines) -> List[ProcessSpec]:
    """Every process of the cluster in start order (the engines run already).

    The front door comes first: services reach each other through it.
    """
    front = layout.front
    public_reminders = f"http://127.0.0.1:{front.reminders}"
    database_url = engines.postgres.url(engines.reminders_db)
    specs: List[ProcessSpec] = [nginx_spec(layout, var_dir)]
    specs += [actions_spec(p, f"actions-{i + 1}") for i, p in enumerate(layout.actions)]
    specs += [knowledge_base_spec(p, f"knowledge_base-{i + 1}") for i, p in enumerate(layout.knowledge_base)]
    specs += [reminders_spec(p, database_url, public_reminders, f"reminders-{i + 1}",
                             env={"REMINDERS_WORKER_ID": f"reminders-{i + 1}"})
              for i, p in enumerate(layout.reminders)]
    specs.append(hotline_spec(front.hotline))
    specs += [rasa_spec(model, p, secrets, f"rasa-{i + 1}", endpoints="bot/endpoints.cluster.yml",
                        public_port=front.rasa)
              for i, p in enumerate(layout.rasa)]
    for spec in specs[1:]:
        spec.urls.clear()  # replicas: `python -m launcher run-cluster` prints the front addresses
    return specs


def front_urls(layout: ClusterLayout) -> Dict[str, str]:
    """What a user of the cluster connects to."""
    front = layout.front
    return {
        "web chat": f"http://127.0.0.1:{front.rasa}/webhooks/webchat/chat",
        "REST webhook": f"http://127.0.0.1:{front.rasa}/webhooks/rest/webhook",
        "Rasa HTTP API (token)": f"http://127.0.0.1:{front.rasa}/status",
        "reminders API": f"http://127.0.0.1:{front.reminders}/openapi.json",
        "knowledge base": f"http://127.0.0.1:{front.knowledge_base}/health",
        "hotline console": f"http://127.0.0.1:{front.hotline}/",
    }


def cluster_supervisor(model: Path, layout: ClusterLayout, secrets: Mapping[str, str], var_dir: Path,
                       engines: Engines, echo=None) -> Supervisor:
    """A Supervisor for the whole cluster (not started yet): `make run-cluster`, tests, benchmarks."""
    specs = cluster_stack(model, layout, secrets, var_dir, engines)
    env = cluster_environment(layout, secrets, var_dir, engines)
    return Supervisor(specs, env, var_dir / "log", echo=echo)

"""The processes of the single-machine stack, as data.

`make run` and the end-to-end tests start the same specs, so what is tested
is what users run.
"""
from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Dict, List, Mapping, Optional

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (for tests and benchmarks)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Ports:
    """Loopback ports of each process."""

    rasa: int = 5005
    actions: int = 5055
    knowledge_base: int = 8001
    reminders: int = 8002
    hotline: int = 8003

    @classmethod
    def free(cls, **fixed: int) -> "Ports":
        """Every port free right now, except those given (stacks beside other stacks)."""
        return cls(**{f.name: fixed.get(f.name) or free_port() for f in fields(cls)})


@dataclass(frozen=True)
class ProcessSpec:
    """How to start one process and how to tell it is up."""

    name: str
    argv: List[str]
    health_url: str
    env: Dict[str, str] = field(default_factory=dict)
    # Rasa loads TensorFlow and the model: allow it time.
    start_timeout: float = 120.0
    urls: Dict[str, str] = field(default_factory=dict)


def base_environment(ports: Ports, secrets: Mapping[str, str], var_dir: Path) -> Dict[str, str]:
    """Environment shared by every process: offline, telemetry off, addresses."""
    env = {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "SANIC_HOST": "127.0.0.1",
        "PYTHONPATH": str(ROOT),
        "RASA_URL": f"http://127.0.0.1:{ports.rasa}",
        "KB_URL": f"http://127.0.0.1:{ports.knowledge_base}",
        "REMINDERS_URL": f"http://127.0.0.1:{ports.reminders}",
        "HOTLINE_URL": f"http://127.0.0.1:{ports.hotline}",
        "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{ports.actions}/webhook",
        "RASA_TRACKER_DB": str(var_dir / "rasa_tracker.db"),
        "WEBCHAT_OUTBOX": str(var_dir / "webchat_outbox.db"),
        "VAR_DIR": str(var_dir),
    }
    env.update(secrets)
    return env


def _local(port: int, path: str = "") -> str:
    return f"http://127.0.0.1:{port}{path}"


def actions_spec(port: int, name: str = "actions") -> ProcessSpec:
    """The Rasa action server (stateless: replicas may run side by side)."""
    return ProcessSpec(
        name=name,
        argv=[str(BIN / "rasa"), "run", "actions", "--actions", "bot.actions", "--port", str(port)],
        health_url=_local(port, "/health"),
        urls={"action server": _local(port, "/health")},
    )


def knowledge_base_spec(port: int, name: str = "knowledge_base") -> ProcessSpec:
    """The knowledge-base search service (stateless; reads the built index)."""
    return ProcessSpec(
        name=name,
        argv=[sys.executable, "-m", "knowledge_base", "serve", "--port", str(port)],
        health_url=_local(port, "/health"),
        # The first start embeds every guidance entry (cached afterwards).
        start_timeout=300.0,
        urls={"knowledge base": _local(port, "/health")},
    )


def reminders_spec(port: int, database_url: str, public_url: str, name: str = "reminders",
                   env: Optional[Mapping[str, str]] = None) -> ProcessSpec:
    """The reminders API and its sweep worker."""
    return ProcessSpec(
        name=name,
        argv=[sys.executable, "-m", "reminders", "serve", "--port", str(port)],
        health_url=_local(port, "/health"),
        env={"DATABASE_URL": database_url, "REMINDERS_PUBLIC_URL": public_url, **(env or {})},
        urls={"reminders API": public_url + "/openapi.json"},
    )


def hotline_spec(port: int) -> ProcessSpec:
    """The hotline staff console (one instance: its store is a local SQLite file)."""
    return ProcessSpec(
        name="hotline",
        argv=[sys.executable, "-m", "hotline", "serve", "--port", str(port)],
        health_url=_local(port, "/health"),
        env={"HOTLINE_PUBLIC_URL": _local(port)},
        urls={"hotline console": _local(port, "/")},
    )


def rasa_spec(model: Path, port: int, secrets: Mapping[str, str], name: str = "rasa",
              endpoints: str = "bot/endpoints.yml", public_port: Optional[int] = None) -> ProcessSpec:
    """A Rasa server: REST and push-capable channels, HTTP API behind the token."""
    public = public_port or port
    return ProcessSpec(
        name=name,
        argv=[
            str(BIN / "rasa"), "run",
            "--model", str(model),
            "--enable-api",
            "--auth-token", secrets["RASA_AUTH_TOKEN"],
            "--credentials", "bot/credentials.yml",
            "--endpoints", endpoints,
            "--interface", "127.0.0.1",
            "--port", str(port),
        ],
        health_url=_local(port, "/"),
        start_timeout=240.0,
        urls={
            "web chat": _local(public, "/webhooks/webchat/chat"),
            "REST webhook": _local(public, "/webhooks/rest/webhook"),
            "Rasa HTTP API (token)": _local(public, "/status"),
        },
    )


def stack(model: Path, ports: Ports, secrets: Mapping[str, str], var_dir: Path) -> List[ProcessSpec]:
    """Every process of the stack, in start order; each keeps its data in var_dir.

    The services come before Rasa so the first conversation finds them up.
    """
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{var_dir / 'reminders.db'}"
    return [
        actions_spec(ports.actions),
        knowledge_base_spec(ports.knowledge_base),
        reminders_spec(ports.reminders, database_url, _local(ports.reminders)),
        hotline_spec(ports.hotline),
        rasa_spec(model, ports.rasa, secrets),
    ]

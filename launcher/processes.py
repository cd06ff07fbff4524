"""The processes of the single-machine stack, as data.

`make run` and the end-to-end tests start the same specs, so what is tested
is what users run.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Ports:
    """Loopback ports of each process."""

    rasa: int = 5005
    actions: int = 5055
    knowledge_base: int = 8001
    reminders: int = 8002
    hotline: int = 8003


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


def stack(model: Path, ports: Ports, secrets: Mapping[str, str], var_dir: Path) -> List[ProcessSpec]:
    """Every process of the stack, in start order; each keeps its data in var_dir.

    The services come before Rasa so the first conversation finds them up.
    """
    python = [sys.executable, "-m"]
    return [
        ProcessSpec(
            name="actions",
            argv=[str(BIN / "rasa"), "run", "actions", "--actions", "bot.actions", "--port", str(ports.actions)],
            health_url=_local(ports.actions, "/health"),
            urls={"action server": _local(ports.actions, "/health")},
        ),
        ProcessSpec(
            name="knowledge_base",
            argv=[*python, "knowledge_base", "serve", "--port", str(ports.knowledge_base)],
            health_url=_local(ports.knowledge_base, "/health"),
            # The first start embeds every guidance entry (cached afterwards).
            start_timeout=300.0,
            urls={"knowledge base": _local(ports.knowledge_base, "/health")},
        ),
        ProcessSpec(
            name="reminders",
            argv=[*python, "reminders", "serve", "--port", str(ports.reminders)],
            health_url=_local(ports.reminders, "/health"),
            env={
                "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{var_dir / 'reminders.db'}",
                "REMINDERS_PUBLIC_URL": _local(ports.reminders),
            },
            urls={"reminders API": _local(ports.reminders, "/openapi.json")},
        ),
        ProcessSpec(
            name="hotline",
            argv=[*python, "hotline", "serve", "--port", str(ports.hotline)],
            health_url=_local(ports.hotline, "/health"),
            env={"HOTLINE_PUBLIC_URL": _local(ports.hotline)},
            urls={"hotline console": _local(ports.hotline, "/")},
        ),
        ProcessSpec(
            name="rasa",
            argv=[
                str(BIN / "rasa"), "run",
                "--model", str(model),
                "--enable-api",
                "--auth-token", secrets["RASA_AUTH_TOKEN"],
                "--credentials", "bot/credentials.yml",
                "--endpoints", "bot/endpoints.yml",
                "--interface", "127.0.0.1",
                "--port", str(ports.rasa),
            ],
            health_url=_local(ports.rasa, "/"),
            start_timeout=240.0,
            urls={
                "web chat": _local(ports.rasa, "/webhooks/webchat/chat"),
                "REST webhook": _local(ports.rasa, "/webhooks/rest/webhook"),
                "Rasa HTTP API (token)": _local(ports.rasa, "/status"),
            },
        ),
    ]

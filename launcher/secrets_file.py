"""Local secrets for the single-machine stack.

Secrets come from the environment; for `make run` on a fresh machine any that
are missing are generated once into `var/secrets.env` (git-ignored, mode
0600) so they stay the same across restarts.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Dict, Iterable

SECRET_NAMES = (
    "RASA_AUTH_TOKEN",
    "REMINDERS_API_TOKEN",
    "HOTLINE_API_TOKEN",
    "SMS_WEBHOOK_SECRET",
    "VOICE_GATEWAY_SECRET",
)


def read_env_file(path: Path) -> Dict[str, str]:
    """Parse KEY=VALUE lines; blank lines and # comments are skipped."""
    values: Dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values


def ensure_secrets(path: Path, names: Iterable[str] = SECRET_NAMES) -> Dict[str, str]:
    """Return every named secret: from the environment, else the file, else new."""
    stored = read_env_file(path)
    changed = False
    result: Dict[str, str] = {}
    for name in names:
        if os.environ.get(name):
            result[name] = os.environ[name]
            continue
        if name not in stored:
            stored[name] = secrets.token_urlsafe(32)
            changed = True
        result[name] = stored[name]
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{k}={v}\n" for k, v in stored.items()), encoding="utf-8")
        path.chmod(0o600)
    return result

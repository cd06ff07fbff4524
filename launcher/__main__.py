"""`python -m launcher train | run | run-cluster | engines-up | engines-down`.

`run` is what `make run` does; `run-cluster` what `make run-cluster` does.
"""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Dict, Optional

from launcher.model import ensure_model
from launcher.processes import ROOT, Ports, base_environment, stack
from launcher.cluster import ClusterLayout, cluster_supervisor, front_urls
from launcher.engines import (
    ENGINE_SECRETS,
    EngineError,
    Engines,
    LocalPostgres,
    LocalRedis,
    ensure_engines,
    missing_engines,
    missing_message,
    stop_engines,
)
from launcher.secrets_file import SECRET_NAMES, ensure_secrets
from launcher.supervisor import StartupError, Supervisor


def run(config: str) -> int:
    var_dir = ROOT / "var"
    model = ensure_model(config)
    secrets = ensure_secrets(var_dir / "secrets.env")
    ports = Ports()
    specs = stack(model, ports, secrets, var_dir)
    urls = {label: url for spec in specs for label, url in spec.urls.items()}
    supervisor = Supervisor(specs, base_environment(ports, secrets, var_dir), var_dir / "log", echo=sys.stdout)
    return _supervise(supervisor, urls, var_dir)


def run_cluster(config: str, replicas: int) -> int:
    """The scale-out stack on this machine: engines, front door, replicas."""
    var_dir = ROOT / "var"
    model = ensure_model(config)
    secrets = ensure_secrets(var_dir / "secrets.env", SECRET_NAMES + ENGINE_SECRETS)
    engines = _start_engines(var_dir, secrets)
    if engines is None:
        return 1
    layout = ClusterLayout.default(replicas)
    try:
        supervisor = cluster_supervisor(model, layout, secrets, var_dir, engines, echo=sys.stdout)
        urls = {**front_urls(layout), "PostgreSQL": f"{engines.postgres.host}:{engines.postgres.port}",
                "Redis": f"{engines.redis.host}:{engines.redis.port}"}
        return _supervise(supervisor, urls, var_dir)
    finally:
        stop_engines(engines)
        if engines.started:
            print("PostgreSQL and Redis stopped.", flush=True)


def _start_engines(var_dir: Path, secrets: Dict[str, str]) -> Optional[Engines]:
    """PostgreSQL and Redis, configured or started here; None (the reason printed) when impossible."""
    missing = missing_engines()
    if missing:
        print(f"Start-up failed: {missing_message(missing)}.", file=sys.stderr)
        return None
    try:
        return ensure_engines(var_dir, secrets)
    except EngineError as error:
        print(f"Start-up failed: {error}", file=sys.stderr)
        return None


def _supervise(supervisor: Supervisor, urls: Dict[str, str], var_dir: Path) -> int:
    """Start the processes, print where they are, wait until Ctrl-C or a crash."""

    def _stop(signum, frame):  # Ctrl-C or SIGTERM: leave wait() and clean up.
        raise KeyboardInterrupt

    # Installed explicitly: a shell that starts us in the background makes us
    # inherit an ignored SIGINT, and Ctrl-C must still stop everything.
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        supervisor.start()
        print("\nThe stack is up:")
        for label, url in urls.items():
            print(f"  {label:24} {url}")
        print(f"  {'secrets':24} {var_dir / 'secrets.env'}")
        print("Press Ctrl-C to stop.\n", flush=True)
        return supervisor.wait()
    except StartupError as error:
        print(f"Start-up failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
        return 0
    finally:
        supervisor.stop()
        print("All processes stopped.", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m launcher")
    parser.add_argument("command", choices=["train", "run", "run-cluster", "engines-up", "engines-down"])
    parser.add_argument("--config", default="config.yml", help="Rasa pipeline and policies")
    parser.add_argument("--replicas", type=int, default=2, help="run-cluster: replicas of each service")
    args = parser.parse_args()
    if args.command == "train":
        ensure_model(args.config)
        return 0
    if args.command == "run-cluster":
        return run_cluster(args.config, args.replicas)
    if args.command in ("engines-up", "engines-down"):
        return engines_command(args.command == "engines-up")
    return run(args.config)


def engines_command(up: bool) -> int:
    """Start (and leave running) or stop the local PostgreSQL and Redis of scale-out mode."""
    var_dir = ROOT / "var"
    secrets = ensure_secrets(var_dir / "secrets.env", SECRET_NAMES + ENGINE_SECRETS)
    if up:
        engines = _start_engines(var_dir, secrets)
        if engines is None:
            return 1
        print(f"PostgreSQL {engines.postgres.host}:{engines.postgres.port}, "
              f"Redis {engines.redis.host}:{engines.redis.port}")
        return 0
    for engine in (LocalPostgres(var_dir, secrets["POSTGRES_PASSWORD"]), LocalRedis(var_dir, secrets["REDIS_PASSWORD"])):
        if engine.running():
            engine.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

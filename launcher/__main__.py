"""`python -m launcher train | run` — what `make run` does."""
from __future__ import annotations

import argparse
import signal
import sys

from launcher.model import ensure_model
from launcher.processes import ROOT, Ports, base_environment, stack
from launcher.secrets_file import ensure_secrets
from launcher.supervisor import StartupError, Supervisor


def run(config: str) -> int:
    var_dir = ROOT / "var"
    model = ensure_model(config)
    secrets = ensure_secrets(var_dir / "secrets.env")
    ports = Ports()
    specs = stack(model, ports, secrets, var_dir)
    supervisor = Supervisor(specs, base_environment(ports, secrets, var_dir), var_dir / "log", echo=sys.stdout)

    def _stop(signum, frame):  # Ctrl-C or SIGTERM: leave wait() and clean up.
        raise KeyboardInterrupt

    # Installed explicitly: a shell that starts us in the background makes us
    # inherit an ignored SIGINT, and Ctrl-C must still stop everything.
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        supervisor.start()
        print("\nThe stack is up:")
        for spec in specs:
            for label, url in spec.urls.items():
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
    parser.add_argument("command", choices=["train", "run"])
    parser.add_argument("--config", default="config.yml", help="Rasa pipeline and policies")
    args = parser.parse_args()
    if args.command == "train":
        ensure_model(args.config)
        return 0
    return run(args.config)


if __name__ == "__main__":
    sys.exit(main())

"""Training and start-up times of the chat stack (issue #2 figures).

Measures, on this machine:
- training from scratch (empty Rasa cache, fresh output folder),
- `python -m launcher train` when nothing changed (must not retrain),
- start-up of Rasa + action server until both answer, and the first reply.

Usage: python bench/stack_startup.py [--runs 3] [--train-runs 3] [--out docs/benchmarks/stack.md]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from launcher.model import ensure_model, model_path  # noqa: E402
from launcher.processes import Ports, base_environment, stack  # noqa: E402
from launcher.supervisor import Supervisor  # noqa: E402


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def train_from_scratch() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "RASA_CACHE_DIRECTORY": str(Path(tmp) / "cache"), "RASA_TELEMETRY_ENABLED": "false"}
        started = time.perf_counter()
        subprocess.run(
            [str(Path(sys.executable).parent / "rasa"), "train", "--config", "config.yml", "--domain", "bot/domain",
             "--data", "bot/data", "--out", str(Path(tmp) / "models")],
            cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        return time.perf_counter() - started


def noop_train() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "launcher", "train"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def startup() -> tuple[float, float]:
    model = ensure_model()
    with tempfile.TemporaryDirectory() as tmp:
        var_dir = Path(tmp)
        ports = Ports.free()
        secrets = {"RASA_AUTH_TOKEN": "bench"}
        specs = [s for s in stack(model, ports, secrets, var_dir) if s.name in ("actions", "rasa")]
        supervisor = Supervisor(specs, base_environment(ports, secrets, var_dir), var_dir / "log")
        started = time.perf_counter()
        with supervisor:
            up = time.perf_counter() - started
            request = urllib.request.Request(
                f"http://127.0.0.1:{ports.rasa}/webhooks/rest/webhook",
                data=json.dumps({"sender": "bench", "message": "你好"}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                assert response.status == 200 and json.loads(response.read())
            first_reply = time.perf_counter() - started
    return up, first_reply


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--train-runs", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "docs/benchmarks/stack.md"))
    args = parser.parse_args()

    ensure_model()
    scratch = [train_from_scratch() for _ in range(args.train_runs)]
    noop = [noop_train() for _ in range(args.runs)]
    starts = [startup() for _ in range(args.runs)]
    med = statistics.median
    rows = [
        ("Training from scratch (empty cache)", med(scratch), scratch),
        ("`make train` with nothing changed (no retraining)", med(noop), noop),
        ("Start-up: Rasa + action server healthy", med([s[0] for s in starts]), [s[0] for s in starts]),
        ("Start-up to first reply (你好)", med([s[1] for s in starts]), [s[1] for s in starts]),
    ]
    lines = [
        "## Chat stack: training and start-up",
        "",
        f"Machine: {os.cpu_count()} cores, {cpu_model()}; {time.strftime('%Y-%m-%d')}; model {model_path().name}.",
        f"Load average at the end of the run: {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
        "(other work on the machine makes these figures pessimistic).",
        f"Median of {args.runs} runs ({args.train_runs} for training from scratch), seconds.",
        "",
        "| what | median s | runs |",
        "|---|---|---|",
        *[f"| {name} | {m:.1f} | {', '.join(f'{x:.1f}' for x in runs)} |" for name, m, runs in rows],
        "",
        "Reproduce: `.venv/bin/python bench/stack_startup.py`.",
        "",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

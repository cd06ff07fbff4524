"""Start processes, wait until each is healthy, stop them all cleanly."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, List, Mapping, Optional, TextIO

from launcher.processes import ROOT, ProcessSpec, free_port  # noqa: F401  (free_port: re-exported)


class StartupError(RuntimeError):
    """A process died or did not become healthy in time."""


def is_healthy(url: str, timeout: float = 2.0) -> bool:
    """True when GET url answers with a status below 500."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status < 500
    except urllib.error.HTTPError as error:
        return error.code < 500
    except (urllib.error.URLError, OSError):
        return False


class Supervisor:
    """Runs a set of processes as one unit (a context manager)."""

    def __init__(
        self,
        specs: List[ProcessSpec],
        env: Mapping[str, str],
        log_dir: Path,
        echo: Optional[TextIO] = None,
    ) -> None:
        self.specs = specs
        self.env = {**os.environ, **env}
        self.log_dir = log_dir
        self.echo = echo
        self.processes: Dict[str, subprocess.Popen] = {}
        self._threads: List[threading.Thread] = []

    def _pump(self, name: str, stream, log: TextIO) -> None:
        # Each line goes to var/log/<name>.log and, for `make run`, to the console.
        for line in iter(stream.readline, ""):
            log.write(line)
            log.flush()
            if self.echo is not None:
                self.echo.write(f"[{name}] {line}")
                self.echo.flush()
        log.close()

    def start(self) -> None:
        """Start every process in order, each healthy before the next."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for spec in self.specs:
            self.start_one(spec)

    def start_one(self, spec: ProcessSpec) -> None:
        """Start one process (again, after `kill`) and wait until it is healthy."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(
            spec.argv,
            cwd=ROOT,
            env={**self.env, **spec.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # Ctrl-C reaches us only; we stop the group.
        )
        self.processes[spec.name] = process
        log = open(self.log_dir / f"{spec.name}.log", "a", encoding="utf-8")
        thread = threading.Thread(target=self._pump, args=(spec.name, process.stdout, log), daemon=True)
        thread.start()
        self._threads.append(thread)
        self._wait_healthy(spec, process)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Kill one process group without warning (fault tests and benchmarks)."""
        process = self.processes[name]
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        process.wait()

    def spec(self, name: str) -> ProcessSpec:
        return next(s for s in self.specs if s.name == name)

    def _wait_healthy(self, spec: ProcessSpec, process: subprocess.Popen) -> None:
        deadline = time.monotonic() + spec.start_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise StartupError(
                    f"{spec.name} exited with code {process.returncode}; see {self.log_dir / (spec.name + '.log')}"
                )
            if is_healthy(spec.health_url):
                return
            time.sleep(0.5)
        raise StartupError(f"{spec.name} was not healthy after {spec.start_timeout:.0f} s at {spec.health_url}")

    def wait(self) -> int:
        """Block until a process exits; return its exit code."""
        while True:
            for name, process in self.processes.items():
                code = process.poll()
                if code is not None:
                    print(f"{name} exited with code {code}", file=sys.stderr)
                    return code or 1
            time.sleep(0.5)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM every process group (newest first), then SIGKILL stragglers."""
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            remaining = max(0.0, deadline - time.monotonic())
            try:
                process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait()

    def __enter__(self) -> "Supervisor":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

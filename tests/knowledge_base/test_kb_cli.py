"""``python -m knowledge_base`` dispatches its subcommands."""
from __future__ import annotations

import subprocess
import sys

from knowledge_base.__main__ import COMMANDS, main


def test_usage_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("validate", "prepare-model", "build", "search", "serve"))
    assert set(COMMANDS) == {"validate", "prepare-model", "build", "search", "serve"}


def test_unknown_command_fails(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_validate_subcommand_runs_as_a_module(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "knowledge_base", "validate", "--dir", str(tmp_path),
                           "--no-require-all-topics"], capture_output=True, text=True)
    assert proc.returncode == 0 and "OK: 0 guidance files valid" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "knowledge_base", "validate", "--dir", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "has no zh entry" in proc.stderr

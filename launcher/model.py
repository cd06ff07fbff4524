"""Train the Rasa model only when its inputs change.

The model file is named after a hash of everything training reads, so an
unchanged project finds its model and starts without retraining.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Iterable, List, Optional

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
# What training reads: the pipeline, the domain and data, and the code of
# our custom NLU components (which is imported into the model graph).
TRAINING_INPUTS = ("config.yml", "bot/domain", "bot/data", "bot/nlu")


def _files(paths: Iterable[str], root: Path) -> List[Path]:
    found: List[Path] = []
    for rel in paths:
        path = root / rel
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(
                p for p in path.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc")
            )
    return sorted(found)


def training_hash(root: Path = ROOT, config: str = "config.yml") -> str:
    """A short hash of the training inputs' paths and contents."""
    inputs = [config if p == "config.yml" else p for p in TRAINING_INPUTS]
    digest = hashlib.sha256()
    for path in _files(inputs, root):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def model_path(root: Path = ROOT, config: str = "config.yml") -> Path:
    """Where the model for the current inputs lives (it may not exist yet)."""
    return root / "models" / f"model-{training_hash(root, config)}.tar.gz"


def ensure_model(config: str = "config.yml", keep: int = 3) -> Path:
    """Return the model for the current inputs, training it first if needed."""
    target = model_path(ROOT, config)
    if target.exists():
        print(f"Model up to date: {target.relative_to(ROOT)} (no training needed)")
        return target
    print(f"Training inputs changed: training {target.relative_to(ROOT)} ...", flush=True)
    rasa = str(Path(sys.executable).parent / "rasa")
    subprocess.run(
        [
            rasa, "train",
            "--config", config,
            "--domain", "bot/domain",
            "--data", "bot/data",
            "--out", "models",
            "--fixed-model-name", target.name[: -len(".tar.gz")],
        ],
        cwd=ROOT,
        check=True,
    )
    _prune(target, keep)
    return target


def _prune(current: Path, keep: int) -> None:
    """Delete all but the newest `keep` models."""
    models = sorted(current.parent.glob("model-*.tar.gz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in models[keep:]:
        if old != current:
            old.unlink()


def latest_model(root: Path = ROOT, config: str = "config.yml") -> Optional[Path]:
    """The model for the current inputs if it was trained."""
    path = model_path(root, config)
    return path if path.exists() else None

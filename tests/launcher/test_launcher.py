import shutil
from pathlib import Path

from launcher.model import ROOT, TRAINING_INPUTS, training_hash
from launcher.secrets_file import ensure_secrets, read_env_file


def _copy_project(dst: Path) -> None:
    for rel in TRAINING_INPUTS:
        src = ROOT / rel
        if src.is_dir():
            shutil.copytree(src, dst / rel, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst / rel)


def test_hash_is_stable_and_follows_content(tmp_path):
    _copy_project(tmp_path)
    first = training_hash(tmp_path)
    assert training_hash(tmp_path) == first
    (tmp_path / "bot/actions").mkdir(parents=True, exist_ok=True)
    (tmp_path / "bot/actions/new.py").write_text("x = 1\n")  # actions don't affect the model
    assert training_hash(tmp_path) == first
    nlu = next((tmp_path / "bot/data/nlu").glob("*.yml"))
    nlu.write_text(nlu.read_text() + "\n")
    assert training_hash(tmp_path) != first


def test_secrets_are_generated_once_and_env_wins(tmp_path, monkeypatch):
    path = tmp_path / "var/secrets.env"
    monkeypatch.delenv("RASA_AUTH_TOKEN", raising=False)
    first = ensure_secrets(path, ["RASA_AUTH_TOKEN"])
    assert len(first["RASA_AUTH_TOKEN"]) >= 32
    assert ensure_secrets(path, ["RASA_AUTH_TOKEN"]) == first
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    monkeypatch.setenv("RASA_AUTH_TOKEN", "from-env")
    assert ensure_secrets(path, ["RASA_AUTH_TOKEN"])["RASA_AUTH_TOKEN"] == "from-env"
    assert read_env_file(path)["RASA_AUTH_TOKEN"] == first["RASA_AUTH_TOKEN"]

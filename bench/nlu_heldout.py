"""Intent accuracy of the trained model on the held-out NLU set.

Runs `rasa test nlu` on tests/nlu/heldout_nlu.yml (sentences that appear
nowhere in the training data) and writes docs/benchmarks/nlu.md.
Usage: python bench/nlu_heldout.py
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from launcher.model import ensure_model  # noqa: E402

HELDOUT = ROOT / "tests" / "nlu" / "heldout_nlu.yml"


def main() -> None:
    model = ensure_model()
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [str(Path(sys.executable).parent / "rasa"), "test", "nlu", "--nlu", str(HELDOUT), "--model", str(model),
             "--out", out, "--no-plot"],
            cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "RASA_TELEMETRY_ENABLED": "false"},
        )
        report = json.loads((Path(out) / "intent_report.json").read_text())
        errors = json.loads((Path(out) / "intent_errors.json").read_text())
    intents = {k: v for k, v in report.items() if isinstance(v, dict) and "support" in v and k not in
               ("macro avg", "weighted avg", "micro avg")}
    worst = sorted(intents.items(), key=lambda kv: kv[1]["f1-score"])[:5]
    lines = [
        "## NLU: intents on held-out sentences",
        "",
        f"{time.strftime('%Y-%m-%d')}, model {model.name}, {HELDOUT.relative_to(ROOT)} "
        f"({int(report['macro avg']['support'])} sentences, Chinese and English, 17 written with speech-recognition slips).",
        "",
        "| measure | value |",
        "|---|---|",
        f"| accuracy | {report['accuracy']:.3f} |",
        f"| macro F1 | {report['macro avg']['f1-score']:.3f} |",
        f"| weighted F1 | {report['weighted avg']['f1-score']:.3f} |",
        "",
        "Weakest intents (F1): " + ", ".join(f"{k} {v['f1-score']:.2f}" for k, v in worst) + ".",
        "",
        "Misclassified: " + "; ".join(f"\"{e['text']}\" → {e['intent_prediction']['name']} (expected {e['intent']})" for e in errors[:12]) + ".",
        "",
        "Reproduce: `.venv/bin/python bench/nlu_heldout.py`. Deterministic for a given model (one run).",
        "",
    ]
    target = ROOT / "docs" / "benchmarks" / "nlu.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Assemble docs/benchmarks.md from the per-area result files in docs/benchmarks/.

Each benchmark script writes its own section (docs/benchmarks/<area>.md);
this puts them in one page in a fixed order. Usage: python bench/collect.py
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ROOT / "docs" / "benchmarks"
ORDER = ["stack", "nlu", "knowledge_base", "reminders", "voice", "hotline", "scale_out_chat",
         "scale_out_reminders", "fuzz"]
HEADER = """# Benchmarks

Measured on the project's reference machine (2 cores, no GPU). Each section is
written by a script in `bench/` (named in the section) and gathered here by
`python bench/collect.py`. Figures are medians of several runs unless a
section says otherwise.
"""


def main() -> None:
    files = sorted(SECTIONS.glob("*.md"), key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER else 99, p.stem))
    parts = [HEADER] + [p.read_text(encoding="utf-8").strip() + "\n" for p in files]
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(parts), encoding="utf-8")
    print(f"docs/benchmarks.md: {len(files)} sections")


if __name__ == "__main__":
    main()

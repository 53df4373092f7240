#!/usr/bin/env bash
# Creates .venv (once) and installs frontdesk into it with the dev extras; compiles the catalogs.
# Sourced by scripts/run and scripts/test.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
if [ ! -x "$root/.venv/bin/python" ]; then
  "$python" -m venv "$root/.venv"
fi
extras="${FRONTDESK_EXTRAS-dev}"
stamp="$root/.venv/.frontdesk-installed-${extras:-base}"
# Reinstall when the project's metadata or the translations changed (the build hook compiles .po).
if [ ! -f "$stamp" ] || [ -n "$(find "$root/pyproject.toml" "$root/locales" -newer "$stamp" -print -quit)" ]; then
  "$root/.venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$root/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root${extras:+[$extras]}"
  touch "$stamp"
fi

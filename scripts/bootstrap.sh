#!/usr/bin/env bash
# Creates .venv (once) and installs frontdesk into it with the dev extras; compiles the catalogs.
# Sourced by scripts/run and scripts/test. Says on stderr what it does when it does something (a
# line per phase), nothing when all is installed already.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
say() { echo "frontdesk: $*" >&2; }
if [ ! -x "$root/.venv/bin/python" ]; then
  if ! command -v "$python" >/dev/null 2>&1; then
    say "$python not found: install Python 3.11 or newer, or set PYTHON to one"
    exit 2
  fi
  version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    say "Python 3.11 or newer is needed, $python is $version (set PYTHON, e.g. PYTHON=python3.12)"
    exit 2
  fi
  say "creating the virtual environment .venv (Python $version)"
  "$python" -m venv "$root/.venv"
  first=1
else
  first=0
fi
extras="${FRONTDESK_EXTRAS-dev}"
stamp="$root/.venv/.frontdesk-installed-${extras:-base}"
# Reinstall when the project's metadata or the translations changed (the build hook compiles .po).
if [ ! -f "$stamp" ] || [ -n "$(find "$root/pyproject.toml" "$root/locales" -newer "$stamp" -print -quit)" ]; then
  started=$SECONDS
  say "updating pip"
  "$root/.venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  if [ "$first" = 1 ] || [ ! -f "$stamp" ]; then
    say "installing frontdesk and its dependencies${extras:+ [$extras]} and compiling the" \
      "translations (first run only, ~30 s)"
  else
    say "updating frontdesk in .venv and compiling the translations (pyproject.toml or locales/" \
      "changed)"
  fi
  "$root/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root${extras:+[$extras]}"
  touch "$stamp"
  say "installed in $((SECONDS - started)) s"
fi

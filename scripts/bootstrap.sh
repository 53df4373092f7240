#!/usr/bin/env bash
# Creates .venv (once) and installs into it the locked dependencies (requirements/dev.lock, or
# base.lock with FRONTDESK_EXTRAS="") and frontdesk itself (editable); compiles the catalogs.
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
# Exact versions with hashes (scripts/lock writes them from pyproject.toml's ranges): the dev
# lock holds the base's pins too; the build lock, what builds frontdesk itself (hatchling, Babel).
case "$extras" in
  "") lock="$root/requirements/base.lock" ;;
  dev) lock="$root/requirements/dev.lock" ;;
  *)
    say "FRONTDESK_EXTRAS=$extras: only \"\" (the bot) or dev (the bot and its tests) are locked"
    exit 2
    ;;
esac
stamp="$root/.venv/.frontdesk-installed-${extras:-base}"
# Reinstall when the locks, the project's metadata or the translations changed (the build hook
# compiles .po).
if [ ! -f "$stamp" ] || [ -n "$(find "$lock" "$root/requirements/build.lock" "$root/pyproject.toml" "$root/locales" -newer "$stamp" -print -quit)" ]; then
  started=$SECONDS
  if [ "$first" = 1 ] || [ ! -f "$stamp" ]; then
    say "installing frontdesk's locked dependencies (requirements/$(basename "$lock"))${extras:+ [$extras]}" \
      "and compiling the translations (first run only, ~30 s)"
  else
    say "updating frontdesk in .venv and compiling the translations (a lock, pyproject.toml or" \
      "locales/ changed)"
  fi
  pip=("$root/.venv/bin/python" -m pip --quiet --disable-pip-version-check)
  # Only pip is needed: every download is checked against the lock's hashes.
  "${pip[@]}" install --require-hashes -r "$lock" -r "$root/requirements/build.lock"
  # frontdesk itself, editable, resolving nothing and downloading nothing: its dependencies are
  # the lock's, its build system the one just installed.
  "${pip[@]}" install --no-deps --no-build-isolation -e "$root"
  touch "$stamp"
  say "installed in $((SECONDS - started)) s"
fi

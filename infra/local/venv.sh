#!/usr/bin/env bash
# Creates or updates the project virtualenv (<repo>/.venv, or $PREMATCH_VENV) from
# tests/requirements.txt: moto[server] for the local stack, cargo-lambda, and the tests' Python tools.
# Installs nothing when every requirement is already there at its pinned version.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${PREMATCH_VENV:-$ROOT/.venv}"
REQUIREMENTS="$ROOT/tests/requirements.txt"
PYTHON="${PREMATCH_PYTHON:-python3}"

say() { printf 'venv: %s\n' "$*" >&2; }

[[ -f "$REQUIREMENTS" ]] || { say "missing $REQUIREMENTS"; exit 1; }
command -v "$PYTHON" >/dev/null || {
  say "$PYTHON not found: install Python 3.9+ (Debian: apt-get install python3 python3-venv)"
  exit 1
}

if [[ ! -x "$VENV/bin/python" ]]; then
  say "creating $VENV"
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    # Debian ships venv's ensurepip separately.
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
      say "python3-venv is missing; installing it (apt-get)"
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
      rm -rf "$VENV"
      "$PYTHON" -m venv "$VENV"
    else
      say "cannot create a virtualenv: install python3-venv (sudo apt-get install python3-venv)"
      exit 1
    fi
  fi
fi

# Which requirement lines are not satisfied by what is installed? (name and, when pinned with ==,
# the version; extras such as moto[server] are checked through the packages they pull in.)
missing="$("$VENV/bin/python" - "$REQUIREMENTS" <<'EOF'
import re, sys
from importlib import metadata

missing = []
for raw in open(sys.argv[1]):
    line = raw.split("#", 1)[0].strip()
    if not line:
        continue
    m = re.match(r"^([A-Za-z0-9_.-]+)(\[([^\]]*)\])?\s*(==\s*([^\s;]+))?", line)
    if not m:
        missing.append(line)
        continue
    name, extras, pinned = m.group(1), m.group(3), m.group(5)
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        missing.append(line)
        continue
    if pinned and have != pinned:
        missing.append(line)
        continue
    # An extra is satisfied when the distributions it requires are installed.
    for extra in (extras or "").split(","):
        extra = extra.strip()
        if not extra:
            continue
        for req in metadata.requires(name) or []:
            if f'extra == "{extra}"' not in req:
                continue
            dep = re.match(r"^([A-Za-z0-9_.-]+)", req).group(1)
            try:
                metadata.version(dep)
            except metadata.PackageNotFoundError:
                missing.append(line)
                break
print("\n".join(missing))
EOF
)"

if [[ -z "$missing" ]]; then
  say "$VENV is up to date with tests/requirements.txt"
  exit 0
fi

say "installing into $VENV: $(echo "$missing" | tr '\n' ' ')"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2 || true
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQUIREMENTS" >&2
say "$VENV is ready"

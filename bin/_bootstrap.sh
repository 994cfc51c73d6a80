# Shared set-up for bin/pyprov and bin/test: Debian packages, then a venv with pyprov.
# Sourced, not run. Idempotent: a second call costs a few dpkg/hash checks.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PYPROV_VENV:-$REPO/.venv}"
PYTHON="${PYTHON:-python3}"

ensure_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "pyprov: installing Debian packages: ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

ensure_venv() {  # $1: pip extras ("" or "dev")
  local extras="${1:-}"
  if ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    echo "pyprov: needs Python >= 3.11 as '$PYTHON' (set PYTHON=...)" >&2
    return 1
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV" 2>/dev/null || { ensure_apt python3-venv && "$PYTHON" -m venv "$VENV"; }
  fi
  local stamp="$VENV/.pyprov-installed"
  local want
  want="$(cat "$REPO/pyproject.toml" | sha256sum | cut -d' ' -f1)-$extras"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "pyprov: installing into $VENV" >&2
    "$VENV/bin/python" -m pip install -q --upgrade pip >&2
    "$VENV/bin/python" -m pip install -q -e "$REPO${extras:+[$extras]}" >&2
    echo "$want" > "$stamp"
  fi
}

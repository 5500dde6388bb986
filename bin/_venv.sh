# Sourced by bin/run and bin/test: makes .venv with Python 3.11 and installs the given requirements file
# when it (or anything it includes) changed since the last install.
ensure_venv() {
  local requirements=$1
  local python=${PYTHON:-}
  if [ -z "$python" ]; then
    for candidate in python3.11 python3; do
      if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
        python=$candidate; break
      fi
    done
  fi
  if [ -z "$python" ]; then
    echo "Python 3.11 is needed: install python3.11 (e.g. apt-get install python3.11 python3.11-venv)." >&2
    exit 1
  fi
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  local stamp=".venv/.installed-$(cat requirements*.txt | sha256sum | cut -c1-16)-${requirements}"
  if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
    touch "$stamp"
  fi
  export PATH="$PWD/.venv/bin:$PATH"
}

# Sourced by scripts/demo and scripts/test: make .venv with Python >= 3.11 and install this package
# with the extra named in $1. Uses apt-get (as root, or through sudo) only for what is missing.

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "error: '$*' needs root; run this script as root or install sudo." >&2
        return 1
    fi
}

apt_install() {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

find_python() {
    local candidate
    for candidate in ${PYTHON:-} python3.11 python3 python; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "error: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)." >&2
    return 1
}

setup_venv() {
    local extra=$1 python
    if ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        python=$(find_python)
        rm -rf .venv
        # Debian ships venv's pip bootstrap (ensurepip) separately, in python3-venv.
        if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
            echo "Installing python3-venv ..."
            apt_install python3-venv
        fi
        echo "Creating .venv with $python ..."
        "$python" -m venv .venv
    fi
    # Installed once per setup.cfg: a later call for extras already installed does nothing, so a run
    # may set up early and later calls (scripts/test) never reinstall under tests already running.
    local stamp=.venv/installed-extras key wanted missing=0
    key=$(cksum <setup.cfg)
    for wanted in ${extra//,/ }; do
        grep -qxF "$key $wanted" "$stamp" 2>/dev/null || missing=1
    done
    if [ "$missing" -eq 0 ]; then
        return 0
    fi
    echo "Installing flask-smtp-accounts[$extra] into .venv ..."
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --editable ".[$extra]"
    for wanted in ${extra//,/ }; do
        echo "$key $wanted" >>"$stamp"
    done
}

#!/usr/bin/env bash
# Builds the Python bindings (UniFFI through maturin) into a wheel, installs it into a venv
# under target/, and runs the pytest suite against the development IDP (the mc-devidp binary).
# Works from a clean checkout; needs python3 (with venv), cargo, and PyPI for maturin/pytest.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/py-venv"
wheels="$target/py-wheels"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "maturin>=1.9,<2" pytest

(cd "$root" && cargo build --quiet -p mc-devidp --bin mc-devidp)

rm -rf "$wheels"
# Dev profile: the release profile's LTO costs minutes and tests nothing more. No --strip:
# uniffi-bindgen reads the interface from the library's metadata symbols.
(cd "$here" && "$venv/bin/maturin" build --quiet --out "$wheels")
"$venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheels"/mc_runtime-*.whl

cd "$here"
MC_DEVIDP="$target/debug/mc-devidp" "$venv/bin/python" -m pytest -p no:cacheprovider -q tests "$@"

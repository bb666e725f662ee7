#!/usr/bin/env bash
# The Python bindings against the development IDP (the mc-devidp binary), with no cargo build
# of their own: the generator and libmc_ffi.so come from the build `cargo test --workspace`
# made (bindings/artifacts.sh). The module is laid out as maturin's wheel lays it out (package
# mc_runtime/: __init__.py, the generated mc_runtime.py, libmc_ffi.so) under target/, and
# pytest imports it from there. Works from a clean checkout; needs python3 (with venv), cargo,
# and PyPI for pytest (and maturin).
#
#   bindings/python/run-tests.sh            the test command's route (extra arguments go to pytest)
#   bindings/python/run-tests.sh --wheel    builds the wheel with maturin and tests the installed
#                                           wheel instead (a second, dev-profile build of mc-ffi
#                                           in target/py-wheel-build: maturin's `-p mc-ffi` feature
#                                           set differs from the workspace's)
# The default route still checks the packaging cheaply: `maturin sdist` reads pyproject.toml and
# mc-ffi's manifest as the wheel build does, without compiling.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/py-venv"
wheel=0
if [ "${1:-}" = "--wheel" ]; then
    wheel=1
    shift
fi

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "maturin>=1.9,<2" pytest

# shellcheck source=../artifacts.sh
. "$root/bindings/artifacts.sh"
mc_artifacts "$root"

if [ "$wheel" = 1 ]; then
    wheels="$target/py-wheels"
    rm -rf "$wheels"
    # Dev profile: the release profile's LTO costs minutes and tests nothing more. No --strip:
    # uniffi-bindgen reads the interface from the library's metadata symbols.
    (cd "$here" && CARGO_TARGET_DIR="$target/py-wheel-build" "$venv/bin/maturin" build --quiet --out "$wheels")
    "$venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheels"/mc_runtime-*.whl
    module_path=""
else
    # The packaging, checked without a build: maturin reads pyproject.toml and the crate.
    sdist="$(mktemp -d)"
    if ! (cd "$here" && "$venv/bin/maturin" sdist --out "$sdist" >"$sdist/log" 2>&1); then
        cat "$sdist/log" >&2
        echo "run-tests: maturin cannot package bindings/python (pyproject.toml, crates/mc-ffi)" >&2
        exit 1
    fi
    rm -rf "$sdist"
    # A wheel installed earlier by --wheel would shadow nothing (PYTHONPATH comes first), but
    # remove it so the venv holds one mc_runtime only.
    "$venv/bin/pip" uninstall --quiet --yes mc-runtime >/dev/null 2>&1 || true
    # The package as the wheel has it; a private copy of the library so that a later build in
    # the shared target dir cannot swap it under the running tests.
    module_path="$target/py-bindings"
    package="$module_path/mc_runtime"
    rm -rf "$module_path"
    mkdir -p "$package"
    cp "$MC_FFI_LIBRARY" "$package/libmc_ffi.so"
    "$MC_UNIFFI_BINDGEN" generate --no-format --language python \
        --library "$package/libmc_ffi.so" --out-dir "$package" >/dev/null
    # As maturin writes it for a library with two UniFFI namespaces.
    printf 'from .mc_events import *  # NOQA\nfrom .mc_runtime import *  # NOQA\n' >"$package/__init__.py"
fi

cd "$here"
PYTHONPATH="$module_path${PYTHONPATH:+:$PYTHONPATH}" MC_DEVIDP="$MC_DEVIDP" \
    "$venv/bin/python" -m pytest -p no:cacheprovider -q tests "$@"

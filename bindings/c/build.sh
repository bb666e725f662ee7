#!/usr/bin/env bash
# Builds the C library (crate mc-capi) and lifecycle.c with the machine's C compiler, then runs
# the lifecycle against a fresh development IDP (the mc-devidp binary on a free loopback port).
#
#   bindings/c/build.sh [--release] [--no-run]
#
# Output: target/<profile>/libmc_capi.{so,a}, target/<profile>/c/lifecycle. The same program is
# built and run by `cargo test -p mc-capi --test c_lifecycle`.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
profile=debug
cargo_profile=()
run=1
for arg in "$@"; do
    case "$arg" in
        --release) profile=release; cargo_profile=(--release) ;;
        --no-run) run=0 ;;
        *) echo "usage: $0 [--release] [--no-run]" >&2; exit 2 ;;
    esac
done
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}/$profile"

cargo build -q "${cargo_profile[@]}" -p mc-capi -p mc-devidp
mkdir -p "$target/c"
"${CC:-cc}" -std=c11 -Wall -Wextra -Werror -pedantic -I bindings/c/include \
    bindings/c/lifecycle.c -o "$target/c/lifecycle" \
    -L"$target" -Wl,-rpath,"$target" -lmc_capi -lpthread
echo "built $target/c/lifecycle against $target/libmc_capi.so"
[ "$run" = 1 ] || exit 0

work=$(mktemp -d)
idp_pid=
cleanup() {
    if [ -n "$idp_pid" ]; then kill "$idp_pid" 2>/dev/null || true; wait "$idp_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
"$target/mc-devidp" --addr 127.0.0.1:0 >"$work/idp.out" 2>"$work/idp.err" &
idp_pid=$!
url=
for _ in $(seq 1 100); do
    url=$(sed -n 's/^mc-devidp .* at \(http:\/\/[0-9.:]*\)$/\1/p' "$work/idp.out" | head -n1)
    [ -n "$url" ] && break
    kill -0 "$idp_pid" 2>/dev/null || { cat "$work/idp.err" >&2; echo "mc-devidp did not start" >&2; exit 1; }
    sleep 0.1
done
[ -n "$url" ] || { echo "mc-devidp printed no URL" >&2; exit 1; }
echo "dev IDP at $url"
"$target/c/lifecycle" "$url" "$work/store"

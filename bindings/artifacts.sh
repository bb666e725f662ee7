# Sourced by the binding scripts (bindings/*/run-tests.sh, bindings/swift/check.sh): finds the
# artifacts that `cargo test --workspace --locked` builds, so that no script builds anything of
# its own (a `cargo build -p mc-ffi ...` unifies features differently and compiles dozens of
# dependencies again; see docs/decisions/0007-one-build-for-the-tests.md). After the README
# test command's first step this is a no-op check of a few seconds; run alone, it is the same
# build that step makes (and that step is then free).
#
# Sets, as absolute paths:
#   MC_FFI_LIBRARY     libmc_ffi.so (crates/mc-ffi)
#   MC_UNIFFI_BINDGEN  the generator binary (crates/mc-uniffi-bindgen)
#   MC_DEVIDP          the development IDP binary (crates/mc-devidp)
# Never stale: cargo brings every artifact up to date first, and the library is then checked
# to be newer than every source file its dep-info lists (all of mc-ffi's workspace crates).

mc_artifacts() {
    local root="$1" listing
    listing="$(cd "$root" && cargo test --workspace --locked --no-run --quiet \
        --message-format=json-render-diagnostics)" || return 1
    eval "$(python3 -c '
import json, shlex, sys
found = {}
for line in sys.stdin:
    if not line.startswith("{"):
        continue
    message = json.loads(line)
    if message.get("reason") != "compiler-artifact" or message["profile"]["test"]:
        continue
    target = message["target"]
    if target["name"] == "mc_ffi" and "cdylib" in target["kind"]:
        found["MC_FFI_LIBRARY"] = next(f for f in message["filenames"] if f.endswith(".so"))
    elif target["kind"] == ["bin"] and target["name"] in ("mc-uniffi-bindgen", "mc-devidp"):
        name = "MC_UNIFFI_BINDGEN" if target["name"] == "mc-uniffi-bindgen" else "MC_DEVIDP"
        found[name] = message["executable"]
for name in ("MC_FFI_LIBRARY", "MC_UNIFFI_BINDGEN", "MC_DEVIDP"):
    if name not in found:
        sys.exit(f"artifacts: cargo test --workspace built no {name}")
    print(f"{name}={shlex.quote(found[name])}")
' <<<"$listing")" || return 1
    # cargo writes the library's dep-info (every source file of the workspace crates it is
    # built from) beside the uplifted copy in target/debug; a source newer than the library
    # means another build wrote this file from older sources.
    local depinfo="${MC_FFI_LIBRARY%/deps/*}/libmc_ffi.d" newer
    if [ ! -f "$depinfo" ]; then
        echo "artifacts: no $depinfo beside $MC_FFI_LIBRARY" >&2
        return 1
    fi
    newer="$(python3 -c '
import os, sys
library, depinfo = sys.argv[1], sys.argv[2]
built = os.path.getmtime(library)
text = open(depinfo).read().replace("\\\n", " ")
sources = text.split(":", 1)[1].split()
print("\n".join(s for s in sources if os.path.exists(s) and os.path.getmtime(s) > built))
' "$MC_FFI_LIBRARY" "$depinfo")" || return 1
    if [ -n "$newer" ]; then
        echo "artifacts: $MC_FFI_LIBRARY is older than its sources:" >&2
        echo "$newer" | head -5 >&2
        return 1
    fi
    export MC_FFI_LIBRARY MC_UNIFFI_BINDGEN MC_DEVIDP
}

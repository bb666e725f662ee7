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
# to be newer than every source file of mc-ffi and of the workspace crates it depends on.

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
    # Newer than every source of mc-ffi and the workspace crates it depends on (from `cargo
    # metadata`): a newer source means the file was written by a build from older sources.
    (cd "$root" && cargo metadata --locked --format-version 1 --offline) | python3 -c '
import json, os, sys
library = sys.argv[1]
metadata = json.load(sys.stdin)
packages = {p["id"]: p for p in metadata["packages"]}
local = set(metadata["workspace_members"])
nodes = {n["id"]: n for n in metadata["resolve"]["nodes"]}
todo = [next(i for i in local if packages[i]["name"] == "mc-ffi")]
crates = set()
while todo:
    node = todo.pop()
    if node in crates:
        continue
    crates.add(node)
    for dep in nodes[node]["deps"]:
        normal = any(k["kind"] in (None, "build") for k in dep["dep_kinds"])
        if dep["pkg"] in local and normal:
            todo.append(dep["pkg"])
built = os.path.getmtime(library)
newer = []
for crate in crates:
    folder = os.path.dirname(packages[crate]["manifest_path"])
    for sub, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in ("target", "tests", "benches", "examples")]
        newer += [os.path.join(sub, f) for f in files if f.endswith((".rs", ".toml"))
                  and os.path.getmtime(os.path.join(sub, f)) > built]
if newer:
    sys.exit(f"artifacts: {library} is older than its sources, e.g. {sorted(newer)[:3]}")
' "$MC_FFI_LIBRARY" || return 1
    export MC_FFI_LIBRARY MC_UNIFFI_BINDGEN MC_DEVIDP
}

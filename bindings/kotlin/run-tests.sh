#!/usr/bin/env bash
# The Kotlin bindings on the JVM, from a clean checkout: builds the native library (crate
# mc-ffi) and the mc-devidp binary, generates the Kotlin with the crate's uniffi-bindgen, then
# compiles bindings + examples + tests with Maven and runs the JUnit suite against a dev IDP on
# a free loopback port (each test class starts its own mc-devidp).
#
#   bindings/kotlin/run-tests.sh            (extra arguments go to mvn, e.g. -Dtest=LifecycleTest)
#
# Needs: cargo, a JDK 17+, mvn (Maven Central reachable, or its cache warm).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

started=$SECONDS
# shellcheck source=../artifacts.sh
. "$root/bindings/artifacts.sh"
mc_artifacts "$root"
echo "run-tests: artifacts of cargo test --workspace $((SECONDS - started))s"

# A private copy of the library: the one the bindings are generated from is the one loaded.
native="$here/target/native"
generated="$here/target/generated-sources/uniffi"
rm -rf "$native" "$generated"
mkdir -p "$native" "$generated"
cp "$MC_FFI_LIBRARY" "$native/libmc_ffi.so"
"$MC_UNIFFI_BINDGEN" generate --library "$native/libmc_ffi.so" --language kotlin \
    --no-format --config "$here/uniffi.toml" --out-dir "$generated"
echo "run-tests: generated $(find "$generated" -name '*.kt' | wc -l) Kotlin file(s)"

cd "$here"
mvn -q -B -Dstyle.color=never test -Djna.library.path="$native" -Dmc.devidp.bin="$MC_DEVIDP" "$@"
# Surefire's reports, summed, so CI logs show what ran.
python3 - "$here/target/surefire-reports" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
tests = failures = skipped = 0
for path in glob.glob(sys.argv[1] + "/TEST-*.xml"):
    suite = ET.parse(path).getroot()
    tests += int(suite.get("tests", 0))
    failures += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    skipped += int(suite.get("skipped", 0))
if tests == 0:
    sys.exit("run-tests: no JUnit test ran")
print(f"\nkotlin: {tests - failures - skipped} passed, {failures} failed, {skipped} skipped")
sys.exit(1 if failures else 0)
PY
echo "run-tests: done in $((SECONDS - started))s"

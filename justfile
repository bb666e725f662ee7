# Recipes for mc-runtime. Plain cargo works too; see README.md.

# Run the whole lifecycle once against the embedded development IDP.
demo:
    cargo run -p event-console -- demo

# The interactive event console.
console:
    cargo run -p event-console

# The whole test suite (the command CI runs).
test:
    bash scripts/install-chromium.sh
    cargo test --workspace --locked
    bash bindings/python/run-tests.sh
    bash bindings/kotlin/run-tests.sh
    bash bindings/swift/check.sh

# Coverage-guided fuzzing, each target for `seconds` (nightly + cargo-fuzz, installed if missing).
fuzz seconds="300":
    FUZZ_SECONDS={{seconds}} bash fuzz/run-short.sh

# Benchmarks (criterion); see docs/benchmarks.md.
bench:
    cargo bench -p mc-runtime

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings

# The development IDP alone on a fixed port.
idp addr="127.0.0.1:8080":
    cargo run -p mc-devidp -- --addr {{addr}}

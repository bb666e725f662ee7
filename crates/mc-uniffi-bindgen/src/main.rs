//! The UniFFI binding generator for `mc-ffi`, built from the same uniffi version as the library.
//!
//! Why a crate of its own: as a workspace member it is built by `cargo test --workspace` with
//! the workspace's feature set, so the binding scripts (`bindings/*/run-tests.sh`,
//! `bindings/swift/check.sh`) run this binary and load the `libmc_ffi.so` that build made,
//! instead of a second `cargo build -p mc-ffi --features cli` that unifies features differently
//! and compiles dozens of dependencies again (see docs/decisions/0007-one-build-for-the-tests.md).
//! mc-ffi's own `uniffi-bindgen` binary (feature `cli`) stays for maturin's wheel build.
//!
//! `mc-uniffi-bindgen generate --library <libmc_ffi.so> --language kotlin|swift|python --out-dir <dir>`
//!
//! Touches nothing but its arguments: no runtime code, no secrets.

fn main() {
    uniffi::uniffi_bindgen_main()
}

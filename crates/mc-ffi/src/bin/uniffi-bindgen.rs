//! The UniFFI binding generator, built from the same uniffi version as `mc_ffi`:
//! `cargo run -p mc-ffi --features cli --bin uniffi-bindgen -- generate --library <libmc_ffi.so> --language swift --out-dir <dir>`.

fn main() {
    uniffi::uniffi_bindgen_main()
}

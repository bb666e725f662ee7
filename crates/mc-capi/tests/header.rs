//! The committed C header is what cbindgen makes of `src/lib.rs` today.
//! To accept a change: `MC_UPDATE_HEADER=1 cargo test -p mc-capi --test header`.

use std::path::{Path, PathBuf};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn committed_header() -> PathBuf {
    crate_dir().join("../../bindings/c/include/mc_runtime.h")
}

fn generate() -> String {
    let dir = crate_dir();
    let config =
        cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml reads");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("the header is UTF-8")
}

#[test]
fn committed_header_matches_the_generated_one() {
    let generated = generate();
    let path = committed_header();
    if std::env::var_os("MC_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date with crates/mc-capi/src/lib.rs; regenerate it with \
         MC_UPDATE_HEADER=1 cargo test -p mc-capi --test header, and commit it",
        Path::new("bindings/c/include/mc_runtime.h").display()
    );
}

#[test]
fn header_declares_the_whole_api() {
    let header = generate();
    for name in [
        "typedef struct mc_runtime mc_runtime;",
        "mc_runtime_new(",
        "mc_runtime_post_event(",
        "mc_runtime_post_event_blocking(",
        "mc_runtime_add_listener(",
        "mc_runtime_remove_listener(",
        "mc_runtime_free(",
        "mc_string_free(",
        "mc_last_error_message(",
        "typedef void (*mc_result_callback)",
        "typedef void (*mc_event_callback)",
        "#define MC_OK 0",
        "THREAD RULES",
    ] {
        assert!(
            header.contains(name),
            "the header lacks `{name}`:\n{header}"
        );
    }
}

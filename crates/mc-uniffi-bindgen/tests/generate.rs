//! The generator reads the interface of the `libmc_ffi.so` of this very build and writes the
//! Python, Kotlin and Swift modules the binding scripts use; it refuses a file that is not a
//! UniFFI library. This test is also why `cargo test --workspace` builds the binary (cargo
//! builds a package's binaries for its integration tests), which the scripts then run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const GENERATOR: &str = env!("CARGO_BIN_EXE_mc-uniffi-bindgen");

/// The libmc_ffi.so cargo built (as a dev-dependency, with all of mc-ffi's crate types) for
/// this test binary, checked to come from the same rustc run as the rlib this test links.
fn library() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe.parent().expect("the test binary's directory");
    let library = deps.join("libmc_ffi.so");
    let rlib = deps.join("libmc_ffi.rlib");
    let modified = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .unwrap_or_else(|e| panic!("no {} ({e}): run through `cargo test`", path.display()))
    };
    let (library_at, rlib_at) = (modified(&library), modified(&rlib));
    let apart = library_at
        .duration_since(rlib_at)
        .unwrap_or_else(|e| e.duration());
    assert!(
        apart < Duration::from_secs(60),
        "{} is not from the build of {}: run `cargo test` again",
        library.display(),
        rlib.display()
    );
    library
}

fn generate(library: &Path, language: &str, out: &Path) -> Output {
    Command::new(GENERATOR)
        .args([
            "generate",
            "--no-format",
            "--language",
            language,
            "--library",
        ])
        .arg(library)
        .arg("--out-dir")
        .arg(out)
        .output()
        .expect("the generator runs")
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn generates_the_three_languages_from_this_build() {
    let library = library();
    let out = tempfile::tempdir().expect("a temporary directory");
    for language in ["python", "kotlin", "swift"] {
        let output = generate(&library, language, out.path());
        assert!(
            output.status.success(),
            "{language}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let python = read(out.path().join("mc_runtime.py"));
    assert!(python.contains("class MasterController"), "Python module");
    let kotlin = read(out.path().join("uniffi/mc_runtime/mc_runtime.kt"));
    assert!(kotlin.contains("class MasterController"), "Kotlin file");
    let swift = read(out.path().join("mc_runtime.swift"));
    assert!(swift.contains("open class MasterController"), "Swift file");
}

#[test]
fn refuses_a_file_that_is_not_a_uniffi_library() {
    let out = tempfile::tempdir().expect("a temporary directory");
    let not_a_library = out.path().join("libnot_uniffi.so");
    std::fs::write(&not_a_library, b"\x7fELF but not really").expect("written");
    let output = generate(&not_a_library, "python", out.path());
    assert!(!output.status.success(), "accepted a non-library");
    assert!(!out.path().join("mc_runtime.py").exists());
}

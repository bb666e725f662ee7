//! bindings/c/lifecycle.c, built with the machine's C compiler against this crate's shared
//! library and run against a real development IDP on 127.0.0.1: the whole lifecycle through
//! the C API, checked by its exit code and output, and at the IDP (the device's registration
//! is gone after DeleteUserEvent).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The directory of the libmc_capi.so that `cargo test` built for this very test binary.
///
/// The crate is a `cdylib` as well as an `rlib`, and cargo builds a library target with all
/// its crate types in one rustc run: the `cargo test` that built this test (which links the
/// rlib) wrote libmc_capi.so beside it in `deps/`, from the same sources and with the same
/// features; a changed source makes cargo rebuild both before it runs this test. No nested
/// `cargo build` (with `-p` cargo unifies other features and built a second copy of the
/// dependencies: 300-500 s on a cold target). Checked here: the library is the one of this
/// build, so a changed C ABI is never tested against an old library.
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe
        .parent()
        .expect("the test binary's directory")
        .to_path_buf();
    let library = deps.join("libmc_capi.so");
    let rlib = deps.join("libmc_capi.rlib");
    let modified = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .unwrap_or_else(|e| {
                panic!(
                    "no {} ({e}): run this test through `cargo test -p mc-capi`, which builds it",
                    path.display()
                )
            })
    };
    let (library_at, rlib_at, exe_at) = (modified(&library), modified(&rlib), modified(&exe));
    // The shared library and the rlib come out of one rustc run, seconds apart at most.
    let apart = library_at
        .duration_since(rlib_at)
        .unwrap_or_else(|e| e.duration());
    assert!(
        apart < Duration::from_secs(60),
        "{} and {} are {apart:?} apart: not one build; run `cargo test -p mc-capi` again",
        library.display(),
        rlib.display()
    );
    // This test binary was linked after that run; a library rebuilt since (by another cargo
    // command, other features) is not the one this test's Rust side was built with.
    assert!(
        exe_at >= rlib_at,
        "{} was rebuilt after this test binary: run `cargo test -p mc-capi` again",
        library.display()
    );
    deps
}

fn compile_lifecycle(out_dir: &Path) -> PathBuf {
    let exe = out_dir.join("lifecycle");
    let lib = library_dir();
    let c = repo_root().join("bindings/c");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let output = Command::new(&compiler)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg("-I")
        .arg(c.join("include"))
        .arg(c.join("lifecycle.c"))
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", lib.display()))
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lmc_capi", "-lpthread"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{compiler}`: {e}"));
    assert!(
        output.status.success(),
        "lifecycle.c does not compile:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    exe
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_c_program_runs_the_lifecycle_against_the_dev_idp() {
    let idp = mc_testkit::idp().await;
    let work = tempfile::tempdir().unwrap();
    let exe = compile_lifecycle(work.path());
    let store = work.path().join("store");
    let url = idp.base_url();

    let run = tokio::task::spawn_blocking(move || {
        // Not cargo's LD_LIBRARY_PATH: it names target/debug, whose libmc_capi.so may be an
        // older build, and it comes before the program's RUNPATH (the library of this build).
        Command::new(&exe)
            .env_remove("LD_LIBRARY_PATH")
            .arg(&url)
            .arg(&store)
            .output()
            .unwrap()
    });
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("lifecycle finished in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "lifecycle failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for line in [
        "mc_runtime 0.1.0",
        "ok misuse",
        "ok start ACTIVATION_REQUIRED",
        "ok enroll NO (listener saw LoginTokenClaimsAvailableEvent)",
        "ok exchange demo-api",
        "ok http 200",
        "ok invalid requests answered INVALID_PARAMETER",
        "ok restart LOGIN_REQUIRED, offline login OK",
        "ok reopen LOGIN_REQUIRED, login, delete ACTIVATION_REQUIRED",
        "lifecycle: PASS",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "no `{line}` in:\n{stdout}"
        );
    }
    assert!(stdout.contains("none after removal"), "{stdout}");
    // The device registered itself and deleted its registration again.
    let stats = idp.stats();
    assert_eq!(stats.registration, 1, "{stats:?}");
    assert_eq!(stats.registration_delete, 1, "{stats:?}");
    assert_eq!(stats.echo, 1, "{stats:?}");
}

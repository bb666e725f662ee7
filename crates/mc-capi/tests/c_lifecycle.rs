//! bindings/c/lifecycle.c, built with the machine's C compiler against this crate's shared
//! library and run against a real development IDP on 127.0.0.1: the whole lifecycle through
//! the C API, checked by its exit code and output, and at the IDP (the device's registration
//! is gone after DeleteUserEvent).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mc_devidp::{DevIdp, DevIdpConfig};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// target/<profile>, where cargo put libmc_capi.so for this test run.
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let dir = deps.parent().unwrap().to_path_buf();
    // `cargo test` builds this crate only as an rlib for its tests; the C program links the
    // shared library, so build it (same profile, same target directory) on every run: cargo's
    // own fingerprints make that a no-op when it is fresh, and a changed C ABI is never tested
    // against an old library.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet", "-p", "mc-capi", "--lib"])
        .current_dir(repo_root());
    if dir.ends_with("release") {
        build.arg("--release");
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "building libmc_capi.so failed");
    assert!(
        dir.join("libmc_capi.so").exists(),
        "no libmc_capi.so in {}",
        dir.display()
    );
    dir
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
    let idp = DevIdp::start("127.0.0.1:0".parse().unwrap(), DevIdpConfig::default())
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let exe = compile_lifecycle(work.path());
    let store = work.path().join("store");
    let url = idp.base_url();

    let run = tokio::task::spawn_blocking(move || {
        Command::new(&exe).arg(&url).arg(&store).output().unwrap()
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

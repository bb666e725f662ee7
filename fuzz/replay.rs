//! The fuzz targets' checks (`fuzz/checks/`) on every committed seed (`fuzz/seeds/<target>/`,
//! including the `crash-*` inputs that led to fixes), as an ordinary stable test: it runs in
//! every `cargo test --workspace` with the build that step makes anyway, so a regression on a
//! known input fails the suite without the nightly + sanitizer build of `fuzz/run-short.sh`.
//! Registered as test `fuzz_seeds` of mc-testkit (a dev-only crate that may enable the
//! `fuzzing` features of mc-oidc and mc-store). Why: docs/decisions/0008-fuzzing-in-ci.md.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

#[path = "checks/jose.rs"]
mod jose;
#[path = "checks/oidc_responses.rs"]
mod oidc_responses;
#[path = "checks/request_json.rs"]
mod request_json;
#[path = "checks/store_records.rs"]
mod store_records;

fn seeds(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target)
}

/// Runs `check` on every file of `seeds(target)`: the number of inputs, or the names of the
/// inputs whose check panicked.
fn replay(target: &str, check: fn(&[u8])) -> Result<usize, Vec<String>> {
    let dir = seeds(target);
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    inputs.sort();
    let failed: Vec<String> = inputs
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            catch_unwind(AssertUnwindSafe(|| check(&data))).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    if failed.is_empty() {
        Ok(inputs.len())
    } else {
        Err(failed)
    }
}

/// Every target has seeds (an empty directory would make its replay pass on nothing) and
/// none of them fails its check.
fn replay_all_seeds(target: &str, check: fn(&[u8])) {
    match replay(target, check) {
        Ok(count) => assert!(count >= 3, "{target}: only {count} seed(s) to replay"),
        Err(failed) => panic!("{target}: the check fails on {failed:#?}"),
    }
}

#[test]
fn jose_seeds() {
    replay_all_seeds("jose", jose::check);
}

#[test]
fn oidc_responses_seeds() {
    replay_all_seeds("oidc_responses", oidc_responses::check);
}

#[test]
fn request_json_seeds() {
    replay_all_seeds("request_json", request_json::check);
}

#[test]
fn store_records_seeds() {
    replay_all_seeds("store_records", store_records::check);
}

/// The replay names the input a check fails on (here: a check that refuses every input
/// longer than 4 bytes, which every jose seed is) instead of passing or stopping at the first.
#[test]
fn replay_names_every_failing_input() {
    let failed = replay("jose", |data| assert!(data.len() <= 4)).expect_err("seeds fail");
    assert_eq!(
        failed.len(),
        std::fs::read_dir(seeds("jose")).unwrap().count()
    );
    assert!(failed.iter().all(|name| name.contains("fuzz/seeds/jose/")));
}

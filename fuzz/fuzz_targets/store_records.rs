//! libFuzzer entry of `checks/store_records.rs` (what it feeds and checks is documented there); the
//! same check replays the committed seeds in the stable test suite (`fuzz/replay.rs`).
#![no_main]

#[path = "../checks/store_records.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));

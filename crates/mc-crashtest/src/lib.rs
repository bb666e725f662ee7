//! Crash-safety harness for mc-store (issue 3): does a store survive SIGKILL at any instant?
//!
//! What it is for: the binary `mc-crash-worker` loops enroll / offline login / refresh-token
//! rotation / wrong password / mode switch / delete (with its IDP deletion queued in the same
//! commit) / drain of that queue on a real store directory (redb by default, sled with the `sled`
//! feature), journaling every operation it was told succeeded; the driver test
//! (`tests/crash_kills.rs`) kills it with SIGKILL at random moments, then checks the store
//! against the journal ([`check::check_store`]). See docs/security.md, "Crash-safety harness".
//!
//! What it must not touch: anything outside the temporary directories it is given; it is a
//! test tool, never shipped (`publish = false`). Its passwords and keys are throwaway values
//! made by the harness and written to the journal in clear on purpose.

pub mod check;
pub mod journal;
pub mod model;
pub mod rng;
pub mod store_ops;

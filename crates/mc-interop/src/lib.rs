//! Interoperability with real identity providers.
//!
//! What it is for: starting Keycloak and node-oidc-provider on 127.0.0.1 (fetched through
//! Maven and npm by the tests themselves) and running the runtime's whole lifecycle against
//! them, so the claim "works with stock IDPs" is checked on every CI run.
//!
//! What it must not touch: the runtime's code. Differences between IDPs are settings of the
//! runtime (issuer template, clock tolerance, DPoP), never forks.

pub mod keycloak;
pub mod node;

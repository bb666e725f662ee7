//! The actors of the bus. Each owns one room and is the only place its request types are
//! handled (the controller routes to them; see `crate::controller::Controller::route`):
//!
//! | actor | file | handles |
//! |---|---|---|
//! | enrollment | `enrollment.rs` | EnrollAnonymousUserEvent, DeleteUserEvent (the registration's life) |
//! | login | `login.rs` | OfflineLoginEvent |
//! | token exchange | `token_exchange.rs` | ExchangeIamTokenEvent, ClearIamTokenCacheEvent, DeleteIamTokenByAudienceEvent |
//! | http proxy | `http_proxy.rs` | CreateHttpCommonRequest |
//! | storage | `storage.rs` | every read and write of enrolled users (on its own thread: blocking I/O) |
//!
//! Start, Restart, GetInformation, GetState, GetIamAccessTokenClaims and EnableAuthenticationMode
//! touch only the state the controller owns, so the controller answers them itself.

pub mod enrollment;
pub mod http_proxy;
pub mod login;
pub mod storage;
pub mod token_exchange;

#![cfg_attr(feature = "qr", doc = include_str!("../README.md"))]
#![cfg_attr(
    not(feature = "qr"),
    doc = "totp-mfa: RFC 6238 TOTP second factor. Build with the `qr` feature for the full guide."
)]
#![forbid(unsafe_code, unused_must_use)]
#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "async")]
mod async_mfa;
mod audit;
mod clock;
mod engine;
mod error;
mod flow;
pub mod manual;
mod mfa;
pub mod otp;
#[cfg(feature = "qr")]
mod qr;
mod recovery;
mod seal;
mod secret;
mod store;
pub mod testing;
mod time;
mod uri;
mod user;

#[cfg(feature = "async")]
pub use async_mfa::AsyncMfa;
pub use audit::{AuditEvent, AuditKind, EventSink, NoEvents};
pub use clock::{Clock, ClockError, ManualClock, SystemClock};
pub use error::{Error, Retry, WrongCodeHint};
pub use flow::policy::{Policy, Throttle};
pub use flow::{
    Authorization, Challenge, Enrollment, Factor, LoginStart, MfaStatus, Reauth, SecondFactor,
};
pub use mfa::Mfa;
#[cfg(feature = "qr")]
pub use qr::{QrError, TerminalBackground};
pub use recovery::{RecoveryCode, RecoveryCodeError, RecoveryCodes};
pub use seal::SealError;
#[cfg(feature = "encryption")]
pub use seal::{SealingKey, SealingKeys};
pub use secret::{Secret, SecretError};
#[cfg(feature = "conformance")]
pub use store::conformance;
#[cfg(feature = "async")]
pub use store::{AsyncStore, BlockingError, BlockingStore};
pub use store::{CasOutcome, MemoryStore, PoisonedStore, Store, StoredRecord};
#[cfg(feature = "postgres")]
pub use store::{PostgresError, PostgresStore};
#[cfg(feature = "sqlite")]
pub use store::{SqliteError, SqliteStore};
pub use uri::{OtpAuth, OtpKind, ParamReason, ProvisioningUri, UriError};
pub use user::UserId;
/// Buffers holding secrets (URIs, keys, QR images) are wiped on drop.
pub use zeroize::Zeroizing;

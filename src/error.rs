//! The crate's error type. Messages carry the help a user needs and never a secret, a
//! submitted code or a recovery code (SEC-10).

use core::fmt;

use thiserror::Error;

use crate::clock::ClockError;
use crate::otp::{CodeError, OtpError, ParamError};
use crate::recovery::RecoveryCodeError;
use crate::secret::SecretError;
use crate::uri::UriError;

/// Why a code that was well-formed did not verify, as far as the verifier can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WrongCodeHint {
    /// The most common cause: the device's clock is off, or the code expired while typing.
    CheckDeviceClock,
    /// During enrollment the code matched a time step well outside the window: the device's
    /// clock seems off by about this many seconds (positive: ahead).
    ClockOffBy {
        /// Estimated offset in seconds.
        seconds: i64,
    },
    /// During enrollment the code matched the default parameters (SHA-1, 6 digits, 30 s)
    /// instead of the configured ones: the app probably ignores `algorithm`, `digits` or
    /// `period` (SEC-29).
    AppIgnoresParameters,
}

impl fmt::Display for WrongCodeHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WrongCodeHint::CheckDeviceClock => f.write_str(
                "check that the clock on your authenticator device is set automatically, \
                 and enter the code currently shown",
            ),
            WrongCodeHint::ClockOffBy { seconds } => {
                let (dir, abs) = if *seconds >= 0 {
                    ("ahead", seconds.unsigned_abs())
                } else {
                    ("behind", seconds.unsigned_abs())
                };
                write!(
                    f,
                    "your device's clock seems about {} {dir}: set it to update automatically \
                     and try again",
                    human_duration(abs)
                )
            }
            WrongCodeHint::AppIgnoresParameters => f.write_str(
                "possible authenticator mismatch: your app seems to ignore this service's \
                 algorithm, digits or period setting; try another authenticator app",
            ),
        }
    }
}

/// Everything that can go wrong. Input errors and refused codes leave stored state as it
/// was, except that a refused code is counted as a failed attempt.
///
/// ```
/// use totp_mfa::{Error, WrongCodeHint};
/// let e = Error::WrongCode { attempts_left: 4, retry: None, hint: WrongCodeHint::CheckDeviceClock };
/// assert!(e.to_string().contains("clock"));
/// assert!(e.is_refused_factor());
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    // --- Input that is not shaped right: nothing is counted or stored. ---
    /// The typed one-time code is malformed.
    #[error("invalid code: {0}")]
    CodeFormat(#[from] CodeError),
    /// The typed recovery code is malformed.
    #[error("invalid recovery code: {0}")]
    RecoveryCodeFormat(#[from] RecoveryCodeError),
    /// A secret could not be decoded or generated.
    #[error("invalid secret: {0}")]
    Secret(#[from] SecretError),
    /// A provisioning URI could not be built or parsed.
    #[error("invalid otpauth URI: {0}")]
    Uri(#[from] UriError),
    /// A QR code could not be rendered.
    #[cfg(feature = "qr")]
    #[error("QR code: {0}")]
    Qr(#[from] crate::QrError),
    /// A user id is empty, too long, or holds a NUL character.
    #[error("invalid user id: it must be 1 to 255 bytes, without NUL characters")]
    UserId,
    /// A parameter is out of range.
    #[error("invalid parameter: {0}")]
    Param(#[from] ParamError),
    /// A recovery code was typed where an app code was expected, or the other way round.
    /// Nothing was checked or counted.
    #[error("{}", wrong_field_text(*.entered))]
    WrongField {
        /// What the text looks like.
        entered: crate::Factor,
    },

    // --- A factor was checked and refused: counted as a failed attempt. ---
    /// The code is wrong.
    #[error("wrong code: {hint}. {}", attempts_text(*.attempts_left, *.retry))]
    WrongCode {
        /// Failed attempts left before the second factor locks.
        attempts_left: u32,
        /// When the next attempt is allowed, if a delay now applies.
        retry: Option<Retry>,
        /// The likely cause.
        hint: WrongCodeHint,
    },
    /// The code was right but already used; each code works once (RFC 6238 section 5.2).
    #[error(
        "this code was already used: wait for the next code to appear. {}",
        attempts_text(*.attempts_left, *.retry)
    )]
    CodeAlreadyUsed {
        /// Failed attempts left before the second factor locks.
        attempts_left: u32,
        /// When the next attempt is allowed, if a delay now applies.
        retry: Option<Retry>,
    },
    /// The recovery code matches none of the unused ones (each works once).
    #[error(
        "wrong recovery code, or one already used: check it for typos, or try another of \
         your codes. {}",
        attempts_left_text(*.attempts_left, *.retry)
    )]
    WrongRecoveryCode {
        /// Failed attempts left before the second factor locks.
        attempts_left: u32,
        /// When the next attempt is allowed, if a delay now applies.
        retry: Option<Retry>,
    },

    /// The code confirming a new enrollment is wrong. Nothing is locked: after the last
    /// attempt the setup must be started again.
    #[error("wrong code: {hint}. {}", setup_attempts_text(*.attempts_left))]
    WrongSetupCode {
        /// Attempts left for this setup.
        attempts_left: u32,
        /// The likely cause.
        hint: WrongCodeHint,
    },

    // --- Refused before checking anything. ---
    /// Too many recent failures: wait, then try again. Nothing was checked or counted.
    #[error(
        "too many wrong codes: wait and try again {retry}. Lost your device? Use one of your \
         recovery codes when the wait is over."
    )]
    Throttled {
        /// When the next attempt is allowed.
        retry: Retry,
    },
    /// Too many consecutive failures: the second factor is locked until the service unlocks
    /// it after checking the user's identity (NIST SP 800-63B section 5.2.2).
    #[error(
        "too many wrong codes: two-factor sign-in is locked for this account; \
         contact support to verify your identity and unlock it"
    )]
    Locked,
    /// No enrollment is waiting for confirmation.
    #[error("no MFA enrollment is in progress: start enabling MFA again")]
    NoPendingEnrollment,
    /// The pending enrollment expired before it was confirmed.
    #[error("the MFA setup expired before it was confirmed: start enabling MFA again")]
    EnrollmentExpired,
    /// Too many wrong codes for this enrollment; it must be started again.
    #[error(
        "too many wrong codes for this MFA setup: start again, and check the clock on your \
         device"
    )]
    EnrollmentAttemptsExhausted,
    /// MFA is already active; disable it (with a fresh second factor) before enrolling again.
    #[error("MFA is already enabled for this account")]
    AlreadyEnabled,
    /// MFA is not active for this user.
    #[error("MFA is not enabled for this account")]
    NotEnabled,
    /// The login challenge is unknown, already used, or belongs to someone else.
    #[error("this sign-in attempt is not valid any more: sign in again")]
    ChallengeInvalid,
    /// The login challenge expired.
    #[error("this sign-in attempt expired: sign in again")]
    ChallengeExpired,
    /// The step-up token is unknown, used or expired.
    #[error(
        "this action needs a fresh confirmation: enter a code from your authenticator app, or one of your recovery codes"
    )]
    StepUpInvalid,

    // --- Infrastructure: the operation failed closed. ---
    /// The store failed; nothing was granted (SEC-44).
    #[error("the MFA store failed")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// A stored record could not be decoded; nothing was granted.
    #[error("a stored MFA record is corrupt ({0})")]
    CorruptRecord(&'static str),
    /// A sealed secret in a stored record could not be opened; nothing was granted.
    #[error("a stored MFA secret could not be unsealed: {0}")]
    Sealing(crate::SealError),
    /// Concurrent updates kept conflicting; nothing was granted. Safe to retry.
    #[error("too many concurrent updates to this account: try again")]
    Contention,
    /// Work moved off the async runtime (recovery-code hashing, a blocking store call) did
    /// not finish: the runtime is shutting down, the task panicked, or the async face was
    /// awaited outside a tokio runtime. Nothing was granted.
    #[error("a background task of the MFA service did not finish")]
    Background(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The clock could not be read.
    #[error(transparent)]
    Clock(#[from] ClockError),
    /// The random number generator failed.
    #[error("the random number generator failed")]
    Rng,
    /// A code could not be computed.
    #[error(transparent)]
    Otp(#[from] OtpError),
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(&'static str),
}

impl Error {
    /// True when a factor was checked and refused (and counted as a failed attempt).
    #[must_use]
    pub fn is_refused_factor(&self) -> bool {
        matches!(
            self,
            Error::WrongCode { .. }
                | Error::CodeAlreadyUsed { .. }
                | Error::WrongRecoveryCode { .. }
                | Error::WrongSetupCode { .. }
        )
    }

    /// True when the input was malformed and nothing was checked or counted.
    #[must_use]
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::CodeFormat(_)
                | Error::RecoveryCodeFormat(_)
                | Error::Secret(_)
                | Error::Uri(_)
                | Error::UserId
                | Error::Param(_)
                | Error::WrongField { .. }
        )
    }

    /// True for failures of the store, clock or random generator: the operation failed
    /// closed and may be retried later.
    #[must_use]
    pub fn is_infrastructure(&self) -> bool {
        matches!(
            self,
            Error::Storage(_)
                | Error::CorruptRecord(_)
                | Error::Sealing(_)
                | Error::Contention
                | Error::Background(_)
                | Error::Clock(_)
                | Error::Rng
                | Error::Otp(_)
        )
    }
}

fn attempts_text(left: u32, retry: Option<Retry>) -> String {
    let mut s = attempts_left_text(left, retry);
    if left > 0 {
        s.push_str(" Lost your device? Use one of your recovery codes.");
    }
    s
}

fn attempts_left_text(left: u32, retry: Option<Retry>) -> String {
    let mut s = match left {
        0 => {
            return "No attempts left: two-factor sign-in is now locked for this account; \
                    contact support to verify your identity and unlock it."
                .to_owned();
        }
        1 => "1 attempt left before two-factor sign-in locks".to_owned(),
        n => format!("{n} attempts left before two-factor sign-in locks"),
    };
    if let Some(retry) = retry {
        s.push_str(&format!("; you can try again {retry}"));
    }
    s.push('.');
    s
}

/// When a throttled user may try again: both the moment and the wait, so a message can say
/// "in 2 minutes" and a UI can count down.
///
/// ```
/// use totp_mfa::Retry;
/// let r = Retry { at: 1_800_000_120, wait_seconds: 120 };
/// assert_eq!(r.to_string(), "in 2 minutes (at 2027-01-15T08:02:00Z)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// The Unix time from which the next attempt is allowed.
    pub at: u64,
    /// Seconds to wait from the moment of the error.
    pub wait_seconds: u64,
}

impl fmt::Display for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "in {} (at {})",
            human_duration(self.wait_seconds),
            crate::time::rfc3339(self.at)
        )
    }
}

fn wrong_field_text(entered: crate::Factor) -> &'static str {
    match entered {
        crate::Factor::RecoveryCode => {
            "this looks like a recovery code: choose \"use a recovery code\" and enter it there"
        }
        crate::Factor::Totp => {
            "this looks like a code from your authenticator app: enter it in the app code field, \
             or enter one of your recovery codes here"
        }
    }
}

fn setup_attempts_text(left: u32) -> String {
    match left {
        0 => "No attempts left for this setup: start enabling MFA again.".to_owned(),
        1 => "1 attempt left for this setup.".to_owned(),
        n => format!("{n} attempts left for this setup."),
    }
}

fn human_duration(seconds: u64) -> String {
    if seconds == 1 {
        "1 second".to_owned()
    } else if seconds < 90 {
        format!("{seconds} seconds")
    } else if seconds < 90 * 60 {
        format!("{} minutes", (seconds + 30) / 60)
    } else {
        format!("{} hours", (seconds + 1800) / 3600)
    }
}

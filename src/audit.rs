//! Audit events: what happened to a user's second factor, for logs, metrics and
//! notifications. Events carry no secret, code, recovery code or token (SEC-10, SEC-46).

use crate::UserId;
use crate::flow::Factor;

/// One thing that happened, after its record change (if any) was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Whose second factor.
    pub user: UserId,
    /// When (Unix seconds, from the service's clock).
    pub at: u64,
    /// What.
    pub kind: AuditKind,
}

/// What happened. Hosts typically log every event, count them in metrics, and notify the
/// user out of band for [`AuditKind::MfaActivated`], [`AuditKind::RecoveryCodeUsed`],
/// [`AuditKind::RecoveryCodesRegenerated`], [`AuditKind::MfaDisabled`],
/// [`AuditKind::Locked`] and [`AuditKind::ReplayRefused`] (NIST SP 800-63B-4 section 4.2
/// asks for notifications on account-recovery events; SEC-25, SEC-26, SEC-36, SEC-37).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditKind {
    /// An enrollment began (a new pending secret).
    EnrollmentStarted,
    /// A confirmation code for a pending enrollment was wrong.
    SetupCodeRefused {
        /// Attempts left for this setup.
        attempts_left: u32,
    },
    /// MFA became active.
    MfaActivated {
        /// The new credential's generation.
        generation: u64,
    },
    /// A login completed with a second factor.
    LoginSucceeded {
        /// Which factor.
        factor: Factor,
    },
    /// A second factor was checked and refused (the password was right: tell the user if
    /// this repeats, SEC-34).
    SecondFactorRefused {
        /// What was entered.
        factor: Factor,
        /// Attempts left before the lock.
        attempts_left: u32,
    },
    /// A TOTP code that was already used was presented again: possibly someone who saw the
    /// code (SEC-20). Counted as a failure.
    ReplayRefused {
        /// Attempts left before the lock.
        attempts_left: u32,
    },
    /// An attempt was refused unchecked because a delay applies.
    Throttled {
        /// When the next attempt is allowed (Unix seconds).
        retry_at: u64,
    },
    /// The failure count reached the limit: two-factor sign-in is locked until
    /// [`Mfa::unlock`](crate::Mfa::unlock).
    Locked,
    /// An attempt was refused because the second factor is locked.
    RefusedWhileLocked,
    /// A recovery code was used (an account-recovery event).
    RecoveryCodeUsed {
        /// Unused codes left.
        remaining: usize,
        /// True when they are running low: prompt the user to regenerate them.
        running_low: bool,
    },
    /// All recovery codes were replaced.
    RecoveryCodesRegenerated,
    /// MFA was turned off (or reset after a lost device).
    MfaDisabled,
    /// The host cleared a lock or delay.
    Unlocked,
}

/// Receives audit events. Implement it to log, count, or e-mail the user; keep it fast (it
/// runs on the request's thread) and never let it fail the request.
///
/// ```
/// use std::sync::Mutex;
/// use totp_mfa::{AuditEvent, AuditKind, EventSink};
///
/// #[derive(Default)]
/// struct Log(Mutex<Vec<AuditEvent>>);
///
/// impl EventSink for Log {
///     fn record(&self, event: &AuditEvent) {
///         if let Ok(mut log) = self.0.lock() {
///             log.push(event.clone());
///         }
///     }
/// }
/// ```
pub trait EventSink: Send + Sync {
    /// Called once per event, after the change it reports was stored.
    fn record(&self, event: &AuditEvent);
}

/// Discards every event (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn record(&self, _: &AuditEvent) {}
}

impl<E: EventSink + ?Sized> EventSink for std::sync::Arc<E> {
    fn record(&self, event: &AuditEvent) {
        (**self).record(event);
    }
}

//! Injected time: the flows never read the clock themselves (SEC-17, SEC-45).

use std::sync::atomic::{AtomicU64, Ordering};

use thiserror::Error;

/// The clock could not give a usable time.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ClockError {
    /// The system clock reads a time before 1970.
    #[error("the server clock is set before 1970")]
    BeforeUnixEpoch,
}

/// A source of the current Unix time in seconds. The verifier's time always comes from here,
/// never from the request (SEC-17).
///
/// ```
/// use totp_mfa::{Clock, ManualClock};
/// let clock = ManualClock::new(1_700_000_000);
/// clock.advance(30);
/// assert_eq!(clock.now(), Ok(1_700_000_030));
/// ```
pub trait Clock: Send + Sync {
    /// The current Unix time in whole seconds.
    ///
    /// # Errors
    /// [`ClockError`] when no sensible time can be read.
    fn now(&self) -> Result<u64, ClockError>;
}

/// The system's wall clock.
///
/// ```
/// use totp_mfa::{Clock, SystemClock};
/// assert!(SystemClock.now().unwrap() > 1_600_000_000);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Result<u64, ClockError> {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .map_err(|_| ClockError::BeforeUnixEpoch)
    }
}

/// A clock that moves only when told to: for tests and simulations, to the second.
///
/// ```
/// use totp_mfa::{Clock, ManualClock};
/// let clock = ManualClock::new(59);
/// clock.set(1_111_111_109);
/// assert_eq!(clock.now(), Ok(1_111_111_109));
/// ```
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock stopped at `unix` seconds.
    #[must_use]
    pub fn new(unix: u64) -> Self {
        ManualClock(AtomicU64::new(unix))
    }

    /// Sets the time.
    pub fn set(&self, unix: u64) {
        self.0.store(unix, Ordering::SeqCst);
    }

    /// Moves the time forward, saturating at `u64::MAX`.
    pub fn advance(&self, seconds: u64) {
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(seconds))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Result<u64, ClockError> {
        Ok(self.0.load(Ordering::SeqCst))
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Result<u64, ClockError> {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Result<u64, ClockError> {
        (**self).now()
    }
}

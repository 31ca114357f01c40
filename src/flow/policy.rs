//! The rules a deployment can tune: window, lifetimes, throttling, recovery codes.

use crate::error::Error;
use crate::otp::{TotpParams, Window};
use crate::recovery::{HashedRecoveryCodes, RecoveryCodes};

/// How failed second-factor attempts are slowed down and finally locked (SEC-14, SEC-19).
///
/// Failures are counted per user, across every login challenge, for TOTP and recovery codes
/// alike (SEC-24); a correct password never resets the count, only a successful second
/// factor does (SEC-34). After `free_failures` failures each further one imposes a delay
/// that doubles from `base_delay` up to `max_delay`; at `lock_after` consecutive failures the
/// second factor locks until the host calls [`Mfa::unlock`](crate::Mfa::unlock) after
/// verifying the user's identity out of band.
///
/// # The default policy's odds
/// A guesser who knows the password gets at most `lock_after` = 10 guesses in total. With 6
/// digits and a window of ±1 step, each guess matches one of at most 3 valid codes, so the
/// chance of success before the lock is at most `1 - (1 - 3/10^6)^10 ≈ 3.0 × 10^-5`
/// (1 in 33,000), against the ≈ 3.0 × 10^-4 that NIST SP 800-63B's ceiling of 100 attempts
/// would allow. A recovery-code guess is far weaker (80-bit codes: `10 × 2^-80` per code).
/// The 10 guesses take at least about 16 minutes: 3 free, then waits of 30 s, 1, 2, 4, 8
/// and 16 minutes... as shown in [`Throttle::delay_after`].
///
/// ```
/// use totp_mfa::Throttle;
/// let t = Throttle::default();
/// assert_eq!(t.delay_after(3), 0);
/// assert_eq!(t.delay_after(4), 30);
/// assert_eq!(t.delay_after(5), 60);
/// assert!(t.guess_probability(6, 3) < 3.1e-5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// Failures allowed without any delay.
    pub free_failures: u32,
    /// The first delay, in seconds.
    pub base_delay: u64,
    /// The longest delay, in seconds.
    pub max_delay: u64,
    /// Consecutive failures that lock the second factor (1 to 100).
    pub lock_after: u32,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            free_failures: 3,
            base_delay: 30,
            max_delay: 3600,
            lock_after: 10,
        }
    }
}

impl Throttle {
    /// NIST SP 800-63B's hard ceiling on consecutive failures.
    pub const NIST_MAX_FAILURES: u32 = 100;

    /// The delay in seconds imposed after `failures` consecutive failures.
    #[must_use]
    pub fn delay_after(&self, failures: u32) -> u64 {
        if failures <= self.free_failures {
            return 0;
        }
        let doublings = (failures - self.free_failures - 1).min(62);
        self.base_delay
            .saturating_mul(1u64 << doublings)
            .min(self.max_delay)
    }

    /// The chance that a guesser, with `lock_after` guesses, hits one of `codes_per_guess`
    /// valid codes of `digits` digits: `1 - (1 - k / 10^d)^N` (SEC-19, Annex C).
    #[must_use]
    pub fn guess_probability(&self, digits: u32, codes_per_guess: u32) -> f64 {
        let p = f64::from(codes_per_guess) / 10f64.powi(digits as i32);
        1.0 - (1.0 - p).powi(self.lock_after as i32)
    }

    fn validate(&self) -> Result<(), Error> {
        if self.lock_after == 0 || self.lock_after > Self::NIST_MAX_FAILURES {
            return Err(Error::Config(
                "lock_after must be 1 to 100 (NIST SP 800-63B)",
            ));
        }
        if self.max_delay < self.base_delay {
            return Err(Error::Config("max_delay must be at least base_delay"));
        }
        Ok(())
    }
}

/// The policy of an [`Mfa`](crate::Mfa) service.
///
/// ```
/// use totp_mfa::{Policy, otp::Window};
/// let policy = Policy::new("Example Inc")
///     .with_window(Window::new(1, 0).unwrap())
///     .with_recovery_codes(12);
/// assert!(policy.validate().is_ok());
/// assert!(Policy::new("Example").with_window(Window::symmetric(3).unwrap()).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub(crate) issuer: String,
    pub(crate) params: TotpParams,
    pub(crate) window: Window,
    pub(crate) pending_ttl: u64,
    pub(crate) confirm_attempts: u32,
    pub(crate) challenge_ttl: u64,
    pub(crate) step_up_ttl: u64,
    pub(crate) recovery_codes: usize,
    pub(crate) recovery_rounds: u32,
    pub(crate) low_recovery_codes: usize,
    pub(crate) throttle: Throttle,
    pub(crate) clock_search_seconds: u64,
}

impl Policy {
    /// The widest window a policy accepts on each side (SEC-11).
    pub const MAX_WINDOW: u32 = 2;
    /// The longest period a policy accepts (SEC-11).
    pub const MAX_PERIOD: u64 = 120;

    /// The default policy for a service named `issuer` (shown in authenticator apps): SHA-1,
    /// 6 digits, 30 s, window ±1, enrollment valid 15 minutes with 5 tries, login challenges
    /// valid 5 minutes, 10 recovery codes, and the default [`Throttle`].
    #[must_use]
    pub fn new(issuer: impl Into<String>) -> Self {
        Policy {
            issuer: issuer.into(),
            params: TotpParams::default(),
            window: Window::default(),
            pending_ttl: 15 * 60,
            confirm_attempts: 5,
            challenge_ttl: 5 * 60,
            step_up_ttl: 5 * 60,
            recovery_codes: 10,
            recovery_rounds: HashedRecoveryCodes::DEFAULT_ROUNDS,
            low_recovery_codes: 3,
            throttle: Throttle::default(),
            clock_search_seconds: 15 * 60,
        }
    }

    /// TOTP parameters for new enrollments. Non-default values are ignored by some apps
    /// (Google Authenticator ignores algorithm and period); confirmation catches that.
    #[must_use]
    pub fn with_params(mut self, params: TotpParams) -> Self {
        self.params = params;
        self
    }

    /// The verification window (at most ±2 steps).
    #[must_use]
    pub fn with_window(mut self, window: Window) -> Self {
        self.window = window;
        self
    }

    /// How long an enrollment waits for its confirmation code, in seconds.
    #[must_use]
    pub fn with_enrollment_ttl(mut self, seconds: u64) -> Self {
        self.pending_ttl = seconds;
        self
    }

    /// How long a login challenge stays valid, in seconds (at most 10 minutes; SEC-33).
    #[must_use]
    pub fn with_challenge_ttl(mut self, seconds: u64) -> Self {
        self.challenge_ttl = seconds;
        self
    }

    /// How long the step-up token of a successful login stays valid, in seconds.
    #[must_use]
    pub fn with_step_up_ttl(mut self, seconds: u64) -> Self {
        self.step_up_ttl = seconds;
        self
    }

    /// How many recovery codes are issued (1 to 32).
    #[must_use]
    pub fn with_recovery_codes(mut self, count: usize) -> Self {
        self.recovery_codes = count;
        self
    }

    /// PBKDF2 iterations for recovery-code hashes (1,000 to 1,000,000).
    #[must_use]
    pub fn with_recovery_hash_rounds(mut self, rounds: u32) -> Self {
        self.recovery_rounds = rounds;
        self
    }

    /// Below this many unused recovery codes, an authorization says they are running low.
    #[must_use]
    pub fn with_low_recovery_codes(mut self, count: usize) -> Self {
        self.low_recovery_codes = count;
        self
    }

    /// The throttling policy.
    #[must_use]
    pub fn with_throttle(mut self, throttle: Throttle) -> Self {
        self.throttle = throttle;
        self
    }

    /// The throttling policy in force.
    #[must_use]
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// The issuer name.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// How long a pending enrollment stays confirmable, in seconds.
    ///
    /// ```
    /// use totp_mfa::Policy;
    /// let p = Policy::new("Example");
    /// assert_eq!(p.enrollment_ttl(), 900);
    /// assert_eq!((p.challenge_ttl(), p.step_up_ttl()), (300, 300));
    /// assert_eq!((p.recovery_codes(), p.low_recovery_codes()), (10, 3));
    /// ```
    #[must_use]
    pub fn enrollment_ttl(&self) -> u64 {
        self.pending_ttl
    }

    /// How long a login challenge stays answerable, in seconds.
    #[must_use]
    pub fn challenge_ttl(&self) -> u64 {
        self.challenge_ttl
    }

    /// How long an [`Authorization`](crate::Authorization)'s step-up token stays usable, in
    /// seconds: its expiry is `authenticated_at() + step_up_ttl()`.
    #[must_use]
    pub fn step_up_ttl(&self) -> u64 {
        self.step_up_ttl
    }

    /// How many recovery codes a user gets.
    #[must_use]
    pub fn recovery_codes(&self) -> usize {
        self.recovery_codes
    }

    /// At or below this many recovery codes left, they are "running low".
    #[must_use]
    pub fn low_recovery_codes(&self) -> usize {
        self.low_recovery_codes
    }

    /// Checks every bound.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first value out of bounds.
    pub fn validate(&self) -> Result<(), Error> {
        if self.issuer.trim().is_empty() || self.issuer.contains(':') || self.issuer.len() > 256 {
            return Err(Error::Config(
                "the issuer must be 1 to 256 bytes without ':'",
            ));
        }
        if self.window.back() > Self::MAX_WINDOW || self.window.ahead() > Self::MAX_WINDOW {
            return Err(Error::Config(
                "the window may reach at most 2 steps each way",
            ));
        }
        if self.params.period().seconds() > Self::MAX_PERIOD {
            return Err(Error::Config("the period may be at most 120 seconds"));
        }
        if self.params.t0() != 0 {
            return Err(Error::Config(
                "T0 must be 0: otpauth URIs cannot carry another",
            ));
        }
        if !(60..=24 * 3600).contains(&self.pending_ttl) {
            return Err(Error::Config(
                "the enrollment lifetime must be 1 minute to 1 day",
            ));
        }
        if !(30..=600).contains(&self.challenge_ttl) {
            return Err(Error::Config(
                "the challenge lifetime must be 30 s to 10 minutes",
            ));
        }
        if !(30..=3600).contains(&self.step_up_ttl) {
            return Err(Error::Config("the step-up lifetime must be 30 s to 1 hour"));
        }
        if self.recovery_codes == 0 || self.recovery_codes > RecoveryCodes::MAX_COUNT {
            return Err(Error::Config("the recovery code count must be 1 to 32"));
        }
        if !(super::record::MIN_ROUNDS..=super::record::MAX_ROUNDS).contains(&self.recovery_rounds)
        {
            return Err(Error::Config(
                "recovery hash rounds must be 1,000 to 1,000,000",
            ));
        }
        if self.confirm_attempts == 0 || self.confirm_attempts > 100 {
            return Err(Error::Config("confirmation attempts must be 1 to 100"));
        }
        self.throttle.validate()
    }
}

//! Validated TOTP/HOTP parameters: algorithm, digits, period, window.

use core::fmt;
use core::str::FromStr;

use thiserror::Error;

/// A parameter outside the range this crate accepts.
///
/// ```
/// use totp_mfa::otp::{Digits, ParamError};
/// assert_eq!(Digits::new(5), Err(ParamError::Digits(5)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParamError {
    /// The digit count is not 6, 7 or 8 (RFC 4226 section 5.3; SEC-04).
    #[error("digits must be 6, 7 or 8 (got {0})")]
    Digits(u64),
    /// The period is zero or longer than [`Period::MAX_SECONDS`].
    #[error("period must be between 1 and {max} seconds (got {0})", max = Period::MAX_SECONDS)]
    Period(u64),
    /// A window side is wider than [`Window::MAX_STEPS`].
    #[error("a verification window may reach at most {max} steps each way (got {0})", max = Window::MAX_STEPS)]
    Window(u64),
    /// The algorithm name is not SHA1, SHA256 or SHA512 (SEC-05).
    #[error("unknown algorithm (expected SHA1, SHA256 or SHA512)")]
    Algorithm,
}

/// The HMAC hash function: a closed set, as RFC 6238 defines (SEC-05).
///
/// ```
/// use totp_mfa::otp::Algorithm;
/// assert_eq!("sha256".parse::<Algorithm>(), Ok(Algorithm::Sha256));
/// assert!("MD5".parse::<Algorithm>().is_err());
/// assert_eq!(Algorithm::default(), Algorithm::Sha1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// HMAC-SHA-1, the RFC 4226 default and the only one every authenticator app honors.
    #[default]
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl Algorithm {
    /// The name used in `otpauth://` URIs: `SHA1`, `SHA256` or `SHA512`.
    ///
    /// ```
    /// assert_eq!(totp_mfa::otp::Algorithm::Sha512.name(), "SHA512");
    /// ```
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }

    /// The length in bytes of this algorithm's HMAC output, which RFC 6238 section 5.1
    /// recommends as the secret length (20, 32 or 64).
    ///
    /// ```
    /// assert_eq!(totp_mfa::otp::Algorithm::Sha256.output_len(), 32);
    /// ```
    #[must_use]
    pub const fn output_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }

    pub(crate) const fn tag(self) -> u8 {
        match self {
            Algorithm::Sha1 => 1,
            Algorithm::Sha256 => 2,
            Algorithm::Sha512 => 3,
        }
    }

    pub(crate) const fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            1 => Some(Algorithm::Sha1),
            2 => Some(Algorithm::Sha256),
            3 => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

impl FromStr for Algorithm {
    type Err = ParamError;

    /// Parses `SHA1`, `SHA256` or `SHA512` in any case; also accepts `SHA-1` style dashes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() > 8 {
            return Err(ParamError::Algorithm);
        }
        let mut buf = [0u8; 8];
        let mut n = 0;
        for b in s.bytes().filter(|b| *b != b'-') {
            buf[n] = b.to_ascii_uppercase();
            n += 1;
        }
        match &buf[..n] {
            b"SHA1" => Ok(Algorithm::Sha1),
            b"SHA256" => Ok(Algorithm::Sha256),
            b"SHA512" => Ok(Algorithm::Sha512),
            _ => Err(ParamError::Algorithm),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The number of decimal digits in a code: 6, 7 or 8 (RFC 4226 section 5.3; SEC-04).
///
/// ```
/// use totp_mfa::otp::Digits;
/// assert_eq!(Digits::new(8).unwrap().get(), 8);
/// assert!(Digits::new(9).is_err());
/// assert_eq!(Digits::default(), Digits::SIX);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digits(u8);

impl Digits {
    /// Six digits, the default every app supports.
    pub const SIX: Digits = Digits(6);
    /// Seven digits.
    pub const SEVEN: Digits = Digits(7);
    /// Eight digits.
    pub const EIGHT: Digits = Digits(8);

    /// Validates a digit count.
    ///
    /// # Errors
    /// [`ParamError::Digits`] unless `n` is 6, 7 or 8.
    pub const fn new(n: u32) -> Result<Self, ParamError> {
        match n {
            6..=8 => Ok(Digits(n as u8)),
            _ => Err(ParamError::Digits(n as u64)),
        }
    }

    /// The digit count.
    #[must_use]
    pub const fn get(self) -> u32 {
        self.0 as u32
    }

    /// `10^digits`, the modulus of the truncated value.
    pub(crate) const fn modulus(self) -> u32 {
        match self.0 {
            6 => 1_000_000,
            7 => 10_000_000,
            _ => 100_000_000,
        }
    }
}

impl Default for Digits {
    fn default() -> Self {
        Digits::SIX
    }
}

/// The time step `X` of RFC 6238 in seconds: 1 to [`Period::MAX_SECONDS`], default 30.
///
/// ```
/// use totp_mfa::otp::Period;
/// assert_eq!(Period::default().seconds(), 30);
/// assert!(Period::new(0).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period(u32);

impl Period {
    /// The longest period accepted (one hour). Flows allow at most 120 s (SEC-11).
    pub const MAX_SECONDS: u32 = 3600;
    /// The RFC 6238 default, 30 seconds.
    pub const DEFAULT: Period = Period(30);

    /// Validates a period in seconds.
    ///
    /// # Errors
    /// [`ParamError::Period`] for 0 or more than [`Period::MAX_SECONDS`].
    pub const fn new(seconds: u64) -> Result<Self, ParamError> {
        if seconds == 0 || seconds > Self::MAX_SECONDS as u64 {
            Err(ParamError::Period(seconds))
        } else {
            Ok(Period(seconds as u32))
        }
    }

    /// The period in seconds.
    #[must_use]
    pub const fn seconds(self) -> u64 {
        self.0 as u64
    }
}

impl Default for Period {
    fn default() -> Self {
        Period::DEFAULT
    }
}

/// How many time steps before and after the current one a verifier accepts.
///
/// The default is one each way (RFC 6238 section 5.2 recommends at most one step of network
/// delay; SEC-11). Each side is limited to [`Window::MAX_STEPS`] so that verification work is
/// bounded.
///
/// ```
/// use totp_mfa::otp::Window;
/// let w = Window::default();
/// assert_eq!((w.back(), w.ahead()), (1, 1));
/// assert!(Window::new(0, 11).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    back: u8,
    ahead: u8,
}

impl Window {
    /// The widest side accepted by [`Window::new`].
    pub const MAX_STEPS: u32 = 10;
    /// Only the current time step.
    pub const EXACT: Window = Window { back: 0, ahead: 0 };

    /// A window of `back` earlier and `ahead` later steps.
    ///
    /// # Errors
    /// [`ParamError::Window`] when a side exceeds [`Window::MAX_STEPS`].
    pub const fn new(back: u32, ahead: u32) -> Result<Self, ParamError> {
        if back > Self::MAX_STEPS {
            return Err(ParamError::Window(back as u64));
        }
        if ahead > Self::MAX_STEPS {
            return Err(ParamError::Window(ahead as u64));
        }
        Ok(Window {
            back: back as u8,
            ahead: ahead as u8,
        })
    }

    /// The same number of steps each way.
    ///
    /// # Errors
    /// [`ParamError::Window`] when `steps` exceeds [`Window::MAX_STEPS`].
    pub const fn symmetric(steps: u32) -> Result<Self, ParamError> {
        Self::new(steps, steps)
    }

    /// Steps accepted before the current one.
    #[must_use]
    pub const fn back(self) -> u32 {
        self.back as u32
    }

    /// Steps accepted after the current one.
    #[must_use]
    pub const fn ahead(self) -> u32 {
        self.ahead as u32
    }
}

impl Default for Window {
    fn default() -> Self {
        Window { back: 1, ahead: 1 }
    }
}

/// The parameters a prover and verifier share: algorithm, digits, period and `T0`.
///
/// The defaults (SHA-1, 6 digits, 30 s, `T0 = 0`) are the only ones every authenticator app
/// honors; see [`TotpParams::is_widely_supported`].
///
/// ```
/// use totp_mfa::otp::{Algorithm, Digits, Period, TotpParams};
/// let p = TotpParams::default().with_digits(Digits::EIGHT).with_algorithm(Algorithm::Sha256);
/// assert_eq!(p.digits().get(), 8);
/// assert_eq!(p.period(), Period::default());
/// assert!(!p.is_widely_supported());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TotpParams {
    algorithm: Algorithm,
    digits: Digits,
    period: Period,
    t0: u64,
}

impl TotpParams {
    /// Sets the algorithm.
    #[must_use]
    pub const fn with_algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Sets the digit count.
    #[must_use]
    pub const fn with_digits(mut self, digits: Digits) -> Self {
        self.digits = digits;
        self
    }

    /// Sets the period.
    #[must_use]
    pub const fn with_period(mut self, period: Period) -> Self {
        self.period = period;
        self
    }

    /// Sets `T0`, the Unix time at which step 0 begins (RFC 6238 section 4.1; default 0).
    #[must_use]
    pub const fn with_t0(mut self, t0: u64) -> Self {
        self.t0 = t0;
        self
    }

    /// The algorithm.
    #[must_use]
    pub const fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The digit count.
    #[must_use]
    pub const fn digits(&self) -> Digits {
        self.digits
    }

    /// The period.
    #[must_use]
    pub const fn period(&self) -> Period {
        self.period
    }

    /// `T0` in Unix seconds.
    #[must_use]
    pub const fn t0(&self) -> u64 {
        self.t0
    }

    /// True for SHA-1, 6 digits, 30 seconds and `T0 = 0`: the parameters that Google
    /// Authenticator and every other app honor. Other values are ignored by some apps, which
    /// then show codes that never verify; enrollment confirmation catches that (SEC-29).
    #[must_use]
    pub fn is_widely_supported(&self) -> bool {
        *self == TotpParams::default()
    }
}

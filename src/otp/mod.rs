//! RFC 4226 (HOTP) and RFC 6238 (TOTP): generation and constant-time verification.
//!
//! This layer is pure: it never reads a clock (every function takes `now` in Unix seconds),
//! never allocates on the heap, and never panics, whatever the time, counter or input.
//!
//! ```
//! use totp_mfa::otp::{Code, Totp, TotpParams, Verification, Window};
//! use totp_mfa::Secret;
//!
//! let secret = Secret::from_bytes(b"12345678901234567890").unwrap();
//! let totp = Totp::new(&secret, TotpParams::default()).unwrap();
//! let code = totp.generate(59).unwrap();
//! assert_eq!(code.as_str(), "287082"); // RFC 6238 Appendix B, 6 digits
//!
//! // Thirty seconds later the same code still verifies (window of one step back)...
//! let typed = Code::parse("287 082", totp.params().digits()).unwrap();
//! let v = totp.verify(&typed, 89, Window::default(), None).unwrap();
//! assert_eq!(v, Verification::Accepted { time_step: 1 });
//! // ...but never twice: step 1 is now used (RFC 6238 section 5.2).
//! let v = totp.verify(&typed, 89, Window::default(), Some(1)).unwrap();
//! assert_eq!(v, Verification::Replayed { time_step: 1 });
//! ```

mod code;
mod mac;
mod params;

use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use thiserror::Error;

pub use code::{Code, CodeError};
pub use mac::dynamic_truncation;
pub use params::{Algorithm, Digits, ParamError, Period, TotpParams, Window};

use crate::secret::Secret;
use mac::KeyedMac;

/// An error computing a one-time code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OtpError {
    /// `now` is earlier than `T0`, so no time step exists yet (SEC-02).
    #[error("the time is before T0 ({t0}): check the clock")]
    BeforeT0 {
        /// The configured `T0`.
        t0: u64,
    },
    /// The HMAC implementation refused the key. RustCrypto's HMAC accepts keys of any length,
    /// so this is not expected to happen.
    #[error("the HMAC implementation refused the key")]
    InvalidKey,
}

/// The outcome of checking a code against a window of time steps.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The code matched this time step, which is later than the last used one.
    Accepted {
        /// The matched time step (or HOTP counter).
        time_step: u64,
    },
    /// The code matched only a time step at or before the last used one: a replay, refused
    /// (RFC 6238 section 5.2; SEC-12).
    Replayed {
        /// The matched, already used time step.
        time_step: u64,
    },
    /// The code matched no time step in the window.
    Rejected,
}

impl Verification {
    /// True only for [`Verification::Accepted`].
    #[must_use]
    pub fn is_accepted(&self) -> bool {
        matches!(self, Verification::Accepted { .. })
    }
}

/// The RFC 6238 time step `T = floor((now - T0) / X)`, as a `u64` that works far past 2038.
///
/// # Errors
/// [`OtpError::BeforeT0`] when `now < T0`.
///
/// ```
/// use totp_mfa::otp::{time_step, TotpParams};
/// assert_eq!(time_step(20_000_000_000, &TotpParams::default()), Ok(0x27BC86AA));
/// assert!(time_step(5, &TotpParams::default().with_t0(10)).is_err());
/// ```
pub fn time_step(now: u64, params: &TotpParams) -> Result<u64, OtpError> {
    let since = now
        .checked_sub(params.t0())
        .ok_or(OtpError::BeforeT0 { t0: params.t0() })?;
    // Period is validated to be at least 1 second. The usual 30 s divides by a constant (a
    // multiplication) instead of a 64-bit division.
    Ok(match params.period().seconds() {
        30 => since / 30,
        period => since / period.max(1),
    })
}

/// The HOTP value for one counter (RFC 4226).
///
/// # Errors
/// [`OtpError::InvalidKey`] only if the HMAC implementation refused the key.
///
/// ```
/// use totp_mfa::otp::{hotp, Algorithm, Digits};
/// use totp_mfa::Secret;
/// let secret = Secret::from_bytes(b"12345678901234567890").unwrap();
/// // RFC 4226 Appendix D, counter 0.
/// assert_eq!(hotp(&secret, 0, Algorithm::Sha1, Digits::SIX).unwrap().as_str(), "755224");
/// ```
pub fn hotp(
    secret: &Secret,
    counter: u64,
    algorithm: Algorithm,
    digits: Digits,
) -> Result<Code, OtpError> {
    Ok(KeyedMac::new(algorithm, secret.expose_bytes())?.code(counter, digits))
}

/// A TOTP generator and verifier with the HMAC key schedule computed once.
///
/// Keep one per secret when checking many codes; it zeroizes its keyed state on drop and
/// prints nothing secret in `Debug`.
///
/// ```
/// use totp_mfa::otp::{Algorithm, Totp, TotpParams};
/// use totp_mfa::Secret;
/// let seed = Secret::from_bytes(b"12345678901234567890123456789012").unwrap();
/// let totp = Totp::new(&seed, TotpParams::default().with_algorithm(Algorithm::Sha256)).unwrap();
/// assert_eq!(totp.generate(59).unwrap().as_str(), "119246");
/// ```
#[derive(Clone)]
pub struct Totp {
    mac: KeyedMac,
    params: TotpParams,
}

impl core::fmt::Debug for Totp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Totp")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl Totp {
    /// Keys a TOTP instance.
    ///
    /// # Errors
    /// [`OtpError::InvalidKey`] only if the HMAC implementation refused the key.
    pub fn new(secret: &Secret, params: TotpParams) -> Result<Self, OtpError> {
        Ok(Totp {
            mac: KeyedMac::new(params.algorithm(), secret.expose_bytes())?,
            params,
        })
    }

    /// The parameters.
    #[must_use]
    pub fn params(&self) -> &TotpParams {
        &self.params
    }

    /// The code for the time step containing `now`.
    ///
    /// # Errors
    /// [`OtpError::BeforeT0`] when `now < T0`.
    pub fn generate(&self, now: u64) -> Result<Code, OtpError> {
        Ok(self.generate_at_step(time_step(now, &self.params)?))
    }

    /// The code for one time step.
    #[must_use]
    pub fn generate_at_step(&self, time_step: u64) -> Code {
        self.mac.code(time_step, self.params.digits())
    }

    /// Checks `code` against every step of `window` around `now`, in constant time with no
    /// early return, and says which step matched (SEC-11, SEC-12, SEC-16).
    ///
    /// A match at a step `<= last_used_step` is reported as [`Verification::Replayed`], never
    /// accepted. Steps of the window that would fall below 0 or above `u64::MAX` are skipped.
    ///
    /// # Errors
    /// [`OtpError::BeforeT0`] when `now < T0`.
    pub fn verify(
        &self,
        code: &Code,
        now: u64,
        window: Window,
        last_used_step: Option<u64>,
    ) -> Result<Verification, OtpError> {
        let center = time_step(now, &self.params)?;
        Ok(scan(
            &self.mac,
            self.params.digits(),
            code,
            center,
            window,
            last_used_step,
        ))
    }

    /// Diagnostics only: the offset in time steps, within `±max_steps` of `now`, of the step
    /// nearest to `now` whose code equals `code`, if any. Used to tell a user that the
    /// device clock looks off; it is not constant-time and must never decide acceptance.
    ///
    /// # Errors
    /// [`OtpError::BeforeT0`] when `now < T0`.
    pub fn locate(&self, code: &Code, now: u64, max_steps: u32) -> Result<Option<i64>, OtpError> {
        let center = time_step(now, &self.params)?;
        for distance in 0..=u64::from(max_steps.min(1_000)) {
            if let Some(s) = center.checked_sub(distance) {
                if self.generate_at_step(s) == *code {
                    return Ok(Some(-(distance as i64)));
                }
            }
            if let Some(s) = center.checked_add(distance) {
                if self.generate_at_step(s) == *code {
                    return Ok(Some(distance as i64));
                }
            }
        }
        Ok(None)
    }
}

/// An HOTP (RFC 4226) generator and verifier with the key schedule computed once.
///
/// ```
/// use totp_mfa::otp::{Algorithm, Code, Digits, Hotp, Verification};
/// use totp_mfa::Secret;
/// let secret = Secret::from_bytes(b"12345678901234567890").unwrap();
/// let hotp = Hotp::new(&secret, Algorithm::Sha1, Digits::SIX).unwrap();
/// assert_eq!(hotp.generate(1).as_str(), "287082");
/// let typed = Code::parse("969429", Digits::SIX).unwrap();
/// // Counter 0 expected, look-ahead 5: counter 3 matches.
/// assert_eq!(hotp.verify(&typed, 0, 5), Verification::Accepted { time_step: 3 });
/// ```
#[derive(Clone)]
pub struct Hotp {
    mac: KeyedMac,
    digits: Digits,
}

impl core::fmt::Debug for Hotp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Hotp")
            .field("digits", &self.digits)
            .finish_non_exhaustive()
    }
}

impl Hotp {
    /// The largest look-ahead [`Hotp::verify`] uses (RFC 4226 section 7.4 asks for a small one).
    pub const MAX_LOOK_AHEAD: u32 = 100;

    /// Keys an HOTP instance.
    ///
    /// # Errors
    /// [`OtpError::InvalidKey`] only if the HMAC implementation refused the key.
    pub fn new(secret: &Secret, algorithm: Algorithm, digits: Digits) -> Result<Self, OtpError> {
        Ok(Hotp {
            mac: KeyedMac::new(algorithm, secret.expose_bytes())?,
            digits,
        })
    }

    /// The code for `counter`.
    #[must_use]
    pub fn generate(&self, counter: u64) -> Code {
        self.mac.code(counter, self.digits)
    }

    /// Checks counters `counter ..= counter + look_ahead` (capped at
    /// [`Hotp::MAX_LOOK_AHEAD`]) in constant time. On acceptance the next expected counter is
    /// `time_step + 1`.
    pub fn verify(&self, code: &Code, counter: u64, look_ahead: u32) -> Verification {
        let look_ahead = look_ahead.min(Self::MAX_LOOK_AHEAD);
        let typed = Typed::new(code, self.digits);
        let mut accepted = Choice::from(0);
        let mut step = 0u64;
        for i in 0..=u64::from(look_ahead) {
            let Some(c) = counter.checked_add(i) else {
                break;
            };
            let hit = typed.matches(self.mac.value(c)) & !accepted;
            step.conditional_assign(&c, hit);
            accepted |= hit;
        }
        if accepted.into() {
            Verification::Accepted { time_step: step }
        } else {
            Verification::Rejected
        }
    }
}

/// A typed code, read once as the number it spells, to compare with each step's truncated
/// HMAC value without formatting a [`Code`] per step.
///
/// Two codes of `digits` digits are equal exactly when the numbers they spell are, because
/// [`Code`] holds only ASCII digits and formatting `value mod 10^digits` with leading zeros
/// is one-to-one; a typed code of another length never matches, as with [`Code`]'s own
/// `ct_eq`.
struct Typed {
    /// The number the typed digits spell, or `u32::MAX` (no step's code, which is below
    /// `10^8`) when the typed code does not have `digits` digits. The length is the public
    /// shape of the input, not a secret.
    value: u32,
    digits: Digits,
}

impl Typed {
    fn new(code: &Code, digits: Digits) -> Self {
        let mut value = 0u32;
        for b in code.as_str().bytes() {
            // At most 8 digits: below 10^8, no overflow.
            value = value
                .wrapping_mul(10)
                .wrapping_add(u32::from(b.wrapping_sub(b'0')));
        }
        if code.len() != digits.get() as usize {
            value = u32::MAX;
        }
        Typed { value, digits }
    }

    /// Whether the code of a step whose truncated HMAC is `truncated` equals the typed one,
    /// as a `Choice`. The reduction divides by a constant (a multiplication, not a division
    /// whose latency may depend on its operands); the branch is on the public digit count.
    #[inline]
    fn matches(&self, truncated: u32) -> Choice {
        let expected = match self.digits.get() {
            6 => truncated % 1_000_000,
            7 => truncated % 10_000_000,
            _ => truncated % 100_000_000,
        };
        expected.ct_eq(&self.value)
    }
}

/// The most steps a [`Window`] spans.
const WINDOW_STEPS: usize = 2 * Window::MAX_STEPS as usize + 1;

/// Evaluates every step from `center - back` to `center + ahead` and combines the results with
/// `subtle::Choice`: the work and the branches taken do not depend on which step (if any)
/// matched. The latest matching step wins.
fn scan(
    mac: &KeyedMac,
    digits: Digits,
    code: &Code,
    center: u64,
    window: Window,
    last_used_step: Option<u64>,
) -> Verification {
    let typed = Typed::new(code, digits);
    let mut accepted = Choice::from(0);
    let mut accepted_step = 0u64;
    let mut replayed = Choice::from(0);
    let mut replayed_step = 0u64;
    // Steps `center - back ..= center + ahead`; those below 0 or above u64::MAX do not
    // exist and are skipped. Which ones exist depends only on the public time.
    let first = center.saturating_sub(u64::from(window.back()));
    let last = center.saturating_add(u64::from(window.ahead()));
    let mut values = [0u32; WINDOW_STEPS];
    // At most 2 * Window::MAX_STEPS + 1 steps by construction of `Window`.
    let count = usize::try_from(last - first)
        .unwrap_or(usize::MAX)
        .saturating_add(1)
        .min(WINDOW_STEPS);
    let values = &mut values[..count];
    mac.values(first, values);
    for (i, value) in values.iter().enumerate() {
        // No overflow: `first + i <= last`.
        let step = first.wrapping_add(i as u64);
        let hit = typed.matches(*value);
        // Whether the step is fresh depends only on the public step and last-used step, so
        // branching on it says nothing about the code; `hit` is only ever combined as a
        // `Choice`.
        if last_used_step.is_none_or(|last| step > last) {
            accepted_step.conditional_assign(&step, hit);
            accepted |= hit;
        } else {
            replayed_step.conditional_assign(&step, hit);
            replayed |= hit;
        }
    }
    if accepted.into() {
        Verification::Accepted {
            time_step: accepted_step,
        }
    } else if replayed.into() {
        Verification::Replayed {
            time_step: replayed_step,
        }
    } else {
        Verification::Rejected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc_secret() -> Secret {
        Secret::from_bytes(b"12345678901234567890").unwrap()
    }

    fn totp() -> Totp {
        Totp::new(&rfc_secret(), TotpParams::default()).unwrap()
    }

    #[test]
    fn window_accepts_neighbours_only() {
        // SEC-11: window 1 accepts t-30, t, t+30 and rejects t-60, t+60.
        let t = totp();
        let now: u64 = 1_111_111_109;
        for (offset, ok) in [
            (-60i64, false),
            (-30, true),
            (0, true),
            (30, true),
            (60, false),
        ] {
            let code = t.generate(now.checked_add_signed(offset).unwrap()).unwrap();
            let v = t.verify(&code, now, Window::default(), None).unwrap();
            assert_eq!(v.is_accepted(), ok, "offset {offset}");
        }
    }

    #[test]
    fn replay_rules_follow_rfc6238_section_5_2() {
        // SEC-12: same code twice; T then T-1; T+1, T, T+1.
        let t = totp();
        let now = 1_234_567_890;
        let step = time_step(now, t.params()).unwrap();
        let c = t.generate_at_step(step);
        assert_eq!(
            t.verify(&c, now, Window::default(), None).unwrap(),
            Verification::Accepted { time_step: step }
        );
        assert_eq!(
            t.verify(&c, now, Window::default(), Some(step)).unwrap(),
            Verification::Replayed { time_step: step }
        );
        let older = t.generate_at_step(step - 1);
        assert!(matches!(
            t.verify(&older, now, Window::default(), Some(step))
                .unwrap(),
            Verification::Replayed { .. }
        ));
        let ahead = t.generate_at_step(step + 1);
        assert!(
            t.verify(&ahead, now, Window::default(), Some(step - 1))
                .unwrap()
                .is_accepted()
        );
        assert!(
            !t.verify(&c, now, Window::default(), Some(step + 1))
                .unwrap()
                .is_accepted()
        );
        assert!(
            !t.verify(&ahead, now, Window::default(), Some(step + 1))
                .unwrap()
                .is_accepted()
        );
    }

    #[test]
    fn edges_of_time_never_panic() {
        let t = totp();
        let c = t.generate_at_step(0);
        assert_eq!(
            t.verify(&c, 0, Window::symmetric(10).unwrap(), None)
                .unwrap(),
            Verification::Accepted { time_step: 0 }
        );
        let top = Totp::new(
            &rfc_secret(),
            TotpParams::default().with_period(Period::new(1).unwrap()),
        )
        .unwrap();
        let c = top.generate_at_step(u64::MAX);
        assert_eq!(
            top.verify(&c, u64::MAX, Window::symmetric(10).unwrap(), None)
                .unwrap(),
            Verification::Accepted {
                time_step: u64::MAX
            }
        );
        assert_eq!(
            top.verify(&c, u64::MAX, Window::default(), Some(u64::MAX))
                .unwrap(),
            Verification::Replayed {
                time_step: u64::MAX
            }
        );
        let with_t0 = TotpParams::default().with_t0(100);
        assert_eq!(time_step(99, &with_t0), Err(OtpError::BeforeT0 { t0: 100 }));
        assert_eq!(time_step(100, &with_t0), Ok(0));
    }

    #[test]
    fn locate_reports_offset_in_steps() {
        let t = totp();
        let now = 2_000_000_000;
        let c = t.generate(now - 30 * 7).unwrap();
        assert_eq!(t.locate(&c, now, 20).unwrap(), Some(-7));
        let c = t.generate(now + 30 * 4).unwrap();
        assert_eq!(t.locate(&c, now, 20).unwrap(), Some(4));
    }

    #[test]
    fn typed_comparison_agrees_with_code_equality() {
        let all = [Digits::SIX, Digits::SEVEN, Digits::EIGHT];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut values = vec![
            0,
            1,
            7,
            999_999,
            1_000_000,
            9_999_999,
            12_345_678,
            0x7fff_ffff,
        ];
        for _ in 0..2_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push((x as u32) & 0x7fff_ffff);
        }
        for digits in all {
            for typed_digits in all {
                for (i, &v) in values.iter().enumerate() {
                    let generated = Code::from_value(v, digits);
                    // The same number, a neighbour, and an unrelated one.
                    for t in [v, v ^ 1, values[(i * 7 + 3) % values.len()]] {
                        let typed = Code::from_value(t, typed_digits);
                        assert_eq!(
                            bool::from(Typed::new(&typed, digits).matches(v)),
                            generated == typed,
                            "{digits:?} {typed_digits:?} {v} {t}"
                        );
                    }
                }
            }
        }
        let parsed = Code::parse("000000", Digits::SIX).unwrap();
        assert!(bool::from(
            Typed::new(&parsed, Digits::SIX).matches(3_000_000)
        ));
        assert!(!bool::from(
            Typed::new(&parsed, Digits::SEVEN).matches(3_000_000)
        ));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let s = format!(
            "{:?} {:?}",
            totp(),
            Hotp::new(&rfc_secret(), Algorithm::Sha1, Digits::SIX).unwrap()
        );
        assert!(!s.contains("3132"), "{s}");
        assert!(!s.contains("12345"), "{s}");
    }
}

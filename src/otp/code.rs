//! One-time codes: a fixed-width, stack-allocated string of ASCII digits.

use core::fmt;

use subtle::{Choice, ConstantTimeEq};
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::params::Digits;

/// Why a typed code was not accepted as a code at all.
///
/// These errors never contain the submitted text (SEC-10): only its length or the position of
/// the first character that is not a digit.
///
/// ```
/// use totp_mfa::otp::{Code, CodeError, Digits};
/// assert_eq!(Code::parse("12345", Digits::SIX), Err(CodeError::WrongLength { expected: 6, found: 5 }));
/// assert_eq!(Code::parse("12a456", Digits::SIX), Err(CodeError::NotADigit { position: 3 }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CodeError {
    /// Nothing but white space was entered.
    #[error("no code was entered")]
    Empty,
    /// Far longer than any code; refused before it is read.
    #[error("the code is too long (a code has 6 to 8 digits)")]
    TooLong,
    /// The number of digits differs from the expected count.
    #[error("the code must have {expected} digits (got {found})")]
    WrongLength {
        /// Digits expected.
        expected: u32,
        /// Digits (and other characters) found, white space excluded.
        found: usize,
    },
    /// A character that is neither a digit nor white space, at this 1-based position.
    #[error("the code may contain only digits (character {position} is not a digit)")]
    NotADigit {
        /// 1-based character position in the text as entered.
        position: usize,
    },
}

/// A one-time code of 6 to 8 ASCII digits. Leading zeros are significant.
///
/// `Code` lives on the stack, is zeroized on drop, compares in constant time
/// ([`ConstantTimeEq`]) and prints redacted in `Debug`. Read its digits with
/// [`Code::as_str`].
///
/// ```
/// use totp_mfa::otp::{Code, Digits};
/// let code = Code::parse(" 081 804\n", Digits::SIX).unwrap();
/// assert_eq!(code.as_str(), "081804");
/// assert_eq!(format!("{code:?}"), "Code(******)");
/// ```
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Code {
    bytes: [u8; 8],
    len: u8,
}

impl Code {
    /// The longest text [`Code::parse`] reads; longer input is refused in O(1).
    pub const MAX_INPUT_LEN: usize = 64;

    /// Normalizes a code typed by a person: white space anywhere (spaces, tabs, a pasted
    /// newline) is dropped; everything else must be an ASCII digit, exactly `digits` of them.
    ///
    /// # Errors
    /// A [`CodeError`] saying what is wrong, never echoing the input.
    pub fn parse(input: &str, digits: Digits) -> Result<Self, CodeError> {
        if input.len() > Self::MAX_INPUT_LEN {
            return Err(CodeError::TooLong);
        }
        let mut bytes = [0u8; 8];
        let mut len = 0usize;
        let mut found = 0usize;
        for (i, ch) in input.chars().enumerate() {
            if ch.is_whitespace() {
                continue;
            }
            if !ch.is_ascii_digit() {
                bytes.zeroize();
                return Err(CodeError::NotADigit { position: i + 1 });
            }
            if len < bytes.len() {
                bytes[len] = ch as u8;
                len += 1;
            }
            found += 1;
        }
        if found == 0 {
            return Err(CodeError::Empty);
        }
        if found != digits.get() as usize {
            bytes.zeroize();
            return Err(CodeError::WrongLength {
                expected: digits.get(),
                found,
            });
        }
        Ok(Code {
            bytes,
            len: len as u8,
        })
    }

    /// Formats `value mod 10^digits` with leading zeros.
    pub(crate) fn from_value(value: u32, digits: Digits) -> Self {
        let mut bytes = [0u8; 8];
        let n = digits.get() as usize;
        let mut v = value % digits.modulus();
        for slot in bytes[..n].iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        Code {
            bytes,
            len: n as u8,
        }
    }

    /// The digits, e.g. `"081804"`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored, so this never fails.
        core::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }

    /// How many digits the code has.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Always false: a code has 6 to 8 digits.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl ConstantTimeEq for Code {
    /// Compares all eight byte slots and the length without branching on their values
    /// (SEC-16).
    fn ct_eq(&self, other: &Self) -> Choice {
        self.bytes.ct_eq(&other.bytes) & self.len.ct_eq(&other.len)
    }
}

impl PartialEq for Code {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for Code {}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code(")?;
        for _ in 0..self.len {
            f.write_str("*")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_white_space_and_keeps_leading_zeros() {
        let c = Code::parse("\t007 081\r\n", Digits::SIX).unwrap();
        assert_eq!(c.as_str(), "007081");
    }

    #[test]
    fn rejects_other_characters_with_position() {
        assert_eq!(
            Code::parse("123-456", Digits::SIX),
            Err(CodeError::NotADigit { position: 4 })
        );
        // Full-width digits are not ASCII digits.
        assert_eq!(
            Code::parse("１23456", Digits::SIX),
            Err(CodeError::NotADigit { position: 1 })
        );
        assert_eq!(Code::parse("   ", Digits::SIX), Err(CodeError::Empty));
        assert_eq!(
            Code::parse("1234567", Digits::SIX),
            Err(CodeError::WrongLength {
                expected: 6,
                found: 7
            })
        );
        assert_eq!(
            Code::parse(&"1".repeat(1_000_000), Digits::SIX),
            Err(CodeError::TooLong)
        );
    }

    #[test]
    fn error_text_never_contains_the_input() {
        for input in ["98765x", "9876543", "98765"] {
            let e = Code::parse(input, Digits::SIX).unwrap_err().to_string();
            assert!(!e.contains("9876"), "{e}");
        }
    }

    #[test]
    fn constant_time_eq_sees_every_position() {
        let a = Code::parse("12345678", Digits::EIGHT).unwrap();
        for i in 0..8 {
            let mut s = *b"12345678";
            s[i] = if s[i] == b'9' { b'0' } else { s[i] + 1 };
            let b = Code::parse(core::str::from_utf8(&s).unwrap(), Digits::EIGHT).unwrap();
            assert!(!bool::from(a.ct_eq(&b)), "position {i}");
        }
        let six = Code::parse("123456", Digits::SIX).unwrap();
        let seven = Code::parse("1234560", Digits::SEVEN).unwrap();
        assert!(!bool::from(six.ct_eq(&seven)));
        assert!(bool::from(a.ct_eq(&a.clone())));
    }

    #[test]
    fn from_value_pads_and_reduces() {
        assert_eq!(
            Code::from_value(1_094_287_082, Digits::SIX).as_str(),
            "287082"
        );
        assert_eq!(
            Code::from_value(1_094_287_082, Digits::EIGHT).as_str(),
            "94287082"
        );
        assert_eq!(Code::from_value(7, Digits::SEVEN).as_str(), "0000007");
    }
}

//! The shared TOTP secret: generated from a CSPRNG, zeroized on drop, redacted in `Debug`.
//!
//! # What zeroizing does and does not guarantee
//! The secret's bytes live in one heap buffer, allocated at its final size and overwritten
//! with zeros (by [`zeroize`]) when the [`Secret`] is dropped. Strings produced by
//! [`Secret::to_base32`] and friends are [`Zeroizing`] too. This does not cover copies the
//! host makes (a `String` it builds from those, a database driver's buffers, swap, core
//! dumps), nor registers and stack slots the compiler used while computing an HMAC.

use core::fmt;

use rand_core::TryCryptoRng;
use subtle::ConstantTimeEq;
use thiserror::Error;
use zeroize::{Zeroize, Zeroizing};

/// Why bytes or text were not accepted as a secret.
///
/// Messages name positions and lengths, never the secret's characters.
///
/// ```
/// use totp_mfa::{Secret, SecretError};
/// assert_eq!(Secret::from_base32("JBSW Y3DP !").unwrap_err(),
///            SecretError::InvalidCharacter { position: 11 });
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The text holds no key characters at all.
    #[error("the key is empty")]
    Empty,
    /// Fewer bits than the minimum (80 for imported keys, 128 for new ones).
    #[error("the key is too short: {bits} bits, at least {min_bits} needed")]
    TooShort {
        /// The key's length in bits.
        bits: usize,
        /// The minimum accepted here.
        min_bits: usize,
    },
    /// Longer than [`Secret::MAX_BYTES`].
    #[error("the key is too long (at most {max} bytes)", max = Secret::MAX_BYTES)]
    TooLong,
    /// A character outside the base32 alphabet (A-Z, 2-7), at this 1-based position.
    #[error(
        "the key has a character that is not base32 (A-Z, 2-7) at position {position}; \
         check for typos"
    )]
    InvalidCharacter {
        /// 1-based character position in the text as given.
        position: usize,
    },
    /// A character that is not a hex digit, at this 1-based position.
    #[error("the key has a character that is not a hex digit at position {position}")]
    InvalidHex {
        /// 1-based character position in the text as given.
        position: usize,
    },
    /// Hex text with an odd number of digits.
    #[error("hex text must have an even number of digits")]
    OddHexLength,
    /// The random number generator failed.
    #[error("the operating system's random number generator failed")]
    Rng,
}

/// A TOTP/HOTP shared secret (the HMAC key).
///
/// * New secrets come from a CSPRNG ([`Secret::generate`]: 160 bits; never below 128).
/// * Imported secrets ([`Secret::from_base32`], [`Secret::from_bytes`]) are accepted from 80
///   bits up; below 128 bits [`Secret::is_weak`] says so. RFC 4226 R6 (and SEC-06) require
///   128 bits; the import floor is lower on purpose, because operators migrating from older
///   systems hold 80-bit keys (Google Authenticator's historical length) that they cannot
///   re-issue at once. New secrets are never below 128 bits.
/// * `Debug` is redacted; there is no `Display`. Read the key with [`Secret::to_base32`] or
///   [`Secret::to_base32_grouped`] only to show it to its owner during enrollment.
/// * Equality is constant-time.
///
/// ```
/// use totp_mfa::Secret;
/// let mut rng = getrandom::SysRng;
/// let s = Secret::generate(&mut rng).unwrap();
/// assert_eq!(s.len(), 20);
/// assert_eq!(format!("{s:?}"), "Secret { bits: 160, .. }");
/// let typed = Secret::from_base32(&s.to_base32_grouped().to_lowercase()).unwrap();
/// assert_eq!(typed, s);
/// ```
#[derive(Clone)]
pub struct Secret {
    bytes: Zeroizing<Vec<u8>>,
}

impl Secret {
    /// Length of a generated secret: 20 bytes (160 bits), RFC 4226's recommendation.
    pub const DEFAULT_BYTES: usize = 20;
    /// The shortest secret [`Secret::generate_with_len`] creates: 16 bytes (128 bits).
    pub const MIN_NEW_BYTES: usize = 16;
    /// The shortest imported secret accepted: 10 bytes (80 bits).
    pub const MIN_IMPORT_BYTES: usize = 10;
    /// The longest secret accepted: 128 bytes.
    pub const MAX_BYTES: usize = 128;
    /// The longest text the decoders read (bounded work on hostile input).
    pub const MAX_TEXT_LEN: usize = 1024;

    /// Generates a 160-bit secret from `rng`, which must be a cryptographically secure
    /// generator (the bound enforces it); pass `getrandom::SysRng` for the OS CSPRNG.
    ///
    /// # Errors
    /// [`SecretError::Rng`] when the generator fails.
    pub fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self, SecretError> {
        Self::generate_with_len(rng, Self::DEFAULT_BYTES)
    }

    /// Generates a secret of `len` bytes (16 to 128), e.g. 32 for SHA-256 or 64 for SHA-512.
    ///
    /// # Errors
    /// [`SecretError::TooShort`] / [`SecretError::TooLong`] for a bad length,
    /// [`SecretError::Rng`] when the generator fails.
    ///
    /// ```
    /// use totp_mfa::Secret;
    /// assert!(Secret::generate_with_len(&mut getrandom::SysRng, 15).is_err());
    /// assert_eq!(Secret::generate_with_len(&mut getrandom::SysRng, 64).unwrap().len(), 64);
    /// ```
    pub fn generate_with_len<R: TryCryptoRng + ?Sized>(
        rng: &mut R,
        len: usize,
    ) -> Result<Self, SecretError> {
        if len < Self::MIN_NEW_BYTES {
            return Err(SecretError::TooShort {
                bits: len * 8,
                min_bits: Self::MIN_NEW_BYTES * 8,
            });
        }
        if len > Self::MAX_BYTES {
            return Err(SecretError::TooLong);
        }
        let mut bytes = Zeroizing::new(vec![0u8; len]);
        rng.try_fill_bytes(&mut bytes)
            .map_err(|_| SecretError::Rng)?;
        Ok(Secret { bytes })
    }

    /// Imports raw key bytes (at least 80 bits).
    ///
    /// # Errors
    /// [`SecretError::TooShort`] below 10 bytes, [`SecretError::TooLong`] above 128.
    ///
    /// ```
    /// use totp_mfa::Secret;
    /// assert!(Secret::from_bytes(&[0u8; 9]).is_err());
    /// assert!(Secret::from_bytes(&[0u8; 10]).unwrap().is_weak());
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        if bytes.len() < Self::MIN_IMPORT_BYTES {
            return Err(SecretError::TooShort {
                bits: bytes.len() * 8,
                min_bits: Self::MIN_IMPORT_BYTES * 8,
            });
        }
        if bytes.len() > Self::MAX_BYTES {
            return Err(SecretError::TooLong);
        }
        Ok(Secret {
            bytes: Zeroizing::new(bytes.to_vec()),
        })
    }

    /// Decodes base32 (RFC 4648) leniently, as people type and apps export it: any case;
    /// spaces, tabs, newlines and dashes anywhere; `=` padding at the end; any length (bits
    /// that do not fill a byte are dropped); and the look-alike slips `0` for `O` and `8` for
    /// `B`, which are not base32 digits. At least 80 bits.
    ///
    /// # Errors
    /// [`SecretError::InvalidCharacter`] with the position of the first bad character, or a
    /// length error.
    ///
    /// ```
    /// use totp_mfa::Secret;
    /// let a = Secret::from_base32("JBSWY3DPEHPK3PXP").unwrap();
    /// let b = Secret::from_base32(" jbsw-y3dp ehpk-3pxp== \n").unwrap();
    /// assert_eq!(a, b);
    /// assert_eq!(a.expose_bytes(), b"Hello!\xDE\xAD\xBE\xEF");
    /// ```
    pub fn from_base32(text: &str) -> Result<Self, SecretError> {
        Self::decode_base32(text, true)
    }

    /// Base32 as [`Secret::from_base32`], but without the look-alike slips: `0` and `8` are
    /// errors. Used for secrets inside `otpauth://` URIs, which machines write.
    pub(crate) fn from_base32_machine(text: &str) -> Result<Self, SecretError> {
        Self::decode_base32(text, false)
    }

    fn decode_base32(text: &str, lookalikes: bool) -> Result<Self, SecretError> {
        if text.len() > Self::MAX_TEXT_LEN {
            return Err(SecretError::TooLong);
        }
        // Allocated once at its final capacity, so no unzeroized copy is left behind.
        let mut out = Zeroizing::new(Vec::with_capacity(text.len() * 5 / 8 + 1));
        let mut acc: u32 = 0;
        let mut bits: u32 = 0;
        let mut padding = false;
        let mut seen_any = false;
        for (i, ch) in text.chars().enumerate() {
            let value = match ch {
                ' ' | '\t' | '\n' | '\r' | '-' => continue,
                '=' => {
                    padding = true;
                    continue;
                }
                _ if padding => {
                    acc.zeroize();
                    return Err(SecretError::InvalidCharacter { position: i + 1 });
                }
                'A'..='Z' => ch as u32 - 'A' as u32,
                'a'..='z' => ch as u32 - 'a' as u32,
                '2'..='7' => ch as u32 - '2' as u32 + 26,
                '0' if lookalikes => 'O' as u32 - 'A' as u32,
                '8' if lookalikes => 'B' as u32 - 'A' as u32,
                _ => {
                    acc.zeroize();
                    return Err(SecretError::InvalidCharacter { position: i + 1 });
                }
            };
            seen_any = true;
            acc = (acc << 5) | value;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        acc.zeroize();
        if !seen_any {
            return Err(SecretError::Empty);
        }
        Self::checked(out)
    }

    /// Decodes hexadecimal text (any case, white space ignored), as `oathtool` takes keys.
    ///
    /// # Errors
    /// [`SecretError::InvalidHex`], [`SecretError::OddHexLength`] or a length error.
    ///
    /// ```
    /// use totp_mfa::Secret;
    /// let s = Secret::from_hex("3132333435363738393031323334353637383930").unwrap();
    /// assert_eq!(s.expose_bytes(), b"12345678901234567890");
    /// ```
    pub fn from_hex(text: &str) -> Result<Self, SecretError> {
        if text.len() > Self::MAX_TEXT_LEN {
            return Err(SecretError::TooLong);
        }
        let mut out = Zeroizing::new(Vec::with_capacity(text.len() / 2 + 1));
        let mut high: Option<u8> = None;
        for (i, ch) in text.chars().enumerate() {
            if ch.is_whitespace() {
                continue;
            }
            let Some(v) = ch.to_digit(16) else {
                return Err(SecretError::InvalidHex { position: i + 1 });
            };
            match high.take() {
                None => high = Some(v as u8),
                Some(h) => out.push((h << 4) | v as u8),
            }
        }
        if high.is_some() {
            return Err(SecretError::OddHexLength);
        }
        if out.is_empty() {
            return Err(SecretError::Empty);
        }
        Self::checked(out)
    }

    fn checked(bytes: Zeroizing<Vec<u8>>) -> Result<Self, SecretError> {
        if bytes.len() < Self::MIN_IMPORT_BYTES {
            return Err(SecretError::TooShort {
                bits: bytes.len() * 8,
                min_bits: Self::MIN_IMPORT_BYTES * 8,
            });
        }
        if bytes.len() > Self::MAX_BYTES {
            return Err(SecretError::TooLong);
        }
        Ok(Secret { bytes })
    }

    /// The key length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a secret has at least 10 bytes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// True below 128 bits: accepted for import, but weaker than RFC 4226 requires.
    #[must_use]
    pub fn is_weak(&self) -> bool {
        self.bytes.len() < Self::MIN_NEW_BYTES
    }

    /// The raw key bytes. The name is deliberate: call it only to hand the key to an HMAC or
    /// to encrypt it for storage.
    #[must_use]
    pub fn expose_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Canonical base32 without padding, as it goes into an `otpauth://` URI.
    ///
    /// ```
    /// use totp_mfa::Secret;
    /// let s = Secret::from_bytes(b"12345678901234567890").unwrap();
    /// assert_eq!(s.to_base32().as_str(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    /// ```
    #[must_use]
    pub fn to_base32(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(
            data_encoding::BASE32_NOPAD.encode_len(self.bytes.len()),
        ));
        data_encoding::BASE32_NOPAD.encode_append(&self.bytes, &mut out);
        out
    }

    /// Base32 in groups of four separated by spaces, for a person to type:
    /// `GEZD GNBV GY3T ...`.
    ///
    /// ```
    /// use totp_mfa::Secret;
    /// let s = Secret::from_bytes(b"12345678901234567890").unwrap();
    /// assert_eq!(s.to_base32_grouped().as_str(), "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ");
    /// ```
    #[must_use]
    pub fn to_base32_grouped(&self) -> Zeroizing<String> {
        let plain = self.to_base32();
        let mut out = Zeroizing::new(String::with_capacity(plain.len() + plain.len() / 4));
        for (i, ch) in plain.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                out.push(' ');
            }
            out.push(ch);
        }
        out
    }

    /// Lowercase hexadecimal, as `oathtool` takes keys.
    #[must_use]
    pub fn to_hex(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(self.bytes.len() * 2));
        data_encoding::HEXLOWER.encode_append(&self.bytes, &mut out);
        out
    }
}

impl PartialEq for Secret {
    /// Constant-time in the key bytes.
    fn eq(&self, other: &Self) -> bool {
        self.bytes.as_slice().ct_eq(other.bytes.as_slice()).into()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("bits", &(self.bytes.len() * 8))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_is_lenient_where_people_are() {
        let canonical = Secret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
        assert_eq!(canonical.expose_bytes(), b"12345678901234567890");
        for typed in [
            "gezdgnbvgy3tqojqgezdgnbvgy3tqojq",
            "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ",
            "GEZD-GNBV-GY3T-Q0JQ-GEZD-GNBV-GY3T-QOJQ\n",
        ] {
            assert_eq!(Secret::from_base32(typed).unwrap(), canonical, "{typed}");
        }
        // Padding is accepted at the end only.
        let padded = Secret::from_base32("JBSWY3DPEHPK3PXPJBSWY3DP====").unwrap();
        assert_eq!(padded.len(), 15);
        assert_eq!(
            Secret::from_base32("JBSW=Y3DPEHPK3PXP"),
            Err(SecretError::InvalidCharacter { position: 6 })
        );
    }

    #[test]
    fn trailing_bits_are_dropped_not_refused() {
        // 17 characters = 85 bits: 10 bytes and 5 spare bits.
        let s = Secret::from_base32("JBSWY3DPEHPK3PXPZ").unwrap();
        assert_eq!(s.len(), 10);
    }

    #[test]
    fn errors_name_the_position() {
        assert_eq!(
            Secret::from_base32("JBSWY3DP1HPK3PXP"),
            Err(SecretError::InvalidCharacter { position: 9 })
        );
        assert_eq!(Secret::from_base32(" - "), Err(SecretError::Empty));
        assert_eq!(
            Secret::from_base32("JBSWY3DP"),
            Err(SecretError::TooShort {
                bits: 40,
                min_bits: 80
            })
        );
        assert_eq!(
            Secret::from_base32(&"A".repeat(2000)),
            Err(SecretError::TooLong)
        );
        assert_eq!(
            Secret::from_hex("3g"),
            Err(SecretError::InvalidHex { position: 2 })
        );
        assert_eq!(Secret::from_hex("313"), Err(SecretError::OddHexLength));
    }

    #[test]
    fn generated_secrets_meet_the_minimum_and_differ() {
        // SEC-06.
        let mut rng = getrandom::SysRng;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let s = Secret::generate(&mut rng).unwrap();
            assert_eq!(s.len(), 20);
            assert!(seen.insert(s.expose_bytes().to_vec()));
        }
        assert!(matches!(
            Secret::generate_with_len(&mut rng, 15),
            Err(SecretError::TooShort { .. })
        ));
    }

    #[test]
    fn debug_and_errors_show_no_key() {
        // SEC-08.
        let s = Secret::from_base32("JBSWY3DPEHPK3PXP").unwrap();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("JBSW") && !dbg.contains("48656c6c"), "{dbg}");
        let err = Secret::from_base32("JBSWY3DPEHPK3PX!")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("JBSW"), "{err}");
    }
}

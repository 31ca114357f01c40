//! Single-use recovery codes (NIST SP 800-63B "saved recovery codes" / look-up secrets).
//!
//! * Each code is 16 characters of Crockford's base32 alphabet (`0-9`, `A-Z` without `I`,
//!   `L`, `O`, `U`): 80 bits from a CSPRNG, above the 64 bits NIST SP 800-63B-4 section
//!   4.2.1.1 requires (SEC-21). Shown as `XXXX-XXXX-XXXX-XXXX`.
//! * Typed input is normalized before hashing (SEC-27): case, dashes and white space are
//!   ignored, and the look-alikes `I`/`L` read as `1` and `O` as `0`.
//! * Only salted hashes are stored (SEC-22): PBKDF2-HMAC-SHA256 with a 16-byte random salt
//!   per code. 80 bits is below NIST's 112-bit line, so a salted key-derivation function is
//!   required; its work factor may be small because the codes are random.
//! * Verification computes the hash against *every* stored code and combines the results
//!   with constant-time selection (SEC-16): the time taken depends only on how many codes
//!   are stored, not on which one matched.
//! * A used code is removed from the record in the same atomic update that grants access
//!   (SEC-23).

use core::fmt;

use rand_core::TryCryptoRng;
use sha2::Sha256;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use thiserror::Error;
use zeroize::{Zeroize, Zeroizing};

/// Crockford's base32 alphabet: no `I`, `L`, `O` or `U`.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a code.
pub(crate) const CODE_CHARS: usize = 16;
/// Bytes of randomness per code (16 characters x 5 bits).
const CODE_BYTES: usize = 10;
/// PBKDF2 salt length.
pub(crate) const SALT_LEN: usize = 16;
/// PBKDF2 output length.
pub(crate) const HASH_LEN: usize = 32;

/// Why typed text is not a recovery code. Never contains the text.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecoveryCodeError {
    /// Far longer than a recovery code; refused before it is read.
    #[error("the recovery code is too long")]
    TooLong,
    /// Not 16 characters once dashes and spaces are removed.
    #[error("a recovery code has 16 letters and digits (got {found})")]
    WrongLength {
        /// Characters found.
        found: usize,
    },
    /// A character outside the recovery-code alphabet, at this 1-based position.
    #[error("the recovery code has an invalid character at position {position}")]
    InvalidCharacter {
        /// 1-based character position in the text as entered.
        position: usize,
    },
}

/// One recovery code in its display form, `XXXX-XXXX-XXXX-XXXX`. Zeroized on drop,
/// redacted in `Debug`.
#[derive(Clone)]
pub struct RecoveryCode(Zeroizing<String>);

impl RecoveryCode {
    /// Normalizes a recovery code as a person typed it (any case, dashes and spaces anywhere,
    /// `I`/`L` for `1`, `O` for `0`) to its display form, to check its shape before
    /// submitting it. This says nothing about whether the code is valid for anyone.
    ///
    /// # Errors
    /// [`RecoveryCodeError`] naming the length or the first bad character's position.
    ///
    /// ```
    /// use totp_mfa::RecoveryCode;
    /// let c = RecoveryCode::parse(" abcd efgh-jkmn pqrs ").unwrap();
    /// assert_eq!(c.as_str(), "ABCD-EFGH-JKMN-PQRS");
    /// assert_eq!(RecoveryCode::parse("oooo-iiii-llll-0000").unwrap().as_str(), "0000-1111-1111-0000");
    /// assert!(RecoveryCode::parse("ABCD-EFGH-JKMN-PQRU").is_err()); // no U in the alphabet
    /// ```
    pub fn parse(input: &str) -> Result<Self, RecoveryCodeError> {
        let chars = normalize(input)?;
        Ok(Self::display(&chars))
    }

    fn display(chars: &[u8; CODE_CHARS]) -> Self {
        let mut display = Zeroizing::new(String::with_capacity(CODE_CHARS + 3));
        for (i, c) in chars.iter().enumerate() {
            if i > 0 && i % 4 == 0 {
                display.push('-');
            }
            display.push(*c as char);
        }
        RecoveryCode(display)
    }

    /// The code as shown to the user.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(<redacted>)")
    }
}

/// A freshly generated set of recovery codes: the only time the plaintext exists. Show it to
/// the user once (and offer a download), then drop it. Returned by
/// [`Mfa::confirm_enrollment`](crate::Mfa::confirm_enrollment) and
/// [`Mfa::regenerate_recovery_codes`](crate::Mfa::regenerate_recovery_codes).
///
/// ```
/// # use totp_mfa::testing::enrolled;
/// let (_mfa, _user, codes, _phone) = enrolled();
/// assert_eq!(codes.len(), 10);
/// let first = codes.iter().next().unwrap().as_str();
/// assert_eq!(first.len(), 19); // XXXX-XXXX-XXXX-XXXX
/// ```
#[derive(Clone)]
pub struct RecoveryCodes(Vec<RecoveryCode>);

impl RecoveryCodes {
    /// The largest set generated.
    pub const MAX_COUNT: usize = 32;

    pub(crate) fn generate_with_rounds<R: TryCryptoRng + ?Sized>(
        rng: &mut R,
        count: usize,
        rounds: u32,
    ) -> Result<(RecoveryCodes, HashedRecoveryCodes), crate::Error> {
        if count == 0 || count > Self::MAX_COUNT {
            return Err(crate::Error::Config("recovery code count must be 1 to 32"));
        }
        let mut codes = Vec::with_capacity(count);
        let mut hashes = Vec::with_capacity(count);
        while codes.len() < count {
            let mut raw = Zeroizing::new([0u8; CODE_BYTES]);
            rng.try_fill_bytes(raw.as_mut())
                .map_err(|_| crate::Error::Rng)?;
            let chars = encode(&raw);
            // Duplicates within a set are astronomically unlikely (2^-80) but cheap to refuse.
            let dup = codes
                .iter()
                .any(|c: &RecoveryCode| c.as_str().replace('-', "").as_bytes() == chars.as_ref());
            if dup {
                continue;
            }
            let mut salt = [0u8; SALT_LEN];
            rng.try_fill_bytes(&mut salt)
                .map_err(|_| crate::Error::Rng)?;
            let hash = derive(chars.as_ref(), &salt, rounds);
            hashes.push(StoredCode { salt, hash });
            codes.push(RecoveryCode::display(&chars));
        }
        Ok((
            RecoveryCodes(codes),
            HashedRecoveryCodes {
                rounds,
                codes: hashes,
            },
        ))
    }

    /// The codes, in display form.
    pub fn iter(&self) -> impl Iterator<Item = &RecoveryCode> {
        self.0.iter()
    }

    /// How many codes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an empty set (never produced by the flows).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The codes one per line, for a download as a text file.
    #[must_use]
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(self.0.len() * 20));
        for c in &self.0 {
            out.push_str(c.as_str());
            out.push('\n');
        }
        out
    }
}

impl fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecoveryCodes({} codes, <redacted>)", self.0.len())
    }
}

/// One stored code: salt and PBKDF2 output.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct StoredCode {
    pub(crate) salt: [u8; SALT_LEN],
    pub(crate) hash: [u8; HASH_LEN],
}

/// The stored, hashed form of a set of recovery codes. Holds no plaintext.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct HashedRecoveryCodes {
    pub(crate) rounds: u32,
    pub(crate) codes: Vec<StoredCode>,
}

impl fmt::Debug for HashedRecoveryCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashedRecoveryCodes")
            .field("remaining", &self.codes.len())
            .field("rounds", &self.rounds)
            .finish()
    }
}

impl HashedRecoveryCodes {
    /// PBKDF2-HMAC-SHA256 iterations per code. The codes carry 80 random bits, so the work
    /// factor only needs to add margin against an offline search, not to rescue weak input;
    /// this keeps checking one code against a full set of ten near 20 ms.
    pub(crate) const DEFAULT_ROUNDS: u32 = 10_000;

    /// How many unused codes are left.
    pub(crate) fn remaining(&self) -> usize {
        self.codes.len()
    }

    /// Checks typed text against every stored code in constant time and returns the index of
    /// the match. The caller removes that index in the same atomic update that grants access.
    ///
    /// # Errors
    /// [`RecoveryCodeError`] when the text is not shaped like a recovery code (nothing is
    /// hashed then).
    #[cfg(test)]
    pub(crate) fn find(&self, input: &str) -> Result<Option<usize>, RecoveryCodeError> {
        let normalized = normalize(input)?;
        Ok(self.find_normalized(&normalized))
    }

    /// As [`HashedRecoveryCodes::find`], for input already normalized.
    pub(crate) fn find_normalized(&self, normalized: &[u8; CODE_CHARS]) -> Option<usize> {
        let mut found = Choice::from(0);
        let mut index = 0u32;
        for (i, stored) in self.codes.iter().enumerate() {
            let candidate = derive(normalized, &stored.salt, self.rounds);
            let hit = candidate.ct_eq(&stored.hash);
            index.conditional_assign(&(i as u32), hit & !found);
            found |= hit;
        }
        bool::from(found).then_some(index as usize)
    }

    /// Where the code with this salt is now (salts are unique and random), if still unused.
    pub(crate) fn position_of_salt(&self, salt: &[u8; SALT_LEN]) -> Option<usize> {
        self.codes
            .iter()
            .position(|c| bool::from(c.salt.ct_eq(salt)))
    }

    /// The set with code `index` removed.
    pub(crate) fn without(&self, index: usize) -> Self {
        let mut next = self.clone();
        if index < next.codes.len() {
            next.codes.remove(index);
        }
        next
    }
}

/// Normalizes typed text to the 16 canonical characters.
pub(crate) fn normalize(input: &str) -> Result<Zeroizing<[u8; CODE_CHARS]>, RecoveryCodeError> {
    if input.len() > 128 {
        return Err(RecoveryCodeError::TooLong);
    }
    let mut out = Zeroizing::new([0u8; CODE_CHARS]);
    let mut n = 0usize;
    for (i, ch) in input.chars().enumerate() {
        if ch.is_whitespace() || ch == '-' {
            continue;
        }
        // Full-width forms (U+FF01..U+FF5E), as some input methods type them, read as ASCII.
        let ch = match ch {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(ch as u32 - 0xFEE0).unwrap_or(ch),
            _ => ch,
        };
        if ch == '-' {
            continue;
        }
        let c = match ch.to_ascii_uppercase() {
            'I' | 'L' => b'1',
            'O' => b'0',
            c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c as u8,
            _ => return Err(RecoveryCodeError::InvalidCharacter { position: i + 1 }),
        };
        if n < CODE_CHARS {
            out[n] = c;
        }
        n += 1;
    }
    if n != CODE_CHARS {
        return Err(RecoveryCodeError::WrongLength { found: n });
    }
    Ok(out)
}

fn encode(raw: &[u8; CODE_BYTES]) -> Zeroizing<[u8; CODE_CHARS]> {
    let mut out = Zeroizing::new([0u8; CODE_CHARS]);
    let mut acc: u64 = 0;
    let mut bits = 0u32;
    let mut n = 0;
    for &b in raw {
        acc = (acc << 8) | u64::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out[n] = ALPHABET[((acc >> bits) & 31) as usize];
            n += 1;
        }
    }
    acc.zeroize();
    out
}

fn derive(code: &[u8], salt: &[u8; SALT_LEN], rounds: u32) -> [u8; HASH_LEN] {
    let mut out = [0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(code, salt, rounds.max(1), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> (RecoveryCodes, HashedRecoveryCodes) {
        RecoveryCodes::generate_with_rounds(&mut getrandom::SysRng, n, 10).unwrap()
    }

    #[test]
    fn format_and_alphabet() {
        // SEC-21: 16 characters of a 32-symbol alphabet = 80 bits.
        let (codes, hashes) = set(10);
        assert_eq!(hashes.remaining(), 10);
        for c in codes.iter() {
            let s = c.as_str();
            assert_eq!(s.len(), 19);
            for (i, ch) in s.chars().enumerate() {
                if i % 5 == 4 {
                    assert_eq!(ch, '-');
                } else {
                    assert!(ALPHABET.contains(&(ch as u8)), "{ch}");
                }
            }
        }
    }

    #[test]
    fn finds_each_code_with_sloppy_typing() {
        // SEC-27.
        let (codes, hashes) = set(5);
        for (i, c) in codes.iter().enumerate() {
            let sloppy = c
                .as_str()
                .to_lowercase()
                .replace('-', " ")
                .replace('0', "o")
                .replace('1', "l");
            assert_eq!(hashes.find(&sloppy).unwrap(), Some(i));
            assert_eq!(hashes.find(c.as_str()).unwrap(), Some(i));
        }
        // One character short is not a code; one character different is no match.
        let s = codes.iter().next().unwrap().as_str().replace('-', "");
        assert_eq!(
            hashes.find(&s[..15]),
            Err(RecoveryCodeError::WrongLength { found: 15 })
        );
        let mut changed = s.into_bytes();
        changed[0] = if changed[0] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            hashes
                .find(core::str::from_utf8(&changed).unwrap())
                .unwrap(),
            None
        );
        assert!(matches!(
            hashes.find("ABCD-EFGH-JKMN-PQRU"),
            Err(RecoveryCodeError::InvalidCharacter { position: 19 })
        ));
    }

    #[test]
    fn salts_are_unique_and_no_plaintext_is_stored() {
        // SEC-22.
        let (codes, hashes) = set(10);
        let mut salts: Vec<_> = hashes.codes.iter().map(|c| c.salt).collect();
        salts.sort();
        salts.dedup();
        assert_eq!(salts.len(), 10);
        for (c, stored) in codes.iter().zip(&hashes.codes) {
            let plain = c.as_str().replace('-', "");
            assert!(
                !stored
                    .hash
                    .windows(4)
                    .any(|w| plain.as_bytes().windows(4).any(|p| p == w))
            );
        }
        assert!(
            !format!("{hashes:?} {codes:?}").contains(&codes.iter().next().unwrap().as_str()[..4])
        );
    }

    #[test]
    fn no_duplicates_across_many_sets() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1_000 {
            let (codes, _) = set(10);
            for c in codes.iter() {
                assert!(seen.insert(c.as_str().to_owned()));
            }
        }
    }
}

//! A keyed HMAC state, computed once per secret and cloned per counter.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

use super::OtpError;
use super::code::Code;
use super::params::{Algorithm, Digits};

/// The HMAC state after absorbing the key: cloning it and hashing one 8-byte counter costs
/// two compression-function calls instead of four. The states are zeroized on drop.
#[derive(Clone)]
pub(crate) enum KeyedMac {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
    Sha512(Hmac<Sha512>),
}

impl KeyedMac {
    pub(crate) fn new(algorithm: Algorithm, key: &[u8]) -> Result<Self, OtpError> {
        Ok(match algorithm {
            Algorithm::Sha1 => {
                KeyedMac::Sha1(Hmac::new_from_slice(key).map_err(|_| OtpError::InvalidKey)?)
            }
            Algorithm::Sha256 => {
                KeyedMac::Sha256(Hmac::new_from_slice(key).map_err(|_| OtpError::InvalidKey)?)
            }
            Algorithm::Sha512 => {
                KeyedMac::Sha512(Hmac::new_from_slice(key).map_err(|_| OtpError::InvalidKey)?)
            }
        })
    }

    /// HOTP(K, C) = Truncate(HMAC(K, C)) with C as 8 big-endian bytes (RFC 4226 section 5.3).
    pub(crate) fn code(&self, counter: u64, digits: Digits) -> Code {
        let msg = counter.to_be_bytes();
        let value = match self {
            KeyedMac::Sha1(m) => truncate_fixed(&finish(m, &msg)),
            KeyedMac::Sha256(m) => truncate_fixed(&finish(m, &msg)),
            KeyedMac::Sha512(m) => truncate_fixed(&finish(m, &msg)),
        };
        Code::from_value(value, digits)
    }
}

fn finish<M: Mac + Clone>(keyed: &M, msg: &[u8]) -> hmac::digest::Output<M> {
    let mut m = keyed.clone();
    m.update(msg);
    m.finalize().into_bytes()
}

fn truncate_fixed(mac: &[u8]) -> u32 {
    // Every HMAC output here is at least 20 bytes, so the fallback is never taken.
    dynamic_truncation(mac).unwrap_or(0)
}

/// RFC 4226 section 5.3 dynamic truncation: the low 4 bits of the last byte choose an offset
/// `o`; the 31-bit value of bytes `o..o+4` is returned (SEC-01). For SHA-256 and SHA-512 the
/// offset comes from the last byte of the longer MAC, as in RFC 6238 Appendix A.
///
/// Returns `None` for a MAC shorter than 20 bytes.
///
/// ```
/// // RFC 4226 section 5.4 worked example.
/// let mac = [0x1f, 0x86, 0x98, 0x69, 0x0e, 0x02, 0xca, 0x16, 0x61, 0x85, 0x50, 0xef, 0x7f,
///            0x19, 0xda, 0x8e, 0x94, 0x5b, 0x55, 0x5a];
/// assert_eq!(totp_mfa::otp::dynamic_truncation(&mac), Some(0x50ef7f19));
/// assert_eq!(0x50ef7f19 % 1_000_000, 872921);
/// ```
#[must_use]
pub fn dynamic_truncation(mac: &[u8]) -> Option<u32> {
    if mac.len() < 20 {
        return None;
    }
    let offset = (mac[mac.len() - 1] & 0x0f) as usize;
    let b = &mac[offset..offset + 4];
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff)
}

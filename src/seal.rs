//! Secrets at rest: the TOTP secret and the ticket key are sealed with an AEAD before they
//! reach any store (SEC-08; RFC 6238 section 5.1 recommends encrypting stored keys).
//!
//! With the `encryption` feature and [`Mfa::with_sealing_keys`](crate::Mfa::with_sealing_keys),
//! each secret field of a record is encrypted with XChaCha20-Poly1305 under the current key,
//! with a random 192-bit nonce, and bound by its associated data to the user id and the
//! field, so a sealed secret copied into another user's record does not open. The key's id
//! is stored beside the ciphertext: older keys still open what they sealed, new writes use
//! the current key, so keys rotate without a migration. A record that does not open fails
//! closed with [`Error::Sealing`](crate::Error::Sealing).
//!
//! # What sealing does not do
//! * **It keeps secrets confidential; it does not make the record tamper-proof.** Only the
//!   two secret fields are sealed. The rest of the record (state, failure count, last used
//!   time step, recovery-code hashes) is authenticated by nothing: whoever can write to the
//!   store can, without any key, restore an older copy of a row (bringing back spent codes
//!   and a cleared failure count) or copy another user's recovery-code hashes into a row.
//!   They could as well delete the row, which turns MFA off, so write access to the table
//!   must be as restricted as the service itself; restoring a backup brings back the codes
//!   spent since it was taken.
//! * **Rotation is lazy.** A record is re-sealed under the current key only when a flow
//!   writes it (enrollment, a login's charge or success, regeneration, disable, unlock);
//!   reading it (`status`, `start_login`) does not. Keep an old key configured as long as
//!   records sealed with it may remain, or users who have not signed in since fail with
//!   [`SealError::UnknownKey`].
//! * **Several app servers: roll a new key out in two steps.** A server whose current key
//!   is the new one re-seals every record it writes; a server that does not know that key
//!   yet then fails closed for those users. So first deploy the new key everywhere as an
//!   older key only (`SealingKeys::new(old).with_previous(new)`: it opens, it does not
//!   seal); once every server has it, make it current
//!   (`SealingKeys::new(new).with_previous(old)`).

#![cfg_attr(not(feature = "encryption"), allow(dead_code, unreachable_pub))]

use core::fmt;

use thiserror::Error;
use zeroize::Zeroizing;

/// Why a sealed field could not be opened. Nothing is granted when this happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SealError {
    /// The record was sealed under a key id that is not configured.
    #[error("the record was sealed with key {0}, which is not configured")]
    UnknownKey(u32),
    /// The ciphertext does not open under the key: a wrong key, a tampered record, or a
    /// record copied from another user.
    #[error("a sealed secret does not open: wrong key, tampering, or another user's record")]
    Inauthentic,
    /// Sealing keys are configured but the record holds a plain secret (written before
    /// encryption was enabled). See `SealingKeys::accept_unsealed_records` (feature
    /// `encryption`).
    #[error("the record holds an unsealed secret while sealing is required")]
    Unsealed,
    /// The record holds a sealed secret but no sealing keys are configured.
    #[error("the record holds a sealed secret but no sealing keys are configured")]
    NoKeys,
}

/// One 256-bit sealing key with its id. Zeroized on drop, redacted in `Debug`.
///
/// ```
/// # #[cfg(feature = "encryption")] {
/// use totp_mfa::SealingKey;
/// let key = SealingKey::new(1, [7; 32]);
/// assert_eq!(key.id(), 1);
/// assert_eq!(format!("{key:?}"), "SealingKey { id: 1, .. }");
/// # }
/// ```
#[derive(Clone)]
pub struct SealingKey {
    id: u32,
    key: Zeroizing<[u8; 32]>,
}

impl SealingKey {
    /// A key with an id of your choosing (store the bytes in your secrets manager, never in
    /// the same database as the records).
    #[must_use]
    pub fn new(id: u32, key: [u8; 32]) -> Self {
        SealingKey {
            id,
            key: Zeroizing::new(key),
        }
    }

    /// The key's id, stored beside every ciphertext it seals.
    #[must_use]
    pub fn id(&self) -> u32 {
        self.id
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The current sealing key, used for every write, and older keys that still open what they
/// sealed.
///
/// ```
/// # #[cfg(feature = "encryption")] {
/// use totp_mfa::{SealingKey, SealingKeys};
/// let keys = SealingKeys::new(SealingKey::new(2, [2; 32]))
///     .with_previous(SealingKey::new(1, [1; 32]));
/// assert_eq!(keys.current_id(), 2);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct SealingKeys {
    current: SealingKey,
    previous: Vec<SealingKey>,
    accept_unsealed: bool,
}

impl SealingKeys {
    /// Keys with `current` for all new writes.
    #[must_use]
    pub fn new(current: SealingKey) -> Self {
        SealingKeys {
            current,
            previous: Vec::new(),
            accept_unsealed: false,
        }
    }

    /// Adds an older key that still opens records sealed with it (rotation).
    #[must_use]
    pub fn with_previous(mut self, key: SealingKey) -> Self {
        self.previous.push(key);
        self
    }

    /// Reads records written before encryption was enabled (their secrets in plain form);
    /// they are sealed on their next write. Off by default: then such records fail closed.
    /// Turn it on only for the migration, and off again once every record was rewritten.
    #[must_use]
    pub fn accept_unsealed_records(mut self) -> Self {
        self.accept_unsealed = true;
        self
    }

    /// The id of the key that seals new writes.
    #[must_use]
    pub fn current_id(&self) -> u32 {
        self.current.id
    }

    /// Every configured key with this id, the current one first. Two keys may carry one id
    /// (a new key given an old key's id by mistake): each is tried, so such a slip does not
    /// lock out the records the other sealed.
    fn with_id(&self, id: u32) -> impl Iterator<Item = &SealingKey> {
        core::iter::once(&self.current)
            .chain(&self.previous)
            .filter(move |k| k.id == id)
    }
}

/// Which secret field a ciphertext holds: part of the associated data.
#[derive(Clone, Copy)]
pub(crate) enum Field {
    TotpSecret,
    TicketKey,
}

impl Field {
    fn label(self) -> &'static [u8] {
        match self {
            Field::TotpSecret => b"totp-secret",
            Field::TicketKey => b"ticket-key",
        }
    }
}

/// How the record codec treats secret fields for one user.
pub(crate) struct Sealer<'a> {
    pub(crate) user: &'a crate::UserId,
    pub(crate) keys: Option<&'a SealingKeys>,
}

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

impl Sealer<'_> {
    fn aad(&self, field: Field, key_id: u32) -> Vec<u8> {
        let user = self.user.as_str().as_bytes();
        let mut aad = Vec::with_capacity(64 + user.len());
        aad.extend_from_slice(b"totp-mfa/sealed/v1\0");
        aad.extend_from_slice(field.label());
        aad.push(0);
        aad.extend_from_slice(&key_id.to_be_bytes());
        aad.extend_from_slice(&(user.len() as u32).to_be_bytes());
        aad.extend_from_slice(user);
        aad
    }

    /// Writes `plain` as `0 | len | bytes`, or sealed as
    /// `1 | key id | nonce | len | ciphertext+tag`.
    pub(crate) fn put(
        &self,
        w: &mut Vec<u8>,
        field: Field,
        plain: &[u8],
        nonce: &[u8; NONCE_LEN],
    ) -> Result<(), crate::Error> {
        match self.keys {
            None => {
                w.push(0);
                w.push(plain.len() as u8);
                w.extend_from_slice(plain);
                Ok(())
            }
            Some(keys) => self.seal(w, keys, field, plain, nonce),
        }
    }

    #[cfg(feature = "encryption")]
    fn seal(
        &self,
        w: &mut Vec<u8>,
        keys: &SealingKeys,
        field: Field,
        plain: &[u8],
        nonce: &[u8; NONCE_LEN],
    ) -> Result<(), crate::Error> {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        use chacha20poly1305::{XChaCha20Poly1305, XNonce};
        let key = &keys.current;
        let cipher = XChaCha20Poly1305::new_from_slice(key.key.as_ref())
            .map_err(|_| crate::Error::Sealing(SealError::Inauthentic))?;
        let aad = self.aad(field, key.id);
        let sealed = cipher
            .encrypt(
                &XNonce::from(*nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .map_err(|_| crate::Error::Sealing(SealError::Inauthentic))?;
        w.push(1);
        w.extend_from_slice(&key.id.to_be_bytes());
        w.extend_from_slice(nonce);
        w.push(sealed.len() as u8);
        w.extend_from_slice(&sealed);
        Ok(())
    }

    #[cfg(not(feature = "encryption"))]
    fn seal(
        &self,
        _: &mut Vec<u8>,
        _: &SealingKeys,
        _: Field,
        _: &[u8],
        _: &[u8; NONCE_LEN],
    ) -> Result<(), crate::Error> {
        Err(crate::Error::Sealing(SealError::NoKeys))
    }

    /// Reads what [`Sealer::put`] wrote; `take` yields the next `n` bytes of the record.
    pub(crate) fn get<'r>(
        &self,
        field: Field,
        mut take: impl FnMut(usize) -> Result<&'r [u8], crate::Error>,
    ) -> Result<Zeroizing<Vec<u8>>, crate::Error> {
        let kind = take(1)?[0];
        match kind {
            0 => {
                if self.keys.is_some_and(|k| !k.accept_unsealed) {
                    return Err(crate::Error::Sealing(SealError::Unsealed));
                }
                let n = usize::from(take(1)?[0]);
                Ok(Zeroizing::new(take(n)?.to_vec()))
            }
            1 => {
                let b = take(4)?;
                let id = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                let mut nonce = [0u8; NONCE_LEN];
                nonce.copy_from_slice(take(NONCE_LEN)?);
                let n = usize::from(take(1)?[0]);
                if n < TAG_LEN {
                    return Err(crate::Error::CorruptRecord("sealed field too short"));
                }
                let sealed = take(n)?;
                let keys = self.keys.ok_or(crate::Error::Sealing(SealError::NoKeys))?;
                let mut outcome = Err(crate::Error::Sealing(SealError::UnknownKey(id)));
                for key in keys.with_id(id) {
                    outcome = self.open(key, field, &nonce, sealed);
                    if outcome.is_ok() {
                        break;
                    }
                }
                outcome
            }
            _ => Err(crate::Error::CorruptRecord("bad secret field")),
        }
    }

    #[cfg(feature = "encryption")]
    fn open(
        &self,
        key: &SealingKey,
        field: Field,
        nonce: &[u8; NONCE_LEN],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, crate::Error> {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        use chacha20poly1305::{XChaCha20Poly1305, XNonce};
        let cipher = XChaCha20Poly1305::new_from_slice(key.key.as_ref())
            .map_err(|_| crate::Error::Sealing(SealError::Inauthentic))?;
        let aad = self.aad(field, key.id);
        cipher
            .decrypt(
                &XNonce::from(*nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| crate::Error::Sealing(SealError::Inauthentic))
    }

    #[cfg(not(feature = "encryption"))]
    fn open(
        &self,
        _: &SealingKey,
        _: Field,
        _: &[u8; NONCE_LEN],
        _: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, crate::Error> {
        Err(crate::Error::Sealing(SealError::NoKeys))
    }
}

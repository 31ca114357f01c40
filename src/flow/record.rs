//! A user's persisted MFA state and its versioned binary encoding.
//!
//! The store sees only the encoded bytes. Decoding is total: any byte string either decodes
//! or gives [`Error::CorruptRecord`], never a panic, and every length is bounded.

use zeroize::{Zeroize, Zeroizing};

use crate::error::Error;
use crate::otp::{Algorithm, Digits, Period, TotpParams};
use crate::recovery::{HASH_LEN, HashedRecoveryCodes, SALT_LEN, StoredCode};
use crate::seal::{Field, Sealer};
use crate::secret::Secret;

const MAGIC: &[u8; 4] = b"TMFA";
const FORMAT_VERSION: u8 = 1;
/// Bounds on stored PBKDF2 rounds: below, a record is suspect; above, one check could cost
/// minutes of CPU (a crafted record must not become a denial of service).
pub(crate) const MIN_ROUNDS: u32 = 1_000;
pub(crate) const MAX_ROUNDS: u32 = 1_000_000;

/// A 256-bit key kept in a record: zeroized on drop, redacted in `Debug`.
#[derive(Clone, PartialEq, Eq, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub(crate) struct Key32(pub(crate) [u8; 32]);

impl core::fmt::Debug for Key32 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Key32(<redacted>)")
    }
}

/// A single-use random token, stored as its SHA-256 hash.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct TokenHash {
    pub(crate) hash: [u8; 32],
    pub(crate) expires_at: u64,
}

/// Consecutive failed second-factor attempts, across all challenges (SEC-14).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct Failures {
    pub(crate) count: u32,
    pub(crate) last_at: u64,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Pending {
    pub(crate) secret: Secret,
    pub(crate) params: TotpParams,
    /// The account name shown in the app, to show the same QR code again.
    pub(crate) account: String,
    pub(crate) issued_at: u64,
    pub(crate) expires_at: u64,
    pub(crate) attempts: u32,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Active {
    pub(crate) secret: Secret,
    pub(crate) params: TotpParams,
    /// The last accepted time step: codes at or before it are refused (SEC-12).
    pub(crate) last_step: u64,
    pub(crate) activated_at: u64,
    pub(crate) recovery: HashedRecoveryCodes,
    /// Keys the MAC of login tickets: tickets are stateless, so starting a login writes
    /// nothing.
    pub(crate) ticket_key: Key32,
    /// Bumped by every successful login: a ticket is valid only for the epoch it was issued
    /// in, so a success spends every open ticket (single use).
    pub(crate) epoch: u64,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum State {
    Disabled,
    Pending(Pending),
    Active(Active),
}

/// Everything stored for one user.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Record {
    /// Incremented at every activation, so older grants cannot act on a newer credential.
    pub(crate) generation: u64,
    pub(crate) failures: Failures,
    pub(crate) step_up: Option<TokenHash>,
    pub(crate) state: State,
}

impl Default for Record {
    fn default() -> Self {
        Record {
            generation: 0,
            failures: Failures::default(),
            step_up: None,
            state: State::Disabled,
        }
    }
}

impl Record {
    /// Unused recovery codes, when MFA is active.
    pub(crate) fn recovery_codes_left(&self) -> Option<usize> {
        match &self.state {
            State::Active(a) => Some(a.recovery.remaining()),
            _ => None,
        }
    }

    /// Encodes the record; secret fields go through `sealer` (sealed under the current key
    /// when keys are configured, with the two random `nonces`).
    pub(crate) fn encode(
        &self,
        sealer: &Sealer<'_>,
        nonces: &[[u8; 24]; 2],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let mut w = Zeroizing::new(Vec::with_capacity(512));
        w.extend_from_slice(MAGIC);
        w.push(FORMAT_VERSION);
        put_u64(&mut w, self.generation);
        put_u32(&mut w, self.failures.count);
        put_u64(&mut w, self.failures.last_at);
        match &self.step_up {
            None => w.push(0),
            Some(t) => {
                w.push(1);
                put_token(&mut w, t);
            }
        }
        match &self.state {
            State::Disabled => w.push(0),
            State::Pending(p) => {
                w.push(1);
                sealer.put(
                    &mut w,
                    Field::TotpSecret,
                    p.secret.expose_bytes(),
                    &nonces[0],
                )?;
                put_params(&mut w, &p.params);
                put_text(&mut w, &p.account);
                put_u64(&mut w, p.issued_at);
                put_u64(&mut w, p.expires_at);
                put_u32(&mut w, p.attempts);
            }
            State::Active(a) => {
                w.push(2);
                sealer.put(
                    &mut w,
                    Field::TotpSecret,
                    a.secret.expose_bytes(),
                    &nonces[0],
                )?;
                put_params(&mut w, &a.params);
                put_u64(&mut w, a.last_step);
                put_u64(&mut w, a.activated_at);
                put_u32(&mut w, a.recovery.rounds);
                w.push(a.recovery.codes.len() as u8);
                for c in &a.recovery.codes {
                    w.extend_from_slice(&c.salt);
                    w.extend_from_slice(&c.hash);
                }
                sealer.put(&mut w, Field::TicketKey, &a.ticket_key.0, &nonces[1])?;
                put_u64(&mut w, a.epoch);
            }
        }
        Ok(w)
    }

    /// Decodes a record, opening its secret fields with `sealer`.
    pub(crate) fn decode(bytes: &[u8], sealer: &Sealer<'_>) -> Result<Record, Error> {
        let mut r = Reader(bytes);
        if r.take(4)? != MAGIC {
            return Err(Error::CorruptRecord("not a totp-mfa record"));
        }
        if r.u8()? != FORMAT_VERSION {
            return Err(Error::CorruptRecord("unknown record format version"));
        }
        let generation = r.u64()?;
        let failures = Failures {
            count: r.u32()?,
            last_at: r.u64()?,
        };
        let step_up = match r.u8()? {
            0 => None,
            1 => Some(r.token()?),
            _ => return Err(Error::CorruptRecord("bad step-up flag")),
        };
        let state = match r.u8()? {
            0 => State::Disabled,
            1 => State::Pending(Pending {
                secret: r.secret(sealer)?,
                params: r.params()?,
                account: r.text()?,
                issued_at: r.u64()?,
                expires_at: r.u64()?,
                attempts: r.u32()?,
            }),
            2 => {
                let secret = r.secret(sealer)?;
                let params = r.params()?;
                let last_step = r.u64()?;
                let activated_at = r.u64()?;
                let rounds = r.u32()?;
                if !(MIN_ROUNDS..=MAX_ROUNDS).contains(&rounds) {
                    return Err(Error::CorruptRecord("recovery hash rounds out of bounds"));
                }
                let count = r.u8()? as usize;
                if count > crate::recovery::RecoveryCodes::MAX_COUNT {
                    return Err(Error::CorruptRecord("too many recovery codes"));
                }
                let mut codes = Vec::with_capacity(count);
                for _ in 0..count {
                    let mut salt = [0u8; SALT_LEN];
                    salt.copy_from_slice(r.take(SALT_LEN)?);
                    let mut hash = [0u8; HASH_LEN];
                    hash.copy_from_slice(r.take(HASH_LEN)?);
                    codes.push(StoredCode { salt, hash });
                }
                let opened = sealer.get(Field::TicketKey, |n| r.take(n))?;
                if opened.len() != 32 {
                    return Err(Error::CorruptRecord("bad ticket key"));
                }
                let mut key = [0u8; 32];
                key.copy_from_slice(&opened);
                let ticket_key = Key32(key);
                key.zeroize();
                State::Active(Active {
                    secret,
                    params,
                    last_step,
                    activated_at,
                    recovery: HashedRecoveryCodes { rounds, codes },
                    ticket_key,
                    epoch: r.u64()?,
                })
            }
            _ => return Err(Error::CorruptRecord("unknown state")),
        };
        if !r.0.is_empty() {
            return Err(Error::CorruptRecord("trailing bytes"));
        }
        Ok(Record {
            generation,
            failures,
            step_up,
            state,
        })
    }
}

fn put_u32(w: &mut Vec<u8>, v: u32) {
    w.extend_from_slice(&v.to_be_bytes());
}

fn put_u64(w: &mut Vec<u8>, v: u64) {
    w.extend_from_slice(&v.to_be_bytes());
}

fn put_token(w: &mut Vec<u8>, t: &TokenHash) {
    w.extend_from_slice(&t.hash);
    put_u64(w, t.expires_at);
}

fn put_text(w: &mut Vec<u8>, text: &str) {
    // Account names are at most 256 bytes (OtpAuth::MAX_NAME_LEN); cut at a char boundary
    // defensively so the length always fits.
    let mut end = text.len().min(u16::MAX as usize);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    w.extend_from_slice(&(end as u16).to_be_bytes());
    w.extend_from_slice(&text.as_bytes()[..end]);
}

fn put_params(w: &mut Vec<u8>, p: &TotpParams) {
    w.push(p.algorithm().tag());
    w.push(p.digits().get() as u8);
    put_u32(w, p.period().seconds() as u32);
    put_u64(w, p.t0());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.0.len() < n {
            return Err(Error::CorruptRecord("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, Error> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn token(&mut self) -> Result<TokenHash, Error> {
        let mut hash = [0u8; 32];
        hash.copy_from_slice(self.take(32)?);
        Ok(TokenHash {
            hash,
            expires_at: self.u64()?,
        })
    }

    fn secret(&mut self, sealer: &Sealer<'_>) -> Result<Secret, Error> {
        let bytes = sealer.get(Field::TotpSecret, |n| self.take(n))?;
        // The flows only ever store generated secrets (at least 128 bits).
        if bytes.len() < Secret::MIN_NEW_BYTES {
            return Err(Error::CorruptRecord("secret shorter than 128 bits"));
        }
        Secret::from_bytes(&bytes).map_err(|_| Error::CorruptRecord("bad secret"))
    }

    fn text(&mut self) -> Result<String, Error> {
        let b = self.take(2)?;
        let n = usize::from(u16::from_be_bytes([b[0], b[1]]));
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| Error::CorruptRecord("bad account name"))
    }

    fn params(&mut self) -> Result<TotpParams, Error> {
        let algorithm =
            Algorithm::from_tag(self.u8()?).ok_or(Error::CorruptRecord("bad algorithm"))?;
        let digits =
            Digits::new(u32::from(self.u8()?)).map_err(|_| Error::CorruptRecord("bad digits"))?;
        let period =
            Period::new(u64::from(self.u32()?)).map_err(|_| Error::CorruptRecord("bad period"))?;
        let t0 = self.u64()?;
        // Policies only ever store T0 = 0 (an otpauth URI cannot carry another).
        if t0 != 0 {
            return Err(Error::CorruptRecord("T0 other than 0"));
        }
        Ok(TotpParams::default()
            .with_algorithm(algorithm)
            .with_digits(digits)
            .with_period(period)
            .with_t0(t0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::RecoveryCodes;

    fn sample() -> Record {
        let secret = Secret::from_bytes(b"12345678901234567890").unwrap();
        let (_, recovery) =
            RecoveryCodes::generate_with_rounds(&mut getrandom::SysRng, 10, MIN_ROUNDS).unwrap();
        Record {
            generation: 3,
            failures: Failures {
                count: 2,
                last_at: 99,
            },
            step_up: Some(TokenHash {
                hash: [9; 32],
                expires_at: 2000,
            }),
            state: State::Active(Active {
                secret,
                params: TotpParams::default().with_digits(Digits::EIGHT),
                last_step: 42,
                activated_at: 1,
                recovery,
                ticket_key: Key32([5; 32]),
                epoch: 7,
            }),
        }
    }

    fn plain() -> Sealer<'static> {
        static USER: std::sync::OnceLock<crate::UserId> = std::sync::OnceLock::new();
        Sealer {
            user: USER.get_or_init(|| crate::UserId::new("alice").unwrap()),
            keys: None,
        }
    }

    fn encode(r: &Record) -> Zeroizing<Vec<u8>> {
        r.encode(&plain(), &[[0; 24]; 2]).unwrap()
    }

    #[test]
    fn round_trip() {
        let r = sample();
        assert_eq!(Record::decode(&encode(&r), &plain()).unwrap(), r);
        let d = Record::default();
        assert_eq!(Record::decode(&encode(&d), &plain()).unwrap(), d);
    }

    #[test]
    fn every_truncation_and_byte_flip_is_an_error_or_a_record_never_a_panic() {
        let bytes = encode(&sample());
        for n in 0..bytes.len() {
            assert!(Record::decode(&bytes[..n], &plain()).is_err(), "prefix {n}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.to_vec();
            b[i] ^= 0xff;
            let _ = Record::decode(&b, &plain());
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(Record::decode(&longer, &plain()).is_err());
    }
}

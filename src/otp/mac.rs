//! HMAC of one 8-byte counter from a keyed state computed once per secret.
//!
//! HMAC(K, C) = H((K0 ^ opad) || H((K0 ^ ipad) || C)) (RFC 2104). The key block `K0 ^ ipad`
//! (resp. `opad`) fills exactly one block, so the hash state after absorbing it can be kept:
//! each counter then costs two compression-function calls, one for the inner hash of the
//! 8-byte counter and one for the outer hash of the inner digest, each a single padded block
//! built here (FIPS 180-4 section 5.1). No buffering, no allocation, nothing to clone but the
//! two chaining values. The compression functions are RustCrypto's (`sha1`, `sha2`), with
//! SHA-NI where the CPU has it; the result is checked against RustCrypto's `hmac` in the
//! tests below and in `tests/proptest_otp.rs`.

use sha1::Sha1;
use sha1::digest::Digest;
use sha2::{Sha256, Sha512};
use zeroize::Zeroize;

use super::OtpError;
use super::code::Code;
use super::params::{Algorithm, Digits};

const IPAD: u8 = 0x36;
const OPAD: u8 = 0x5c;

/// The chaining values after absorbing `K0 ^ ipad` (inner) and `K0 ^ opad` (outer): key
/// equivalents, zeroized on drop.
#[derive(Clone)]
pub(crate) enum KeyedMac {
    Sha1 { inner: [u32; 5], outer: [u32; 5] },
    Sha256 { inner: [u32; 8], outer: [u32; 8] },
    Sha512 { inner: [u64; 8], outer: [u64; 8] },
}

impl Drop for KeyedMac {
    fn drop(&mut self) {
        match self {
            // As slices: `zeroize` wipes a slice in one pass behind a barrier, an array word
            // by word with a volatile write each.
            KeyedMac::Sha1 { inner, outer } => {
                inner.as_mut_slice().zeroize();
                outer.as_mut_slice().zeroize();
            }
            KeyedMac::Sha256 { inner, outer } => {
                inner.as_mut_slice().zeroize();
                outer.as_mut_slice().zeroize();
            }
            KeyedMac::Sha512 { inner, outer } => {
                inner.as_mut_slice().zeroize();
                outer.as_mut_slice().zeroize();
            }
        }
    }
}

/// The initial hash values (FIPS 180-4 sections 5.3.1, 5.3.3, 5.3.5).
const SHA1_H0: [u32; 5] = [
    0x6745_2301,
    0xefcd_ab89,
    0x98ba_dcfe,
    0x1032_5476,
    0xc3d2_e1f0,
];
const SHA256_H0: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];
const SHA512_H0: [u64; 8] = [
    0x6a09_e667_f3bc_c908,
    0xbb67_ae85_84ca_a73b,
    0x3c6e_f372_fe94_f82b,
    0xa54f_f53a_5f1d_36f1,
    0x510e_527f_ade6_82d1,
    0x9b05_688c_2b3e_6c1f,
    0x1f83_d9ab_fb41_bd6b,
    0x5be0_cd19_137e_2179,
];

fn sha1_compress(state: &mut [u32; 5], block: &[u8; 64]) {
    sha1::block_api::compress(state, core::slice::from_ref(block));
}

fn sha256_compress(state: &mut [u32; 8], block: &[u8; 64]) {
    sha2::block_api::compress256(state, core::slice::from_ref(block));
}

fn sha512_compress(state: &mut [u64; 8], block: &[u8; 128]) {
    sha2::block_api::compress512(state, core::slice::from_ref(block));
}

/// The chaining values after one block `K0 ^ ipad`, and after one block `K0 ^ opad`, where
/// `K0` (RFC 2104, FIPS 198-1) is the key zero-padded to the block size, or its hash when it
/// is longer than a block. `K0 ^ ipad` and `K0 ^ opad` live in two local buffers, wiped
/// before returning.
fn absorb_pads<D: Digest, S: Copy, const B: usize>(
    key: &[u8],
    h0: S,
    compress: impl Fn(&mut S, &[u8; B]),
) -> (S, S) {
    let mut k0 = [0u8; B];
    if key.len() <= B {
        k0[..key.len()].copy_from_slice(key);
    } else {
        let mut hashed = D::digest(key);
        let n = hashed.len();
        k0[..n].copy_from_slice(&hashed);
        hashed.as_mut_slice().zeroize();
    }
    // Both pad blocks before either compression, so that the two (independent) compressions
    // run side by side.
    let mut opad = k0;
    k0.iter_mut().for_each(|b| *b ^= IPAD);
    opad.iter_mut().for_each(|b| *b ^= OPAD);
    let mut inner = h0;
    let mut outer = h0;
    compress(&mut inner, &k0);
    compress(&mut outer, &opad);
    k0.as_mut_slice().zeroize();
    opad.as_mut_slice().zeroize();
    (inner, outer)
}

/// The single padded block holding `msg` as the rest of a message whose first block was
/// already absorbed: `msg || 0x80 || 0... || bit length`, the length field `LEN` bytes wide
/// at the end.
fn final_block<const B: usize, const LEN: usize>(msg: &[u8]) -> [u8; B] {
    let mut block = [0u8; B];
    block[..msg.len()].copy_from_slice(msg);
    block[msg.len()] = 0x80;
    let bits = ((B + msg.len()) as u128 * 8).to_be_bytes();
    block[B - LEN..].copy_from_slice(&bits[16 - LEN..]);
    block
}

fn sha1_digest(h: &[u32; 5]) -> [u8; 20] {
    let mut out = [0u8; 20];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn sha256_digest(h: &[u32; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn sha512_digest(h: &[u64; 8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (chunk, word) in out.chunks_exact_mut(8).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// How many counters [`KeyedMac::values`] hashes side by side: the widest window a policy
/// allows (±2 steps) in one batch.
const LANES: usize = 5;

/// HMAC of the counters `first, first + 1, ...` (`n <= N` of them, none past
/// `u64::MAX`), handing each MAC to `sink`.
///
/// The compressions of different counters do not depend on each other, and the CPU overlaps
/// them when it can see them side by side: so every inner block is built first, then every
/// inner hash computed, then every outer block built, then every outer hash. Building each
/// block just before its compression instead makes the compression's loads wait for the
/// small stores that just wrote the block, one counter at a time (measured: about 1.5x
/// slower for a ±1 window).
#[inline]
#[allow(clippy::too_many_arguments)]
fn hmac_lanes<S: Copy, const N: usize, const B: usize, const LEN: usize, const D: usize>(
    inner: &S,
    outer: &S,
    first: u64,
    n: usize,
    compress: impl Fn(&mut S, &[u8; B]),
    digest: impl Fn(&S) -> [u8; D],
    mut sink: impl FnMut(usize, &[u8; D]),
) {
    let n = n.min(N);
    let mut blocks = [[0u8; B]; N];
    for (i, block) in blocks[..n].iter_mut().enumerate() {
        let counter = first.wrapping_add(i as u64);
        *block = final_block::<B, LEN>(&counter.to_be_bytes());
    }
    let mut states = [*inner; N];
    for (h, block) in states[..n].iter_mut().zip(&blocks) {
        compress(h, block);
    }
    for (block, h) in blocks[..n].iter_mut().zip(&states) {
        *block = final_block::<B, LEN>(&digest(h));
    }
    for (h, block) in states[..n].iter_mut().zip(&blocks) {
        *h = *outer;
        compress(h, block);
    }
    for (i, h) in states[..n].iter().enumerate() {
        sink(i, &digest(h));
    }
}

impl KeyedMac {
    pub(crate) fn new(algorithm: Algorithm, key: &[u8]) -> Result<Self, OtpError> {
        Ok(match algorithm {
            Algorithm::Sha1 => {
                let (inner, outer) = absorb_pads::<Sha1, _, 64>(key, SHA1_H0, sha1_compress);
                KeyedMac::Sha1 { inner, outer }
            }
            Algorithm::Sha256 => {
                let (inner, outer) = absorb_pads::<Sha256, _, 64>(key, SHA256_H0, sha256_compress);
                KeyedMac::Sha256 { inner, outer }
            }
            Algorithm::Sha512 => {
                let (inner, outer) = absorb_pads::<Sha512, _, 128>(key, SHA512_H0, sha512_compress);
                KeyedMac::Sha512 { inner, outer }
            }
        })
    }

    /// The full HMAC of `n <= N` consecutive counters from `first`, to `sink`.
    #[inline]
    fn lanes<const N: usize>(&self, first: u64, n: usize, sink: impl FnMut(usize, &[u8])) {
        let mut sink = sink;
        match self {
            KeyedMac::Sha1 { inner, outer } => hmac_lanes::<_, N, 64, 8, 20>(
                inner,
                outer,
                first,
                n,
                sha1_compress,
                sha1_digest,
                |i, mac| sink(i, mac),
            ),
            KeyedMac::Sha256 { inner, outer } => hmac_lanes::<_, N, 64, 8, 32>(
                inner,
                outer,
                first,
                n,
                sha256_compress,
                sha256_digest,
                |i, mac| sink(i, mac),
            ),
            KeyedMac::Sha512 { inner, outer } => hmac_lanes::<_, N, 128, 16, 64>(
                inner,
                outer,
                first,
                n,
                sha512_compress,
                sha512_digest,
                |i, mac| sink(i, mac),
            ),
        }
    }

    /// The 31-bit dynamically truncated HMAC of `counter` (RFC 4226 section 5.3), before the
    /// reduction modulo `10^digits`.
    pub(crate) fn value(&self, counter: u64) -> u32 {
        let mut value = 0;
        self.lanes::<1>(counter, 1, |_, mac| value = truncate_fixed(mac));
        value
    }

    /// [`KeyedMac::value`] of the counters `first, first + 1, ...`, one per slot of `out`.
    /// None may pass `u64::MAX`: the caller gives a range that exists.
    pub(crate) fn values(&self, first: u64, out: &mut [u32]) {
        for (k, chunk) in out.chunks_mut(LANES).enumerate() {
            let start = first.wrapping_add((k * LANES) as u64);
            self.lanes::<LANES>(start, chunk.len(), |i, mac| {
                chunk[i] = truncate_fixed(mac);
            });
        }
    }

    /// HOTP(K, C) = Truncate(HMAC(K, C)) with C as 8 big-endian bytes (RFC 4226 section 5.3).
    pub(crate) fn code(&self, counter: u64, digits: Digits) -> Code {
        Code::from_value(self.value(counter), digits)
    }

    /// The full HMAC of `counter`, for the tests that hold it against RustCrypto's `hmac`.
    #[cfg(test)]
    fn mac(&self, counter: u64) -> Vec<u8> {
        let mut out = Vec::new();
        self.lanes::<1>(counter, 1, |_, mac| out = mac.to_vec());
        out
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, KeyInit, Mac};

    fn reference(algorithm: Algorithm, key: &[u8], counter: u64) -> Vec<u8> {
        let msg = counter.to_be_bytes();
        match algorithm {
            Algorithm::Sha1 => {
                let mut m = <Hmac<Sha1> as KeyInit>::new_from_slice(key).unwrap();
                m.update(&msg);
                m.finalize().into_bytes().to_vec()
            }
            Algorithm::Sha256 => {
                let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
                m.update(&msg);
                m.finalize().into_bytes().to_vec()
            }
            Algorithm::Sha512 => {
                let mut m = <Hmac<Sha512> as KeyInit>::new_from_slice(key).unwrap();
                m.update(&msg);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    #[test]
    fn matches_rustcrypto_hmac_for_every_key_length_around_the_block_sizes() {
        let counters = [
            0,
            1,
            0x0235_23ec,
            0x27bc_86aa,
            u64::from(u32::MAX),
            u64::MAX,
        ];
        for algorithm in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
            for len in 0..=300usize {
                let key: Vec<u8> = (0..len).map(|i| (i * 131 + len) as u8).collect();
                let mac = KeyedMac::new(algorithm, &key).unwrap();
                for counter in counters {
                    let expected = reference(algorithm, &key, counter);
                    assert_eq!(
                        mac.mac(counter),
                        expected,
                        "{algorithm} len {len} {counter}"
                    );
                    assert_eq!(
                        mac.value(counter),
                        dynamic_truncation(&expected).unwrap(),
                        "{algorithm} len {len} {counter}"
                    );
                }
            }
        }
    }

    #[test]
    fn values_of_a_run_agree_with_one_at_a_time() {
        for algorithm in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
            let mac = KeyedMac::new(algorithm, b"12345678901234567890").unwrap();
            for first in [0, 59_999_990, u64::MAX - 21] {
                for n in 0..=21 {
                    let mut out = [0u32; 21];
                    mac.values(first, &mut out[..n]);
                    for (i, v) in out[..n].iter().enumerate() {
                        assert_eq!(*v, mac.value(first + i as u64), "{algorithm} {first} {n}");
                    }
                    assert!(out[n..].iter().all(|&v| v == 0));
                }
            }
        }
    }

    #[test]
    fn final_block_padding_is_fips_180_4() {
        let b = final_block::<64, 8>(&[0xab; 8]);
        assert_eq!(
            &b[..9],
            &[0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0x80]
        );
        assert!(b[9..56].iter().all(|&x| x == 0));
        assert_eq!(u64::from_be_bytes(b[56..].try_into().unwrap()), 72 * 8);
        let b = final_block::<128, 16>(&[0xcd; 64]);
        assert_eq!(b[64], 0x80);
        assert!(b[65..112].iter().all(|&x| x == 0));
        assert_eq!(u128::from_be_bytes(b[112..].try_into().unwrap()), 192 * 8);
    }
}

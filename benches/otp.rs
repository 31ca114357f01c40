//! The OTP layer against its peers, side by side in one run, and the hardware floor.
//!
//! Run everything, repeated and summarized, with `bash benches/run.sh`; this file alone with
//! `cargo bench --bench otp`. BENCHMARKS.md explains every figure.
//!
//! * `floor`: one SHA-1 (and SHA-256, SHA-512) block compression, the cost no HMAC avoids.
//!   HMAC-SHA-1 of an 8-byte counter is 2 compressions from a cached keyed state, 4 with the
//!   keying; a ±1 window is 3 counters, so 6 (cached) or 8 (keyed once per call).
//! * `generate`, `verify_pm1_wrong`, `verify_pm1_right`, `verify_pm2_wrong` and the
//!   `sha256_*`/`sha512_*` groups: the same input for every implementation.
//!   - `totp-mfa keyed`: `Code::parse` + `Totp::new` + `verify`/`generate` on every call.
//!   - `totp-mfa cached`: `Code::parse` + `verify`/`generate` on one long-lived `Totp`.
//!   - `totp-rs 6`: `Totp::check(&str, now)` / `generate(now)`; it keys HMAC inside every
//!     step and stops at the first match.
//!   - `totp-lite 2`: `totp_custom` (one keyed HMAC and a `String` per step) in the loop a
//!     caller writes, stopping at the first match (it has no verifier).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use totp_mfa::Secret;
use totp_mfa::otp::{Algorithm, Code, Digits, Totp, TotpParams, Verification, Window};

/// Mid-step, far from any boundary: every implementation sees the same three steps.
const NOW: u64 = 1_800_000_015;
const PERIOD: u64 = 30;

/// One algorithm's inputs, prepared outside the timed loops.
struct Case {
    name: &'static str,
    algorithm: Algorithm,
    key: Vec<u8>,
    /// The code of the current step.
    right: String,
    /// A code that matches no step within ±2.
    wrong: String,
}

impl Case {
    fn new(name: &'static str, algorithm: Algorithm) -> Self {
        let key: Vec<u8> = (0..algorithm.output_len())
            .map(|i| (i as u8).wrapping_mul(37).wrapping_add(11))
            .collect();
        let totp = Totp::new(&Secret::from_bytes(&key).unwrap(), params(algorithm)).unwrap();
        let center = NOW / PERIOD;
        let near: Vec<String> = (center - 2..=center + 2)
            .map(|s| totp.generate_at_step(s).as_str().to_owned())
            .collect();
        let right = totp.generate(NOW).unwrap().as_str().to_owned();
        let wrong = (0..1_000_000u32)
            .map(|n| format!("{n:06}"))
            .find(|c| !near.contains(c))
            .unwrap();
        Case {
            name,
            algorithm,
            key,
            right,
            wrong,
        }
    }

    fn secret(&self) -> Secret {
        Secret::from_bytes(&self.key).unwrap()
    }

    fn totp_rs(&self, skew: u16) -> totp_rs::Totp {
        let algorithm = match self.algorithm {
            Algorithm::Sha1 => totp_rs::Algorithm::SHA1,
            Algorithm::Sha256 => totp_rs::Algorithm::SHA256,
            Algorithm::Sha512 => totp_rs::Algorithm::SHA512,
        };
        totp_rs::Builder::new()
            .with_algorithm(algorithm)
            .with_digits(6)
            .with_skew(skew)
            .with_step_duration(PERIOD)
            .with_secret(self.key.clone())
            .build()
            .unwrap()
    }
}

fn params(algorithm: Algorithm) -> TotpParams {
    TotpParams::default()
        .with_algorithm(algorithm)
        .with_digits(Digits::SIX)
}

/// totp-lite's one entry point, for the case's algorithm.
fn lite(algorithm: Algorithm, key: &[u8], time: u64) -> String {
    match algorithm {
        Algorithm::Sha1 => totp_lite::totp_custom::<totp_lite::Sha1>(PERIOD, 6, key, time),
        Algorithm::Sha256 => totp_lite::totp_custom::<totp_lite::Sha256>(PERIOD, 6, key, time),
        Algorithm::Sha512 => totp_lite::totp_custom::<totp_lite::Sha512>(PERIOD, 6, key, time),
    }
}

/// The verifier a totp-lite user writes: each step of the window, first match wins.
fn lite_check(algorithm: Algorithm, key: &[u8], code: &str, now: u64, skew: u64) -> bool {
    let center = now / PERIOD;
    (center - skew..=center + skew).any(|s| lite(algorithm, key, s * PERIOD) == code)
}

fn ours_keyed(case: &Case, secret: &Secret, code: &str, now: u64, window: Window) -> Verification {
    let code = Code::parse(code, Digits::SIX).unwrap();
    let totp = Totp::new(secret, params(case.algorithm)).unwrap();
    totp.verify(&code, now, window, None).unwrap()
}

fn ours_cached(totp: &Totp, code: &str, now: u64, window: Window) -> Verification {
    let code = Code::parse(code, Digits::SIX).unwrap();
    totp.verify(&code, now, window, None).unwrap()
}

/// Every implementation must agree on the inputs before anything is timed.
fn check_agreement(case: &Case) {
    let secret = case.secret();
    let totp = Totp::new(&secret, params(case.algorithm)).unwrap();
    for (skew, window) in [
        (1u16, Window::default()),
        (2, Window::symmetric(2).unwrap()),
    ] {
        let peer = case.totp_rs(skew);
        assert_eq!(peer.generate(NOW).to_string(), case.right, "{}", case.name);
        assert_eq!(lite(case.algorithm, &case.key, NOW), case.right);
        assert!(ours_keyed(case, &secret, &case.right, NOW, window).is_accepted());
        assert!(ours_cached(&totp, &case.right, NOW, window).is_accepted());
        assert!(peer.check(&case.right, NOW).is_some());
        assert!(lite_check(
            case.algorithm,
            &case.key,
            &case.right,
            NOW,
            u64::from(skew)
        ));
        assert_eq!(
            ours_keyed(case, &secret, &case.wrong, NOW, window),
            Verification::Rejected
        );
        assert_eq!(
            ours_cached(&totp, &case.wrong, NOW, window),
            Verification::Rejected
        );
        assert!(peer.check(&case.wrong, NOW).is_none());
        assert!(!lite_check(
            case.algorithm,
            &case.key,
            &case.wrong,
            NOW,
            u64::from(skew)
        ));
    }
}

fn floor(c: &mut Criterion) {
    let mut g = c.benchmark_group("floor");
    let block64 = [[0x5au8; 64]];
    let block128 = [[0x5au8; 128]];
    let mut sha1 = [
        0x6745_2301u32,
        0xefcd_ab89,
        0x98ba_dcfe,
        0x1032_5476,
        0xc3d2_e1f0,
    ];
    g.bench_function("sha1 compress 1 block", |b| {
        b.iter(|| sha1::block_api::compress(black_box(&mut sha1), black_box(&block64)));
    });
    let mut sha256 = [0x6a09_e667u32; 8];
    g.bench_function("sha256 compress 1 block", |b| {
        b.iter(|| sha2::block_api::compress256(black_box(&mut sha256), black_box(&block64)));
    });
    let mut sha512 = [0x6a09_e667_f3bc_c908u64; 8];
    g.bench_function("sha512 compress 1 block", |b| {
        b.iter(|| sha2::block_api::compress512(black_box(&mut sha512), black_box(&block128)));
    });
    g.finish();
}

fn generate(c: &mut Criterion, case: &Case, group: &str) {
    let secret = case.secret();
    let totp = Totp::new(&secret, params(case.algorithm)).unwrap();
    let peer = case.totp_rs(1);
    let mut g = c.benchmark_group(group);
    g.bench_function("totp-mfa cached", |b| {
        b.iter(|| totp.generate(black_box(NOW)).unwrap());
    });
    g.bench_function("totp-mfa keyed", |b| {
        b.iter(|| {
            Totp::new(black_box(&secret), params(case.algorithm))
                .unwrap()
                .generate(black_box(NOW))
                .unwrap()
        });
    });
    g.bench_function("totp-rs 6", |b| b.iter(|| peer.generate(black_box(NOW))));
    g.bench_function("totp-lite 2", |b| {
        b.iter(|| lite(case.algorithm, black_box(&case.key), black_box(NOW)));
    });
    g.finish();
}

fn verify(c: &mut Criterion, case: &Case, group: &str, code: &str, skew: u16) {
    let secret = case.secret();
    let totp = Totp::new(&secret, params(case.algorithm)).unwrap();
    let peer = case.totp_rs(skew);
    let window = Window::symmetric(u32::from(skew)).unwrap();
    let mut g = c.benchmark_group(group);
    g.bench_function("totp-mfa keyed", |b| {
        b.iter(|| {
            ours_keyed(
                case,
                black_box(&secret),
                black_box(code),
                black_box(NOW),
                window,
            )
        });
    });
    g.bench_function("totp-mfa cached", |b| {
        b.iter(|| ours_cached(black_box(&totp), black_box(code), black_box(NOW), window));
    });
    g.bench_function("totp-rs 6", |b| {
        b.iter(|| peer.check(black_box(code), black_box(NOW)));
    });
    g.bench_function("totp-lite 2", |b| {
        b.iter(|| {
            lite_check(
                case.algorithm,
                black_box(&case.key),
                black_box(code),
                black_box(NOW),
                u64::from(skew),
            )
        });
    });
    g.finish();
}

fn sha1_groups(c: &mut Criterion) {
    let case = Case::new("SHA-1", Algorithm::Sha1);
    check_agreement(&case);
    generate(c, &case, "generate");
    verify(c, &case, "verify_pm1_wrong", &case.wrong, 1);
    verify(c, &case, "verify_pm1_right", &case.right, 1);
    verify(c, &case, "verify_pm2_wrong", &case.wrong, 2);
}

fn sha2_groups(c: &mut Criterion) {
    for (prefix, algorithm) in [("sha256", Algorithm::Sha256), ("sha512", Algorithm::Sha512)] {
        let case = Case::new(prefix, algorithm);
        check_agreement(&case);
        generate(c, &case, &format!("{prefix}_generate"));
        verify(
            c,
            &case,
            &format!("{prefix}_verify_pm1_wrong"),
            &case.wrong,
            1,
        );
    }
}

/// 1.5 s of warm-up and 3 s of measurement per benchmark (100 samples); the command line
/// (`cargo bench --bench otp -- --measurement-time 1`) overrides it.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(1_500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = floor, sha1_groups, sha2_groups
}
criterion_main!(benches);

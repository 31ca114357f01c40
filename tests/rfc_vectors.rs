//! Known-answer tests from the standards themselves: RFC 4226 Appendix D (HOTP) and RFC 6238
//! Appendix B (TOTP), read from plain data files in `tests/data/`.
//!
//! The expected values come only from those files (copied from the RFC tables, see
//! SECURITY-REQUIREMENTS.md Annexes A and B) or from arithmetic on them done here; none is
//! computed with this crate's code. Every check names the data line it came from, and all
//! failures are collected before the test fails, so one run shows every broken vector.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use totp_mfa::Secret;
use totp_mfa::otp::{
    Algorithm, Code, Digits, Hotp, Period, Totp, TotpParams, Verification, Window,
    dynamic_truncation, hotp, time_step,
};

const RFC4226_FILE: &str = "tests/data/rfc4226_appendix_d.txt";
const RFC4226_DATA: &str = include_str!("data/rfc4226_appendix_d.txt");
const RFC6238_FILE: &str = "tests/data/rfc6238_appendix_b.txt";
const RFC6238_DATA: &str = include_str!("data/rfc6238_appendix_b.txt");

/// The RFC 4226 Appendix D secret and the RFC 6238 SHA1 seed: 20 bytes.
const SEED_SHA1: &[u8] = b"12345678901234567890";
/// The RFC 6238 Appendix A SHA256 seed: 32 bytes (SEC-03).
const SEED_SHA256: &[u8] = b"12345678901234567890123456789012";
/// The RFC 6238 Appendix A SHA512 seed: 64 bytes (SEC-03).
const SEED_SHA512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

// ---------------------------------------------------------------------------------------------
// Data-file parsing
// ---------------------------------------------------------------------------------------------

/// One non-empty, non-comment line of a data file: its 1-based line number and its columns.
struct Row<'a> {
    line: usize,
    cols: Vec<&'a str>,
}

/// Splits a data file into rows; `#` starts a comment that runs to the end of the line.
fn rows(text: &str) -> Vec<Row<'_>> {
    text.lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let data = raw.split('#').next().unwrap_or("").trim();
            if data.is_empty() {
                None
            } else {
                Some(Row {
                    line: i + 1,
                    cols: data.split_whitespace().collect(),
                })
            }
        })
        .collect()
}

/// Decodes hex written in the data files (test-local, independent of `Secret::from_hex`).
fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd-length hex {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|_| panic!("bad hex {s:?}")))
        .collect()
}

/// Lowercase hex, for readable failure messages.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Collects failures, each tagged with its file and line, and reports them all at once.
struct Failures(Vec<String>);

impl Failures {
    fn new() -> Self {
        Failures(Vec::new())
    }

    fn check<T: PartialEq + std::fmt::Debug>(
        &mut self,
        file: &str,
        line: usize,
        what: &str,
        got: T,
        want: T,
    ) {
        if got != want {
            self.0.push(format!(
                "{file}:{line}: {what}: got {got:?}, expected {want:?}"
            ));
        }
    }

    fn finish(self) {
        assert!(
            self.0.is_empty(),
            "{} vector check(s) failed:\n  {}",
            self.0.len(),
            self.0.join("\n  ")
        );
    }
}

/// An RFC 4226 Appendix D row.
struct HotpVector {
    line: usize,
    count: u64,
    hmac: Vec<u8>,
    truncated_hex: u32,
    truncated_dec: u32,
    hotp: String,
}

fn rfc4226_vectors() -> Vec<HotpVector> {
    rows(RFC4226_DATA)
        .into_iter()
        .map(|r| {
            assert_eq!(r.cols.len(), 5, "{RFC4226_FILE}:{}: want 5 columns", r.line);
            HotpVector {
                line: r.line,
                count: r.cols[0].parse().expect("count"),
                hmac: unhex(r.cols[1]),
                truncated_hex: u32::from_str_radix(r.cols[2], 16).expect("truncated hex"),
                truncated_dec: r.cols[3].parse().expect("truncated dec"),
                hotp: r.cols[4].to_owned(),
            }
        })
        .collect()
}

/// An RFC 6238 Appendix B row.
struct TotpVector {
    line: usize,
    time: u64,
    step: u64,
    totp8: String,
    algorithm: Algorithm,
}

fn rfc6238_vectors() -> Vec<TotpVector> {
    rows(RFC6238_DATA)
        .into_iter()
        .map(|r| {
            assert_eq!(r.cols.len(), 4, "{RFC6238_FILE}:{}: want 4 columns", r.line);
            let algorithm = match r.cols[3] {
                "SHA1" => Algorithm::Sha1,
                "SHA256" => Algorithm::Sha256,
                "SHA512" => Algorithm::Sha512,
                other => panic!("{RFC6238_FILE}:{}: unknown mode {other}", r.line),
            };
            TotpVector {
                line: r.line,
                time: r.cols[0].parse().expect("time"),
                step: u64::from_str_radix(r.cols[1], 16).expect("step hex"),
                totp8: r.cols[2].to_owned(),
                algorithm,
            }
        })
        .collect()
}

/// The seed RFC 6238 Appendix A uses for each mode (SEC-03).
fn rfc6238_seed(algorithm: Algorithm) -> Secret {
    let bytes = match algorithm {
        Algorithm::Sha1 => SEED_SHA1,
        Algorithm::Sha256 => SEED_SHA256,
        Algorithm::Sha512 => SEED_SHA512,
    };
    Secret::from_bytes(bytes).expect("RFC seed")
}

fn digits(n: u32) -> Digits {
    Digits::new(n).expect("6..=8 digits")
}

/// The `n`-digit form of an 8-digit RFC code: value mod 10^n with leading zeros kept, which
/// for a zero-padded decimal string is simply its last `n` characters (SEC-04).
fn last_digits(code8: &str, n: usize) -> &str {
    &code8[code8.len() - n..]
}

// ---------------------------------------------------------------------------------------------
// Fixture self-checks
// ---------------------------------------------------------------------------------------------

#[test]
fn fixtures_are_complete() {
    // Guards against a truncated or mangled data file making every other test vacuous.
    let h = rfc4226_vectors();
    assert_eq!(
        h.iter().map(|v| v.count).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>(),
        "{RFC4226_FILE}: counters 0..=9 expected"
    );
    for v in &h {
        assert_eq!(
            v.hmac.len(),
            20,
            "{RFC4226_FILE}:{}: HMAC-SHA-1 is 20 bytes",
            v.line
        );
        assert_eq!(v.hotp.len(), 6, "{RFC4226_FILE}:{}: 6-digit HOTP", v.line);
    }
    let t = rfc6238_vectors();
    assert_eq!(t.len(), 18, "{RFC6238_FILE}: 18 vectors expected");
    for alg in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
        let times: Vec<u64> = t
            .iter()
            .filter(|v| v.algorithm == alg)
            .map(|v| v.time)
            .collect();
        assert_eq!(
            times,
            [
                59,
                1_111_111_109,
                1_111_111_111,
                1_234_567_890,
                2_000_000_000,
                20_000_000_000
            ],
            "{RFC6238_FILE}: {alg} times"
        );
    }
    for v in &t {
        assert!(
            v.totp8.len() == 8 && v.totp8.bytes().all(|b| b.is_ascii_digit()),
            "{RFC6238_FILE}:{}: 8 ASCII digits expected",
            v.line
        );
    }
}

#[test]
fn fixture_columns_agree_with_each_other() {
    // Arithmetic on the data only: truncated hex == truncated dec, HOTP == dec mod 10^6, and
    // step == floor(time / 30) (SEC-01, SEC-02).
    let mut f = Failures::new();
    for v in rfc4226_vectors() {
        f.check(
            RFC4226_FILE,
            v.line,
            "hex vs dec",
            v.truncated_hex,
            v.truncated_dec,
        );
        f.check(
            RFC4226_FILE,
            v.line,
            "dec mod 10^6",
            format!("{:06}", v.truncated_dec % 1_000_000),
            v.hotp.clone(),
        );
    }
    for v in rfc6238_vectors() {
        f.check(RFC6238_FILE, v.line, "time / 30", v.time / 30, v.step);
    }
    f.finish();
}

#[test]
fn rfc4226_hmac_stage_matches_rustcrypto_hmac() {
    // SEC-01, HMAC stage: the HMAC column really is HMAC-SHA-1(secret, 8-byte big-endian
    // counter). Computed with the `hmac` crate directly, not through this crate, so a typo
    // in the fixture cannot hide.
    let mut f = Failures::new();
    for v in rfc4226_vectors() {
        let mut mac = Hmac::<Sha1>::new_from_slice(SEED_SHA1).expect("any key length");
        mac.update(&v.count.to_be_bytes());
        f.check(
            RFC4226_FILE,
            v.line,
            "HMAC-SHA-1",
            hex(&mac.finalize().into_bytes()),
            hex(&v.hmac),
        );
    }
    f.finish();
}

// ---------------------------------------------------------------------------------------------
// RFC 4226 (HOTP)
// ---------------------------------------------------------------------------------------------

#[test]
fn rfc4226_section_5_4_worked_example() {
    // SEC-01: RFC 4226 section 5.4. Offset 0xa, DBC 0x50ef7f19 = 1357872921, 6 digits 872921.
    let mac = unhex("1f8698690e02ca16618550ef7f19da8e945b555a");
    assert_eq!(mac[19] & 0x0f, 0x0a, "offset byte");
    assert_eq!(dynamic_truncation(&mac), Some(0x50ef_7f19));
    assert_eq!(dynamic_truncation(&mac), Some(1_357_872_921));
    assert_eq!(1_357_872_921 % 1_000_000, 872_921);
}

#[test]
fn rfc4226_truncation_stage() {
    // SEC-01, truncation stage: dynamic_truncation(HMAC) == the "Truncated" columns.
    let mut f = Failures::new();
    for v in rfc4226_vectors() {
        f.check(
            RFC4226_FILE,
            v.line,
            "dynamic_truncation",
            dynamic_truncation(&v.hmac),
            Some(v.truncated_dec),
        );
    }
    f.finish();
}

#[test]
fn rfc4226_hotp_stage() {
    // SEC-01, HOTP stage, 6 digits, through `hotp`, `Hotp::generate` and `Hotp::verify`.
    let secret = Secret::from_bytes(SEED_SHA1).unwrap();
    let h = Hotp::new(&secret, Algorithm::Sha1, Digits::SIX).unwrap();
    let mut f = Failures::new();
    for v in rfc4226_vectors() {
        let got = hotp(&secret, v.count, Algorithm::Sha1, Digits::SIX).unwrap();
        f.check(
            RFC4226_FILE,
            v.line,
            "hotp()",
            got.as_str(),
            v.hotp.as_str(),
        );
        f.check(
            RFC4226_FILE,
            v.line,
            "Hotp::generate",
            h.generate(v.count).as_str(),
            v.hotp.as_str(),
        );
        let typed = Code::parse(&v.hotp, Digits::SIX).unwrap();
        f.check(
            RFC4226_FILE,
            v.line,
            "Hotp::verify look-ahead 0",
            h.verify(&typed, v.count, 0),
            Verification::Accepted { time_step: v.count },
        );
        // From counter 0 with look-ahead 9 every Appendix D value is found at its own counter
        // (the ten values are distinct).
        f.check(
            RFC4226_FILE,
            v.line,
            "Hotp::verify from 0, look-ahead 9",
            h.verify(&typed, 0, 9),
            Verification::Accepted { time_step: v.count },
        );
        // One counter past it, the value is no longer accepted.
        f.check(
            RFC4226_FILE,
            v.line,
            "Hotp::verify from count+1",
            h.verify(&typed, v.count + 1, 0),
            Verification::Rejected,
        );
    }
    f.finish();
}

#[test]
fn rfc4226_values_at_7_and_8_digits() {
    // SEC-04: 7 and 8 digits are the truncated value mod 10^7 / 10^8, zero-padded.
    let secret = Secret::from_bytes(SEED_SHA1).unwrap();
    let mut f = Failures::new();
    for v in rfc4226_vectors() {
        for (n, modulus) in [(7u32, 10_000_000u32), (8, 100_000_000)] {
            let want = format!("{:0width$}", v.truncated_dec % modulus, width = n as usize);
            let got = hotp(&secret, v.count, Algorithm::Sha1, digits(n)).unwrap();
            f.check(
                RFC4226_FILE,
                v.line,
                &format!("{n}-digit HOTP"),
                got.as_str(),
                want.as_str(),
            );
        }
    }
    f.finish();
}

// ---------------------------------------------------------------------------------------------
// RFC 6238 (TOTP)
// ---------------------------------------------------------------------------------------------

#[test]
fn rfc6238_seeds_are_the_appendix_a_seeds() {
    // SEC-03: 20/32/64 bytes, as in SECURITY-REQUIREMENTS.md Annex A (hex and base32 forms).
    assert_eq!(SEED_SHA1.len(), 20);
    assert_eq!(SEED_SHA256.len(), 32);
    assert_eq!(SEED_SHA512.len(), 64);
    assert_eq!(SEED_SHA1, unhex("3132333435363738393031323334353637383930"));
    assert_eq!(
        SEED_SHA256,
        unhex("3132333435363738393031323334353637383930313233343536373839303132")
    );
    assert_eq!(
        SEED_SHA512,
        unhex(&("31323334353637383930".repeat(6) + "31323334"))
    );
    let b32 = Secret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
    assert_eq!(b32.expose_bytes(), SEED_SHA1);
}

#[test]
fn rfc6238_time_steps() {
    // SEC-02: T = floor((t - 0) / 30), including 20000000000 -> 0x27BC86AA (beyond 32 bits
    // of time, year 2603).
    let params = TotpParams::default();
    let mut f = Failures::new();
    for v in rfc6238_vectors() {
        f.check(
            RFC6238_FILE,
            v.line,
            "time_step",
            time_step(v.time, &params),
            Ok(v.step),
        );
    }
    f.finish();
}

#[test]
fn rfc6238_all_18_vectors_at_8_digits() {
    // SEC-02, SEC-03: every Appendix B vector with its mode's seed.
    let mut f = Failures::new();
    for v in rfc6238_vectors() {
        let params = TotpParams::default()
            .with_algorithm(v.algorithm)
            .with_digits(Digits::EIGHT);
        let totp = Totp::new(&rfc6238_seed(v.algorithm), params).unwrap();
        f.check(
            RFC6238_FILE,
            v.line,
            "Totp::generate (8 digits)",
            totp.generate(v.time).map(|c| c.as_str().to_owned()),
            Ok(v.totp8.clone()),
        );
        f.check(
            RFC6238_FILE,
            v.line,
            "Totp::generate_at_step (8 digits)",
            totp.generate_at_step(v.step).as_str(),
            &v.totp8,
        );
        // TOTP is HOTP at counter T (RFC 6238 section 4.2).
        f.check(
            RFC6238_FILE,
            v.line,
            "hotp(seed, T) (8 digits)",
            hotp(
                &rfc6238_seed(v.algorithm),
                v.step,
                v.algorithm,
                Digits::EIGHT,
            )
            .unwrap()
            .as_str(),
            &v.totp8,
        );
    }
    f.finish();
}

#[test]
fn rfc6238_vectors_at_6_and_7_digits_keep_leading_zeros() {
    // SEC-04: the 6- and 7-digit codes are the 8-digit values mod 10^6 / 10^7, zero-padded.
    let mut f = Failures::new();
    for v in rfc6238_vectors() {
        for n in [6u32, 7] {
            let params = TotpParams::default()
                .with_algorithm(v.algorithm)
                .with_digits(digits(n));
            let totp = Totp::new(&rfc6238_seed(v.algorithm), params).unwrap();
            f.check(
                RFC6238_FILE,
                v.line,
                &format!("Totp::generate ({n} digits)"),
                totp.generate(v.time).map(|c| c.as_str().to_owned()),
                Ok(last_digits(&v.totp8, n as usize).to_owned()),
            );
        }
    }
    f.finish();
}

#[test]
fn rfc6238_sha1_six_digit_forms_from_annex_a() {
    // SEC-04: the six-digit SHA1 forms listed in SECURITY-REQUIREMENTS.md Annex A, written out
    // so that a leading zero can never be lost (081804, 050471, 005924).
    let totp = Totp::new(&rfc6238_seed(Algorithm::Sha1), TotpParams::default()).unwrap();
    let expected = [
        (59, "287082"),
        (1_111_111_109, "081804"),
        (1_111_111_111, "050471"),
        (1_234_567_890, "005924"),
        (2_000_000_000, "279037"),
        (20_000_000_000, "353130"),
    ];
    for (t, want) in expected {
        let code = totp.generate(t).unwrap();
        assert_eq!(code.as_str(), want, "t = {t}");
        assert_eq!(code.len(), 6, "t = {t}");
    }
    // And the 8-digit form of the same leading-zero vector.
    let eight = Totp::new(
        &rfc6238_seed(Algorithm::Sha1),
        TotpParams::default().with_digits(Digits::EIGHT),
    )
    .unwrap();
    assert_eq!(eight.generate(1_111_111_109).unwrap().as_str(), "07081804");
}

#[test]
fn rfc6238_sha1_t1_is_rfc4226_counter_1() {
    // SEC-01/SEC-02 cross-fixture check: TOTP SHA1 at t=59 (T=1) equals the RFC 4226
    // counter-1 truncated value mod 10^8 (1094287082 -> 94287082).
    let h = rfc4226_vectors();
    let t = rfc6238_vectors();
    let c1 = h.iter().find(|v| v.count == 1).unwrap();
    let t59 = t
        .iter()
        .find(|v| v.time == 59 && v.algorithm == Algorithm::Sha1)
        .unwrap();
    assert_eq!(t59.step, 1);
    assert_eq!(format!("{:08}", c1.truncated_dec % 100_000_000), t59.totp8);
}

#[test]
fn rfc6238_sha256_and_sha512_vectors_fail_with_the_20_byte_seed() {
    // SEC-03 negative test: the Appendix B table names only the 20-byte seed, but the SHA256
    // and SHA512 values were produced with 32- and 64-byte seeds. With the 20-byte seed every
    // one of them must come out different, which proves the fixture (and the seeds above)
    // actually discriminate.
    let short = Secret::from_bytes(SEED_SHA1).unwrap();
    let mut checked = 0;
    let mut wrongly_matching = Vec::new();
    for v in rfc6238_vectors() {
        if v.algorithm == Algorithm::Sha1 {
            continue;
        }
        let params = TotpParams::default()
            .with_algorithm(v.algorithm)
            .with_digits(Digits::EIGHT);
        let totp = Totp::new(&short, params).unwrap();
        let got = totp.generate(v.time).unwrap();
        if got.as_str() == v.totp8 {
            wrongly_matching.push(format!("{RFC6238_FILE}:{}", v.line));
        }
        let typed = Code::parse(&v.totp8, Digits::EIGHT).unwrap();
        if totp
            .verify(&typed, v.time, Window::EXACT, None)
            .unwrap()
            .is_accepted()
        {
            wrongly_matching.push(format!("{RFC6238_FILE}:{} (verify)", v.line));
        }
        checked += 1;
    }
    assert_eq!(checked, 12, "6 SHA256 + 6 SHA512 vectors");
    assert!(
        wrongly_matching.is_empty(),
        "vectors reproduced with the 20-byte seed: {wrongly_matching:?}"
    );
}

#[test]
fn rfc6238_verify_accepts_each_vector_with_exact_window() {
    // SEC-02 / SEC-11 / SEC-12: verify() accepts each vector's code at its own time with
    // Window::EXACT, reports the RFC's T, refuses it as a replay once T is used, and rejects
    // it one full step later.
    let mut f = Failures::new();
    for v in rfc6238_vectors() {
        for n in [6u32, 8] {
            let params = TotpParams::default()
                .with_algorithm(v.algorithm)
                .with_digits(digits(n));
            let totp = Totp::new(&rfc6238_seed(v.algorithm), params).unwrap();
            let typed = Code::parse(last_digits(&v.totp8, n as usize), digits(n)).unwrap();
            let what = |s: &str| format!("{n} digits: {s}");
            f.check(
                RFC6238_FILE,
                v.line,
                &what("verify EXACT at t"),
                totp.verify(&typed, v.time, Window::EXACT, None),
                Ok(Verification::Accepted { time_step: v.step }),
            );
            f.check(
                RFC6238_FILE,
                v.line,
                &what("verify EXACT at t, step already used"),
                totp.verify(&typed, v.time, Window::EXACT, Some(v.step)),
                Ok(Verification::Replayed { time_step: v.step }),
            );
            f.check(
                RFC6238_FILE,
                v.line,
                &what("verify EXACT at t, earlier step used"),
                totp.verify(&typed, v.time, Window::EXACT, Some(v.step - 1)),
                Ok(Verification::Accepted { time_step: v.step }),
            );
            f.check(
                RFC6238_FILE,
                v.line,
                &what("verify EXACT at t + 30"),
                totp.verify(&typed, v.time + 30, Window::EXACT, None),
                Ok(Verification::Rejected),
            );
            // The default window (one step back) still takes it 30 s later.
            f.check(
                RFC6238_FILE,
                v.line,
                &what("verify default window at t + 30"),
                totp.verify(&typed, v.time + 30, Window::default(), None),
                Ok(Verification::Accepted { time_step: v.step }),
            );
        }
    }
    f.finish();
}

#[test]
fn rfc6238_step_formula_with_t0_and_other_periods() {
    // SEC-02: T = floor((t - T0) / X) for X != 30 and T0 != 0; the expected values are the
    // formula evaluated by hand here.
    let p = |x: u64, t0: u64| {
        TotpParams::default()
            .with_period(Period::new(x).unwrap())
            .with_t0(t0)
    };
    assert_eq!(time_step(1_234_567_890, &p(1, 1000)), Ok(1_234_566_890));
    assert_eq!(time_step(1_234_567_890, &p(60, 0)), Ok(20_576_131));
    assert_eq!(time_step(1_234_567_890, &p(90, 90)), Ok(13_717_420));
    assert_eq!(time_step(20_000_000_000, &p(3600, 0)), Ok(5_555_555));
    assert_eq!(time_step(u64::MAX, &p(1, 0)), Ok(u64::MAX));
    assert_eq!(time_step(u64::MAX, &p(30, 0)), Ok(u64::MAX / 30));
    assert_eq!(time_step(100, &p(30, 100)), Ok(0));
    assert_eq!(time_step(129, &p(30, 100)), Ok(0));
    assert_eq!(time_step(130, &p(30, 100)), Ok(1));
}

#[test]
fn rfc6238_time_before_t0_is_a_typed_error() {
    // SEC-02 / SEC-42: before T0 there is no time step: an error, never a panic or a wrap.
    let params = TotpParams::default().with_t0(1_000);
    assert!(time_step(999, &params).is_err());
    assert!(time_step(0, &params).is_err());
    let totp = Totp::new(&rfc6238_seed(Algorithm::Sha1), params).unwrap();
    assert!(totp.generate(999).is_err());
    let code = Code::parse("287082", Digits::SIX).unwrap();
    assert!(totp.verify(&code, 999, Window::default(), None).is_err());
    assert!(totp.generate(1_000).is_ok());
}

#[test]
fn digit_counts_and_algorithms_are_closed_sets() {
    // SEC-04: only 6, 7 and 8 digits.
    for bad in [0u32, 1, 5, 9, 10, u32::MAX] {
        assert!(Digits::new(bad).is_err(), "digits {bad}");
    }
    for good in [6u32, 7, 8] {
        assert_eq!(Digits::new(good).unwrap().get(), good);
    }
    // SEC-05: only SHA1, SHA256, SHA512.
    for bad in [
        "MD5", "md5", "aes", "SHA384", "SHA224", "SHA3-256", "", "SHA", "SHA1 x",
    ] {
        assert!(bad.parse::<Algorithm>().is_err(), "algorithm {bad:?}");
    }
    assert_eq!("SHA1".parse::<Algorithm>(), Ok(Algorithm::Sha1));
    assert_eq!("SHA256".parse::<Algorithm>(), Ok(Algorithm::Sha256));
    assert_eq!("SHA512".parse::<Algorithm>(), Ok(Algorithm::Sha512));
}

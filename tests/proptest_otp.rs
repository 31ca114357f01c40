//! Property tests for the OTP core and the secret codecs (SEC-01, SEC-02, SEC-04, SEC-11,
//! SEC-12, SEC-42).
//!
//! Expected values are derived here from the RFC formulas (time step, dynamic truncation,
//! RFC 4648 base32) or from RustCrypto's `hmac` directly, never from this crate's own output.

use hmac::{Hmac, KeyInit, Mac};
use proptest::prelude::*;
use proptest::sample::select;
use totp_mfa::otp::{
    Algorithm, Code, CodeError, Digits, Hotp, OtpError, Period, Totp, TotpParams, Verification,
    Window, dynamic_truncation, hotp, time_step,
};
use totp_mfa::{Secret, SecretError};

// ---------------------------------------------------------------------------------------------
// Test-local reference helpers
// ---------------------------------------------------------------------------------------------

fn algorithm() -> impl Strategy<Value = Algorithm> {
    select(vec![Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512])
}

fn digits() -> impl Strategy<Value = Digits> {
    (6u32..=8).prop_map(|n| Digits::new(n).unwrap())
}

fn period() -> impl Strategy<Value = Period> {
    prop_oneof![select(vec![1u64, 15, 30, 60, 90, 120, 3600]), 1u64..=3600]
        .prop_map(|s| Period::new(s).unwrap())
}

/// Secret bytes in the accepted import range, 10..=128.
fn key_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), Secret::MIN_IMPORT_BYTES..=Secret::MAX_BYTES)
}

/// A `u64` biased towards the edges, where wraps and underflows live (SEC-42).
fn edgy_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => any::<u64>(),
        1 => 0u64..=10_000,
        1 => (u64::MAX - 10_000)..=u64::MAX,
        1 => 0u64..(1 << 34),
        1 => select(vec![0, 1, u64::from(u32::MAX), 1 << 32, i64::MAX as u64, u64::MAX - 1, u64::MAX]),
    ]
}

/// `lo + (x mod (hi - lo + 1))`, for `lo <= hi`.
fn within(x: u64, lo: u64, hi: u64) -> u64 {
    match (hi - lo).checked_add(1) {
        Some(span) => lo + x % span,
        None => x,
    }
}

fn is_code_text(s: &str, digits: Digits) -> bool {
    s.len() == digits.get() as usize && s.bytes().all(|b| b.is_ascii_digit())
}

/// RFC 4648 base32, upper case, no padding: a reference written from the RFC, not the crate.
fn rfc4648_base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let mut acc: u64 = 0;
    let mut bits = 0u32;
    for &b in bytes {
        acc = (acc << 8) | u64::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn lower_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// HMAC(key, counter as 8 big-endian bytes) with RustCrypto directly.
fn reference_hmac(algorithm: Algorithm, key: &[u8], counter: u64) -> Vec<u8> {
    let msg = counter.to_be_bytes();
    match algorithm {
        Algorithm::Sha1 => {
            let mut m = Hmac::<sha1::Sha1>::new_from_slice(key).unwrap();
            m.update(&msg);
            m.finalize().into_bytes().to_vec()
        }
        Algorithm::Sha256 => {
            let mut m = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
            m.update(&msg);
            m.finalize().into_bytes().to_vec()
        }
        Algorithm::Sha512 => {
            let mut m = Hmac::<sha2::Sha512>::new_from_slice(key).unwrap();
            m.update(&msg);
            m.finalize().into_bytes().to_vec()
        }
    }
}

/// RFC 4226 section 5.3, written out: offset from the low nibble of the last byte, 31 bits.
fn reference_truncation(mac: &[u8]) -> u32 {
    let o = usize::from(mac[mac.len() - 1] & 0x0f);
    u32::from_be_bytes([mac[o], mac[o + 1], mac[o + 2], mac[o + 3]]) & 0x7fff_ffff
}

/// Arbitrary text with many of the characters that trip parsers: ASCII digits, Unicode
/// digits and white space, separators, letters, base32/hex look-alikes, controls, emoji.
fn nasty_text() -> impl Strategy<Value = String> {
    const CHARS: &str = "0125789AOZafgz \t\n\r-=_.\0\u{7f}\u{a0}\u{2003}\u{3000}\u{feff}\u{200b}\
                         １٣߀𝟘éßİ\u{301}😀\u{10ffff}";
    let chars = select(CHARS.chars().collect::<Vec<char>>());
    prop::collection::vec(chars, 0..100).prop_map(|v| v.into_iter().collect())
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// SEC-11/SEC-12: the code generated at now-X, now and now+X verifies at `now` with the
    /// default window (one step each way) at the RFC step; `Window::EXACT` takes only now's;
    /// a used step is refused as a replay. Across the whole u64 time range and any T0.
    #[test]
    fn generate_then_verify_round_trips(
        key in key_bytes(),
        alg in algorithm(),
        d in digits(),
        p in period(),
        t0_seed in edgy_u64(),
        now_seed in edgy_u64(),
        small in any::<bool>(),
    ) {
        let x = p.seconds();
        // now - X >= T0 and now + X <= u64::MAX.
        let (t0, now) = if small {
            (0, within(now_seed, x, 1 << 34))
        } else {
            let t0 = within(t0_seed, 0, u64::MAX - 2 * x);
            (t0, within(now_seed, t0 + x, u64::MAX - x))
        };
        let secret = Secret::from_bytes(&key).unwrap();
        let params = TotpParams::default()
            .with_algorithm(alg)
            .with_digits(d)
            .with_period(p)
            .with_t0(t0);
        let totp = Totp::new(&secret, params).unwrap();
        let s = (now - t0) / x; // RFC 6238 section 4.2
        prop_assert_eq!(time_step(now, &params), Ok(s));

        for (offset, at) in [(-1i64, now - x), (0, now), (1, now + x)] {
            let code = totp.generate(at).unwrap();
            prop_assert!(is_code_text(code.as_str(), d), "{:?}", code.as_str());
            let want = s.checked_add_signed(offset).unwrap();
            prop_assert!(totp.generate_at_step(want) == code);
            match totp.verify(&code, now, Window::default(), None).unwrap() {
                Verification::Accepted { time_step } => {
                    prop_assert!(time_step >= want && time_step <= s + 1, "step {}", time_step);
                    if time_step != want {
                        // Only a chance collision with a later step in the window may win.
                        prop_assert!(totp.generate_at_step(time_step) == code);
                    }
                }
                other => prop_assert!(false, "offset {}: {:?}", offset, other),
            }
        }

        let code = totp.generate(now).unwrap();
        prop_assert_eq!(
            totp.verify(&code, now, Window::EXACT, None),
            Ok(Verification::Accepted { time_step: s })
        );
        let next = totp.generate(now + x).unwrap();
        if next != code {
            prop_assert_eq!(totp.verify(&next, now, Window::EXACT, None), Ok(Verification::Rejected));
        }
        if totp.generate_at_step(s + 1) != code {
            prop_assert_eq!(
                totp.verify(&code, now, Window::default(), Some(s)),
                Ok(Verification::Replayed { time_step: s })
            );
        }
    }

    /// HOTP: the code for counter c verifies from c (any look-ahead); a later counter within
    /// the look-ahead is found; across the whole u64 counter range.
    #[test]
    fn hotp_generate_then_verify_round_trips(
        key in key_bytes(),
        alg in algorithm(),
        d in digits(),
        counter in edgy_u64(),
        look_ahead in 0u32..=120,
        k in 0u64..=120,
    ) {
        let secret = Secret::from_bytes(&key).unwrap();
        let h = Hotp::new(&secret, alg, d).unwrap();
        let code = h.generate(counter);
        prop_assert_eq!(h.verify(&code, counter, look_ahead), Verification::Accepted { time_step: counter });
        let effective = u64::from(look_ahead.min(Hotp::MAX_LOOK_AHEAD));
        if let Some(later) = counter.checked_add(k) {
            let code = h.generate(later);
            match h.verify(&code, counter, look_ahead) {
                Verification::Accepted { time_step } => {
                    prop_assert!(time_step >= counter && time_step <= later);
                    prop_assert!(h.generate(time_step) == code);
                }
                Verification::Rejected => prop_assert!(k > effective, "k {} <= look-ahead {}", k, effective),
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }

    /// SEC-01/SEC-04: every code is exactly `digits` ASCII digits and equals
    /// Truncate(HMAC(K, C)) mod 10^digits, zero-padded, with the HMAC from RustCrypto.
    #[test]
    fn codes_are_truncated_hmac_as_exactly_d_ascii_digits(
        key in key_bytes(),
        alg in algorithm(),
        d in digits(),
        counter in edgy_u64(),
    ) {
        let secret = Secret::from_bytes(&key).unwrap();
        let mac = reference_hmac(alg, &key, counter);
        prop_assert_eq!(mac.len(), alg.output_len());
        let modulus = 10u32.pow(d.get());
        let want = format!("{:0w$}", reference_truncation(&mac) % modulus, w = d.get() as usize);

        let a = hotp(&secret, counter, alg, d).unwrap();
        let b = Hotp::new(&secret, alg, d).unwrap().generate(counter);
        let params = TotpParams::default().with_algorithm(alg).with_digits(d);
        let c = Totp::new(&secret, params).unwrap().generate_at_step(counter);
        for code in [&a, &b, &c] {
            prop_assert!(is_code_text(code.as_str(), d), "{:?}", code.as_str());
            prop_assert_eq!(code.len(), d.get() as usize);
            prop_assert_eq!(code.as_str(), want.as_str());
            prop_assert!(Code::parse(code.as_str(), d).unwrap() == *code);
        }
    }

    /// SEC-01: dynamic_truncation on 20/32/64-byte MACs (and any length from 20 up) equals the
    /// RFC formula with the offset taken from the last byte.
    #[test]
    fn dynamic_truncation_matches_rfc_formula(
        mac in prop_oneof![
            prop::collection::vec(any::<u8>(), 20),
            prop::collection::vec(any::<u8>(), 32),
            prop::collection::vec(any::<u8>(), 64),
            prop::collection::vec(any::<u8>(), 20..=256),
        ],
    ) {
        let o = usize::from(mac[mac.len() - 1] & 0xf);
        let want = u32::from_be_bytes(mac[o..o + 4].try_into().unwrap()) & 0x7fff_ffff;
        prop_assert_eq!(dynamic_truncation(&mac), Some(want));
        prop_assert!(want <= 0x7fff_ffff);
    }

    /// SEC-01: a MAC shorter than 20 bytes is refused, not read out of bounds.
    #[test]
    fn dynamic_truncation_refuses_short_slices(mac in prop::collection::vec(any::<u8>(), 0..20)) {
        prop_assert_eq!(dynamic_truncation(&mac), None);
    }

    /// Base32 and hex round trips, in the forms people type them: canonical, grouped,
    /// lower case, with dashes, with white space, with RFC 4648 padding.
    #[test]
    fn secret_text_forms_round_trip(
        key in key_bytes(),
        dash_every in 1usize..=8,
        ws in select(vec![" ", "\t", "\n", "\r\n", "  "]),
    ) {
        let secret = Secret::from_bytes(&key).unwrap();
        prop_assert_eq!(secret.expose_bytes(), key.as_slice());

        let canonical = secret.to_base32();
        let reference = rfc4648_base32(&key);
        prop_assert_eq!(canonical.as_str(), reference.as_str());

        let mut padded = canonical.to_string();
        while padded.len() % 8 != 0 {
            padded.push('=');
        }
        let dashed: String = canonical
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                let sep = (i > 0 && i % dash_every == 0).then_some('-');
                sep.into_iter().chain(std::iter::once(c))
            })
            .collect();
        let spaced: String = canonical
            .chars()
            .enumerate()
            .map(|(i, c)| if i > 0 && i % 4 == 0 { format!("{ws}{c}") } else { c.to_string() })
            .collect();
        let forms = [
            canonical.to_string(),
            secret.to_base32_grouped().to_string(),
            secret.to_base32_grouped().to_lowercase(),
            canonical.to_lowercase(),
            dashed.clone(),
            dashed.to_lowercase(),
            spaced,
            padded,
            format!("{ws}{}{ws}", canonical.as_str()),
        ];
        for form in &forms {
            let back = Secret::from_base32(form);
            prop_assert!(back.is_ok(), "{:?}: {:?}", form, back);
            let back = back.unwrap();
            prop_assert_eq!(back.expose_bytes(), key.as_slice(), "{:?}", form);
        }

        let hex = secret.to_hex();
        let reference = lower_hex(&key);
        prop_assert_eq!(hex.as_str(), reference.as_str());
        for form in [hex.to_string(), hex.to_uppercase()] {
            let back = Secret::from_hex(&form).unwrap();
            prop_assert_eq!(back.expose_bytes(), key.as_slice());
        }
    }

    /// SEC-02/SEC-42: no panic anywhere in the u64 time range, for any window, digits, period,
    /// T0 and last-used step; generate/verify/time_step fail only with BeforeT0, exactly when
    /// now < T0.
    #[test]
    fn no_panic_over_the_whole_time_range(
        key in key_bytes(),
        alg in algorithm(),
        d in digits(),
        p in period(),
        t0 in edgy_u64(),
        now in edgy_u64(),
        back in 0u32..=10,
        ahead in 0u32..=10,
        last_used in proptest::option::of(edgy_u64()),
        typed in (0u32..100_000_000),
        max_steps in prop_oneof![0u32..=20, any::<u32>()],
    ) {
        let secret = Secret::from_bytes(&key).unwrap();
        let params = TotpParams::default().with_algorithm(alg).with_digits(d).with_period(p).with_t0(t0);
        let totp = Totp::new(&secret, params).unwrap();
        let window = Window::new(back, ahead).unwrap();
        let code = Code::parse(
            &format!("{:0w$}", typed % 10u32.pow(d.get()), w = d.get() as usize),
            d,
        ).unwrap();
        let before = now < t0;
        let is_before_t0 = |e: &OtpError| matches!(e, OtpError::BeforeT0 { t0: x } if *x == t0);

        match time_step(now, &params) {
            Ok(s) => {
                prop_assert!(!before);
                prop_assert_eq!(s, (now - t0) / p.seconds());
            }
            Err(e) => prop_assert!(before && is_before_t0(&e), "{:?}", e),
        }
        match totp.generate(now) {
            Ok(c) => prop_assert!(!before && is_code_text(c.as_str(), d)),
            Err(e) => prop_assert!(before && is_before_t0(&e), "{:?}", e),
        }
        match totp.verify(&code, now, window, last_used) {
            Ok(v) => {
                prop_assert!(!before);
                let s = (now - t0) / p.seconds();
                let lo = s.saturating_sub(u64::from(back));
                let hi = s.saturating_add(u64::from(ahead));
                match v {
                    Verification::Accepted { time_step } => {
                        prop_assert!((lo..=hi).contains(&time_step));
                        prop_assert!(last_used.is_none_or(|l| time_step > l));
                    }
                    Verification::Replayed { time_step } => {
                        prop_assert!((lo..=hi).contains(&time_step));
                        prop_assert!(last_used.is_some_and(|l| time_step <= l));
                    }
                    Verification::Rejected => {}
                }
            }
            Err(e) => prop_assert!(before && is_before_t0(&e), "{:?}", e),
        }
        match totp.locate(&code, now, max_steps) {
            Ok(_) => prop_assert!(!before),
            Err(e) => prop_assert!(before && is_before_t0(&e), "{:?}", e),
        }
        // A generated code always verifies at its own time with any window.
        if !before {
            let own = totp.generate(now).unwrap();
            let v = totp.verify(&own, now, window, None);
            prop_assert!(matches!(v, Ok(Verification::Accepted { .. })), "{:?}", v);
        }
        let h = Hotp::new(&secret, alg, d).unwrap();
        let _ = h.verify(&code, now, max_steps);
    }

    /// Parameter constructors accept exactly their documented ranges (SEC-04, SEC-11).
    #[test]
    fn parameter_ranges_are_exact(n in any::<u32>(), s in edgy_u64(), b in 0u32..=40, a in 0u32..=40) {
        prop_assert_eq!(Digits::new(n).is_ok(), (6..=8).contains(&n));
        prop_assert_eq!(Period::new(s).is_ok(), (1..=3600).contains(&s));
        prop_assert_eq!(Window::new(b, a).is_ok(), b <= 10 && a <= 10);
        prop_assert_eq!(Digits::new(n % 12).is_ok(), (6..=8).contains(&(n % 12)));
    }

    /// Code::parse never panics; what it accepts is exactly the input's non-white-space
    /// characters, all ASCII digits; what it refuses points at a real offending character.
    #[test]
    fn code_parse_never_panics(
        input in prop_oneof![any::<String>(), nasty_text(), "[0-9 \t]{0,20}"],
        d in digits(),
    ) {
        match Code::parse(&input, d) {
            Ok(code) => {
                let kept: String = input.chars().filter(|c| !c.is_whitespace()).collect();
                prop_assert!(is_code_text(code.as_str(), d));
                prop_assert_eq!(code.as_str(), kept.as_str());
            }
            Err(CodeError::NotADigit { position }) => {
                let ch = input.chars().nth(position - 1);
                prop_assert!(ch.is_some_and(|c| !c.is_whitespace() && !c.is_ascii_digit()), "{:?}", ch);
            }
            Err(CodeError::TooLong) => prop_assert!(input.len() > Code::MAX_INPUT_LEN),
            Err(_) => {}
        }
    }

    /// A valid code survives any white space people or paste add around and inside it.
    #[test]
    fn code_parse_accepts_white_space_anywhere(
        d in digits(),
        value in 0u32..100_000_000,
        gaps in prop::collection::vec(select(vec!["", "", " ", "\t", "\n", "\u{a0}"]), 9),
    ) {
        let n = d.get() as usize;
        let digits_text = format!("{:0n$}", value % 10u32.pow(d.get()));
        let mut typed = String::new();
        for (i, ch) in digits_text.chars().enumerate() {
            typed.push_str(gaps[i]);
            typed.push(ch);
        }
        typed.push_str(gaps[n]);
        let code = Code::parse(&typed, d);
        prop_assert!(code.is_ok(), "{:?}: {:?}", typed, code);
        let code = code.unwrap();
        prop_assert_eq!(code.as_str(), digits_text.as_str());
    }

    /// Secret decoders never panic; anything they accept is within the documented length.
    #[test]
    fn secret_decoders_never_panic(
        input in prop_oneof![any::<String>(), nasty_text(), "[A-Za-z2-7 =-]{0,300}", "[0-9a-fA-F ]{0,300}"],
    ) {
        for result in [Secret::from_base32(&input), Secret::from_hex(&input)] {
            match result {
                Ok(s) => prop_assert!((Secret::MIN_IMPORT_BYTES..=Secret::MAX_BYTES).contains(&s.len())),
                Err(SecretError::TooLong) => {}
                Err(_) => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Over-long input (SEC-42)
// ---------------------------------------------------------------------------------------------

#[test]
fn one_megabyte_inputs_are_refused() {
    let mb = 1 << 20;
    for input in [
        "1".repeat(mb),
        " ".repeat(mb),
        "123456".repeat(mb / 6 + 1),
        "é".repeat(mb / 2),
        "😀".repeat(mb / 4),
    ] {
        for d in [Digits::SIX, Digits::SEVEN, Digits::EIGHT] {
            assert_eq!(Code::parse(&input, d), Err(CodeError::TooLong));
        }
        assert!(Secret::from_base32(&input).is_err());
        assert!(Secret::from_hex(&input).is_err());
    }
    assert_eq!(
        Secret::from_base32(&"A".repeat(mb)),
        Err(SecretError::TooLong)
    );
    assert_eq!(
        Secret::from_hex(&"ab".repeat(mb / 2)),
        Err(SecretError::TooLong)
    );
}

#[test]
fn over_long_code_is_refused_without_reading_it() {
    // SEC-42 "returns Err in O(1)": the length is checked before any character is read. A
    // non-digit in first place would give NotADigit if the text were scanned; TooLong proves
    // it was not (a deterministic check, not a timing one).
    let huge = format!("x{}", "1".repeat(64 << 20));
    assert_eq!(Code::parse(&huge, Digits::SIX), Err(CodeError::TooLong));
    let just_over = format!("x{}", " ".repeat(Code::MAX_INPUT_LEN));
    assert_eq!(
        Code::parse(&just_over, Digits::SIX),
        Err(CodeError::TooLong)
    );
}

#[test]
fn longest_accepted_code_input_still_parses() {
    // The limit refuses only what no person types: a code padded with white space to exactly
    // MAX_INPUT_LEN bytes is still read.
    let pad = Code::MAX_INPUT_LEN - 6;
    let text = format!("{}123456", " ".repeat(pad));
    assert_eq!(text.len(), Code::MAX_INPUT_LEN);
    assert_eq!(Code::parse(&text, Digits::SIX).unwrap().as_str(), "123456");
    let text = format!("{}123456", " ".repeat(pad + 1));
    assert_eq!(Code::parse(&text, Digits::SIX), Err(CodeError::TooLong));
}

// ---------------------------------------------------------------------------------------------
// A real code collision between adjacent steps (SEC-12)
// ---------------------------------------------------------------------------------------------

#[test]
fn colliding_adjacent_steps_cannot_be_used_twice() {
    // With the RFC seed (SHA1, 6 digits, 30 s) steps 910737 and 910738 share the code 911617
    // (found with Python's hmac, confirmed by `oathtool --hotp -c 910736 -w 3 3132...3930`,
    // which prints 602850 911617 911617 538706). Random tests almost never meet such a pair.
    // The latest matching step must win: otherwise the code is accepted for step 910737 and
    // then, with last-used = 910737, accepted again for step 910738 - one code used twice
    // (RFC 6238 section 5.2).
    let secret = Secret::from_bytes(b"12345678901234567890").unwrap();
    let totp = Totp::new(&secret, TotpParams::default()).unwrap();
    let (s, t) = (910_737u64, 910_738u64);
    assert_eq!(totp.generate_at_step(s).as_str(), "911617");
    assert_eq!(totp.generate_at_step(t).as_str(), "911617");
    assert_eq!(totp.generate_at_step(s - 1).as_str(), "602850");
    assert_eq!(totp.generate_at_step(t + 1).as_str(), "538706");
    let code = Code::parse("911617", Digits::SIX).unwrap();
    let now = t * 30; // window (default, one back) covers s and t
    assert_eq!(
        totp.verify(&code, now, Window::default(), None),
        Ok(Verification::Accepted { time_step: t })
    );
    assert_eq!(
        totp.verify(&code, now, Window::default(), Some(s)),
        Ok(Verification::Accepted { time_step: t })
    );
    assert_eq!(
        totp.verify(&code, now, Window::default(), Some(t)),
        Ok(Verification::Replayed { time_step: t })
    );
    // Seen from step s, with one step ahead allowed, the later step still wins.
    assert_eq!(
        totp.verify(&code, s * 30, Window::default(), None),
        Ok(Verification::Accepted { time_step: t })
    );
    // HOTP verify from counter s: the first match (s) is the next counter to use, and then
    // counter t (= s + 1) is accepted on its own turn, as RFC 4226 counters advance.
    let h = Hotp::new(&secret, Algorithm::Sha1, Digits::SIX).unwrap();
    assert_eq!(
        h.verify(&code, s, 5),
        Verification::Accepted { time_step: s }
    );
    assert_eq!(
        h.verify(&code, s + 1, 5),
        Verification::Accepted { time_step: t }
    );
}

// `SecondFactor::detect`: one field for either factor never mistakes one for the other.
proptest! {
    #[test]
    fn detect_reads_app_codes_as_app_codes(code in "[0-9]{6,8}", split in 0usize..9) {
        let spaced = if split < code.len() {
            format!("{} {}", &code[..split], &code[split..])
        } else {
            code.clone()
        };
        prop_assert!(matches!(totp_mfa::SecondFactor::detect(&spaced), totp_mfa::SecondFactor::Totp(t) if t == spaced));
    }

    #[test]
    fn detect_reads_recovery_codes_as_recovery_codes(
        chars in "[0-9A-HJKMNP-TV-Z]{16}",
        lower in any::<bool>(),
        dashes in any::<bool>(),
    ) {
        let mut text = if dashes {
            format!("{}-{}-{}-{}", &chars[..4], &chars[4..8], &chars[8..12], &chars[12..])
        } else {
            chars.clone()
        };
        if lower {
            text = text.to_lowercase();
        }
        prop_assert!(matches!(totp_mfa::SecondFactor::detect(&text), totp_mfa::SecondFactor::RecoveryCode(t) if t == text));
    }
}

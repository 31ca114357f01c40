//! URI and recovery-code properties: round trips and no panics on any input (SEC-30, SEC-42).

use proptest::prelude::*;
use totp_mfa::otp::{Algorithm, Digits, Period, TotpParams};
use totp_mfa::{OtpAuth, Secret};

fn params() -> impl Strategy<Value = TotpParams> {
    (0usize..3, 6u32..=8, 1u64..=3600).prop_map(|(a, d, p)| {
        TotpParams::default()
            .with_algorithm([Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512][a])
            .with_digits(Digits::new(d).unwrap())
            .with_period(Period::new(p).unwrap())
    })
}

/// Names as people write them: any characters but a colon, trimmed, non-empty.
fn name() -> impl Strategy<Value = String> {
    "[^:\\x00-\\x1f]{1,40}".prop_filter_map("blank", |s| {
        let t = s.trim().to_owned();
        (!t.is_empty()).then_some(t)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn build_then_parse_is_the_identity(
        issuer in proptest::option::of(name()),
        account in name(),
        key in proptest::collection::vec(any::<u8>(), 10..=64),
        params in params(),
    ) {
        let secret = Secret::from_bytes(&key).unwrap();
        let built = OtpAuth::totp(issuer.as_deref(), &account, secret, params).unwrap();
        let uri = built.to_uri();
        // Never a '+' for a space, never padding, no raw spaces.
        prop_assert!(!uri.as_str().contains(' '));
        prop_assert!(!uri.as_str().contains('='.to_string().repeat(2).as_str()));
        let parsed = OtpAuth::parse(uri.as_str()).unwrap();
        prop_assert_eq!(parsed.account(), account.as_str());
        prop_assert_eq!(parsed.issuer(), issuer.as_deref());
        prop_assert_eq!(parsed.secret().expose_bytes(), &key[..]);
        prop_assert_eq!(parsed.totp_params(), params);
        prop_assert_eq!(&parsed, &built);
    }

    #[test]
    fn parse_never_panics(s in ".{0,300}") {
        let _ = OtpAuth::parse(&s);
        let _ = OtpAuth::parse(&format!("otpauth://totp/{s}"));
        let _ = OtpAuth::parse(&format!("otpauth://hotp/a?{s}"));
        let _ = OtpAuth::parse(&format!("otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&{s}"));
    }

    #[test]
    fn parse_never_panics_on_uri_shaped_noise(
        parts in proptest::collection::vec("[a-zA-Z0-9%:+=&?/._~ -]{0,12}", 0..12)
    ) {
        let uri = format!("otpauth://totp/{}", parts.concat());
        let _ = OtpAuth::parse(&uri);
    }
}

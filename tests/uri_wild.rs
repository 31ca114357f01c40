//! `otpauth://` URIs as real issuers emit them: what must parse, and to what, and what must
//! fail with which typed error (SEC-28, SEC-30).

use totp_mfa::otp::{Algorithm, Digits, Period};
use totp_mfa::{OtpAuth, OtpKind, UriError};

const S: &str = "JBSWY3DPEHPK3PXP"; // "Hello!\xDE\xAD\xBE\xEF"

struct Case {
    uri: String,
    issuer: Option<&'static str>,
    label_issuer: Option<&'static str>,
    account: &'static str,
}

fn case(
    uri: &str,
    issuer: Option<&'static str>,
    label_issuer: Option<&'static str>,
    account: &'static str,
) -> Case {
    Case {
        uri: uri.replace("{S}", S),
        issuer,
        label_issuer,
        account,
    }
}

#[test]
fn labels_and_issuers_in_the_wild() {
    let cases = [
        // Issuer in label and parameter, agreeing.
        case(
            "otpauth://totp/ACME:alice?secret={S}&issuer=ACME",
            Some("ACME"),
            Some("ACME"),
            "alice",
        ),
        // Disagreeing: the parameter is the issuer; the label's prefix is kept too.
        case(
            "otpauth://totp/Old%20Name:alice?secret={S}&issuer=New%20Name",
            Some("New Name"),
            Some("Old Name"),
            "alice",
        ),
        // Label only.
        case(
            "otpauth://totp/ACME:alice?secret={S}",
            Some("ACME"),
            Some("ACME"),
            "alice",
        ),
        // Parameter only.
        case(
            "otpauth://totp/alice?secret={S}&issuer=ACME",
            Some("ACME"),
            None,
            "alice",
        ),
        // Separator as %3A and %3a, with and without spaces after it.
        case(
            "otpauth://totp/ACME%3Aalice?secret={S}",
            Some("ACME"),
            Some("ACME"),
            "alice",
        ),
        case(
            "otpauth://totp/ACME%3a%20alice?secret={S}",
            Some("ACME"),
            Some("ACME"),
            "alice",
        ),
        case(
            "otpauth://totp/ACME:%20%20alice?secret={S}",
            Some("ACME"),
            Some("ACME"),
            "alice",
        ),
        // Colons that belong to the issuer itself, named by the parameter.
        case(
            "otpauth://totp/Foo:Bar:alice?secret={S}&issuer=Foo%3ABar",
            Some("Foo:Bar"),
            Some("Foo:Bar"),
            "alice",
        ),
        // '+' in the path is a plus (plus-addressed e-mail); in the query it is a space.
        case(
            "otpauth://totp/ACME:alice+mfa@example.com?secret={S}&issuer=ACME+Corp",
            Some("ACME Corp"),
            Some("ACME"),
            "alice+mfa@example.com",
        ),
        // %20 in both places.
        case(
            "otpauth://totp/ACME%20Corp:John%20Doe?secret={S}&issuer=ACME%20Corp",
            Some("ACME Corp"),
            Some("ACME Corp"),
            "John Doe",
        ),
        // Non-ASCII, encoded and raw.
        case(
            "otpauth://totp/Z%C3%BCrich%20Bank:j%C3%B6rg?secret={S}&issuer=Z%C3%BCrich%20Bank",
            Some("Zürich Bank"),
            Some("Zürich Bank"),
            "jörg",
        ),
        case(
            "otpauth://totp/東京:花子?secret={S}&issuer=東京",
            Some("東京"),
            Some("東京"),
            "花子",
        ),
        // Surrounding white space, a trailing newline, parameters in any order, unknown ones.
        case(
            "  otpauth://totp/ACME:alice?image=https%3A%2F%2Fx&issuer=ACME&secret={S}&foo\r\n",
            Some("ACME"),
            Some("ACME"),
            "alice",
        ),
        // Scheme and type in capitals.
        case(
            "OTPAUTH://TOTP/ACME:alice?SECRET={S}",
            Some("ACME"),
            Some("ACME"),
            "alice",
        ),
    ];
    for c in cases {
        let p = OtpAuth::parse(&c.uri).unwrap_or_else(|e| panic!("{}: {e}", c.uri));
        assert_eq!(p.issuer(), c.issuer, "{}", c.uri);
        assert_eq!(p.label_issuer(), c.label_issuer, "{}", c.uri);
        assert_eq!(p.account(), c.account, "{}", c.uri);
        assert_eq!(
            p.secret().expose_bytes(),
            b"Hello!\xDE\xAD\xBE\xEF",
            "{}",
            c.uri
        );
    }
}

#[test]
fn secrets_in_the_wild() {
    let key = b"Hello!\xDE\xAD\xBE\xEF";
    for secret in [
        "jbswy3dpehpk3pxp",             // lower case
        "JBSW%20Y3DP%20EHPK%203PXP",    // grouped with spaces
        "JBSW-Y3DP-EHPK-3PXP",          // grouped with dashes
        "JBSWY3DPEHPK3PXP====",         // padding
        "JBSWY3DPEHPK3PXP%3D%3D%3D%3D", // encoded padding
        "JBSWY3DPEHPK3PXP%3d",          // lower-case escape
    ] {
        let p = OtpAuth::parse(&format!("otpauth://totp/a?secret={secret}"))
            .unwrap_or_else(|e| panic!("{secret}: {e}"));
        assert_eq!(p.secret().expose_bytes(), key, "{secret}");
    }
    // A length that is not a multiple of 8 characters, with trailing bits that are not zero:
    // 17 characters = 85 bits = 10 bytes and 5 spare bits (set here).
    let p = OtpAuth::parse("otpauth://totp/a?secret=JBSWY3DPEHPK3PXP7").unwrap();
    assert_eq!(p.secret().expose_bytes(), key);
}

#[test]
fn parameters_in_the_wild() {
    let p = OtpAuth::parse(&format!(
        "otpauth://totp/a?secret={S}&algorithm=sha512&digits=8&period=60"
    ))
    .unwrap();
    assert_eq!(p.totp_params().algorithm(), Algorithm::Sha512);
    assert_eq!(p.totp_params().digits(), Digits::EIGHT);
    assert_eq!(p.totp_params().period(), Period::new(60).unwrap());
    for alg in ["SHA256", "sha256", "Sha256", "SHA-256"] {
        let p = OtpAuth::parse(&format!("otpauth://totp/a?secret={S}&algorithm={alg}")).unwrap();
        assert_eq!(p.totp_params().algorithm(), Algorithm::Sha256, "{alg}");
    }
    let p = OtpAuth::parse(&format!(
        "otpauth://hotp/a?secret={S}&counter=18446744073709551615"
    ))
    .unwrap();
    assert_eq!(p.kind(), OtpKind::Hotp { counter: u64::MAX });
}

#[test]
fn broken_uris_fail_with_typed_errors() {
    let param = |name: &'static str| move |e: &UriError| matches!(e, UriError::Parameter { name: n, .. } if *n == name);
    type Check = Box<dyn Fn(&UriError) -> bool>;
    let cases: Vec<(String, Check)> = vec![
        (
            "otpauth://totp/a".into(),
            Box::new(|e| *e == UriError::MissingSecret),
        ),
        (
            "otpauth://totp/a?secret=".into(),
            Box::new(|e| *e == UriError::MissingSecret),
        ),
        (
            "otpauth://totp/a?secret=%20%20".into(),
            Box::new(|e| *e == UriError::MissingSecret),
        ),
        (
            "otpauth://totp/a?secret=JBSWY3DP1EHPK3PX".into(),
            Box::new(|e| matches!(e, UriError::Secret(_))),
        ),
        (
            "otpauth://totp/a?secret=JBSW".into(),
            Box::new(|e| matches!(e, UriError::Secret(_))),
        ),
        (
            format!("otpauth://totp/a?secret={S}&digits=0"),
            Box::new(param("digits")),
        ),
        (
            format!("otpauth://totp/a?secret={S}&digits=-6"),
            Box::new(param("digits")),
        ),
        (
            format!("otpauth://totp/a?secret={S}&digits=six"),
            Box::new(param("digits")),
        ),
        (
            format!("otpauth://totp/a?secret={S}&digits=10"),
            Box::new(param("digits")),
        ),
        (
            format!("otpauth://totp/a?secret={S}&digits=99999999999999999999999"),
            Box::new(param("digits")),
        ),
        (
            format!("otpauth://totp/a?secret={S}&period=0"),
            Box::new(param("period")),
        ),
        (
            format!("otpauth://totp/a?secret={S}&period=-30"),
            Box::new(param("period")),
        ),
        (
            format!("otpauth://totp/a?secret={S}&period=30s"),
            Box::new(param("period")),
        ),
        (
            format!("otpauth://totp/a?secret={S}&period=3601"),
            Box::new(param("period")),
        ),
        (
            format!("otpauth://totp/a?secret={S}&algorithm=MD5"),
            Box::new(param("algorithm")),
        ),
        (
            format!("otpauth://totp/a?secret={S}&algorithm=SHA3-256"),
            Box::new(param("algorithm")),
        ),
        (
            format!("otpauth://hotp/a?secret={S}"),
            Box::new(|e| *e == UriError::MissingCounter),
        ),
        (
            format!("otpauth://hotp/a?secret={S}&counter=-1"),
            Box::new(param("counter")),
        ),
        (
            format!("otpauth://totp/?secret={S}"),
            Box::new(|e| *e == UriError::MissingAccount),
        ),
        (
            format!("otpauth://totp/ACME:?secret={S}"),
            Box::new(|e| *e == UriError::MissingAccount),
        ),
        (
            format!("otpauth://steam/a?secret={S}"),
            Box::new(|e| *e == UriError::UnknownType),
        ),
        (
            format!("otpauth:/totp/a?secret={S}"),
            Box::new(|e| *e == UriError::NotOtpauth),
        ),
        (
            format!("http://totp/a?secret={S}"),
            Box::new(|e| *e == UriError::NotOtpauth),
        ),
        (
            format!("otpauth://totp/a%ZZ?secret={S}"),
            Box::new(|e| matches!(e, UriError::Encoding { .. })),
        ),
        (
            format!("otpauth://totp/a?secret={S}&secret={S}"),
            Box::new(|e| *e == UriError::Duplicate("secret")),
        ),
        (
            format!("otpauth://totp/a?secret={S}&issuer=x&issuer=y"),
            Box::new(|e| *e == UriError::Duplicate("issuer")),
        ),
        (
            format!("otpauth://totp/{}?secret={S}", "a".repeat(300)),
            Box::new(|e| matches!(e, UriError::NameTooLong { .. })),
        ),
        (
            format!("otpauth://totp/a?secret={S}&x={}", "y".repeat(10_000)),
            Box::new(|e| *e == UriError::TooLong),
        ),
    ];
    for (uri, check) in cases {
        match OtpAuth::parse(&uri) {
            Ok(p) => panic!("{uri} parsed as {p:?}"),
            Err(e) => {
                assert!(check(&e), "{uri}: {e:?}");
                assert!(!e.to_string().contains(S), "{e}");
            }
        }
    }
}

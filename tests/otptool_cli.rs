//! Black-box tests of the `otptool` example (examples/otptool.rs): its command-line contract,
//! exit codes and exact output, against RFC 6238 / RFC 4226 vectors and, when installed,
//! Debian's `oathtool`.
//!
//! The binary is the one `cargo test` builds into `target/<profile>/examples/`. `cargo test`
//! with a target filter (`--test otptool_cli`) does not build examples: run
//! `cargo build --example otptool` first, or plain `cargo test`.

#![cfg(feature = "qr")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use totp_mfa::otp::{Code, Digits, ParamError, Period, Window};
use totp_mfa::{OtpAuth, QrError, Secret};

// -------------------------------------------------------------------------------------------
// Harness
// -------------------------------------------------------------------------------------------

fn otptool_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| common::example_binary("otptool"))
}

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

fn finish(out: Output) -> Run {
    Run {
        status: out.status.code().expect("otptool was killed by a signal"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let out = Command::new(otptool_path())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("otptool runs");
    let r = finish(out);
    assert!(
        !r.stderr.contains("panicked"),
        "otptool panicked: {}",
        r.stderr
    );
    r
}

/// Runs a command that must succeed, and returns its stdout.
fn ok(args: &[&str]) -> String {
    let r = run(args);
    assert_eq!(
        (r.status, r.stderr.as_str()),
        (0, ""),
        "otptool {args:?} failed"
    );
    r.stdout
}

/// Runs a command that must be refused as bad input with `kind`; returns the message.
fn bad(args: &[&str], kind: &str) -> String {
    let r = run(args);
    assert_eq!(r.status, 2, "otptool {args:?}: stdout {:?}", r.stdout);
    assert_eq!(r.stdout, "", "otptool {args:?} printed on stdout");
    let message = parse_error_line(&r.stderr)
        .unwrap_or_else(|| panic!("otptool {args:?}: bad error line {:?}", r.stderr));
    assert_eq!(message.0, kind, "otptool {args:?}: {}", r.stderr);
    message.1
}

/// Parses `{"error":"KIND","message":"..."}\n` (exactly one line), unescaping the message.
fn parse_error_line(stderr: &str) -> Option<(String, String)> {
    let line = stderr.strip_suffix('\n')?;
    if line.contains('\n') {
        return None;
    }
    let rest = line.strip_prefix("{\"error\":\"")?;
    let (kind, rest) = rest.split_once('"')?;
    if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return None;
    }
    let body = rest.strip_prefix(",\"message\":\"")?.strip_suffix("\"}")?;
    Some((kind.to_owned(), json_unescape(body)?))
}

/// The inverse of RFC 8259 string escaping (enough for the tool's output).
fn json_unescape(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return None,
            c if (c as u32) < 0x20 => return None,
            '\\' => match chars.next()? {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                '/' => out.push('/'),
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                _ => return None,
            },
            c => out.push(c),
        }
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The RFC 6238 Appendix B seeds: as long as each algorithm's HMAC output (Appendix A code).
fn rfc6238_seed(algorithm: &str) -> String {
    let len = match algorithm {
        "SHA1" => 20,
        "SHA256" => 32,
        _ => 64,
    };
    hex(&b"1234567890".repeat(7)[..len])
}

const RFC_SHA1_HEX: &str = "3132333435363738393031323334353637383930";
/// Base32 of the RFC 4226 / RFC 6238 SHA-1 seed "12345678901234567890".
const RFC_SHA1_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const KUF_SECRET: &str = "JBSWY3DPEHPK3PXP";
const KUF_URI: &str =
    "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example";

// -------------------------------------------------------------------------------------------
// code
// -------------------------------------------------------------------------------------------

#[test]
fn code_matches_rfc6238_appendix_b_for_all_algorithms() {
    // RFC 6238 Appendix B (T0 = 0, X = 30, 8 digits).
    let vectors: [(u64, &str, &str); 18] = [
        (59, "94287082", "SHA1"),
        (59, "46119246", "SHA256"),
        (59, "90693936", "SHA512"),
        (1111111109, "07081804", "SHA1"),
        (1111111109, "68084774", "SHA256"),
        (1111111109, "25091201", "SHA512"),
        (1111111111, "14050471", "SHA1"),
        (1111111111, "67062674", "SHA256"),
        (1111111111, "99943326", "SHA512"),
        (1234567890, "89005924", "SHA1"),
        (1234567890, "91819424", "SHA256"),
        (1234567890, "93441116", "SHA512"),
        (2000000000, "69279037", "SHA1"),
        (2000000000, "90698825", "SHA256"),
        (2000000000, "38618901", "SHA512"),
        (20000000000, "65353130", "SHA1"),
        (20000000000, "77737706", "SHA256"),
        (20000000000, "47863826", "SHA512"),
    ];
    for (time, expected, algorithm) in vectors {
        let seed = rfc6238_seed(algorithm);
        let time = time.to_string();
        let out = ok(&[
            "code",
            "--secret-hex",
            &seed,
            "--digits",
            "8",
            "--time",
            &time,
            "--algorithm",
            algorithm,
        ]);
        assert_eq!(out, format!("{expected}\n"), "{algorithm} at {time}");
    }
}

#[test]
fn code_defaults_to_six_digits_and_accepts_every_spelling() {
    // The 6-digit RFC value is the last 6 digits of the 8-digit one.
    assert_eq!(
        ok(&["code", "--secret-hex", RFC_SHA1_HEX, "--time", "59"]),
        "287082\n"
    );
    assert_eq!(
        ok(&["code", "--secret", RFC_SHA1_B32, "--time", "1111111109"]),
        "081804\n"
    );
    // Lenient base32 as people type it, --name=value, lowercase algorithm names.
    assert_eq!(
        ok(&[
            "code",
            "--secret=gezd gnbv-gy3t qojq gezd gnbv gy3t qojq",
            "--time=59",
            "--digits=7",
            "--algorithm=sha-1",
        ]),
        "4287082\n"
    );
    let seed = rfc6238_seed("SHA256");
    assert_eq!(
        ok(&[
            "code",
            "--secret-hex",
            &seed,
            "--algorithm",
            "sha256",
            "--time",
            "59"
        ]),
        "119246\n"
    );
}

#[test]
fn code_honors_period_and_t0() {
    // Step 1 of a 30 s period starting at T0 = 30 begins at 60: the RFC's step-1 code.
    assert_eq!(
        ok(&[
            "code",
            "--secret-hex",
            RFC_SHA1_HEX,
            "--digits",
            "8",
            "--t0",
            "30",
            "--time",
            "89"
        ]),
        "94287082\n"
    );
    // 60 s period: time 119 is step 1 too; time 120 is step 2 (RFC 4226 counter 2: 359152).
    let at = |t: &str| {
        ok(&[
            "code",
            "--secret-hex",
            RFC_SHA1_HEX,
            "--period",
            "60",
            "--time",
            t,
        ])
    };
    assert_eq!(at("119"), "287082\n");
    assert_eq!(at("120"), "359152\n");
    assert_eq!(at("0"), "755224\n");
}

#[test]
fn code_from_uri_uses_its_parameters_unless_overridden() {
    let b32 = Secret::from_hex(&rfc6238_seed("SHA256"))
        .unwrap()
        .to_base32();
    let uri = format!(
        "otpauth://totp/Ex:bob?secret={}&algorithm=SHA256&digits=8",
        &*b32
    );
    assert_eq!(ok(&["code", "--uri", &uri, "--time", "59"]), "46119246\n");
    // Explicit options win over the URI.
    assert_eq!(
        ok(&["code", "--uri", &uri, "--time", "59", "--digits", "6"]),
        "119246\n"
    );
    let sha1_uri = format!("otpauth://totp/Ex:bob?secret={RFC_SHA1_B32}&period=60");
    assert_eq!(
        ok(&["code", "--uri", &sha1_uri, "--time", "120"]),
        "359152\n"
    );
    assert_eq!(
        ok(&[
            "code", "--uri", &sha1_uri, "--time", "120", "--period", "30"
        ]),
        "338314\n"
    );
    assert_eq!(
        ok(&[
            "code", "--uri", &sha1_uri, "--time", "59", "--period", "30", "--digits", "8"
        ]),
        "94287082\n"
    );
}

#[test]
fn code_from_hotp_uri_uses_its_counter() {
    // RFC 4226 Appendix D.
    let expected = [
        "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
        "520489",
    ];
    for (counter, code) in expected.iter().enumerate() {
        let uri = format!("otpauth://hotp/Svc:bob?secret={RFC_SHA1_B32}&counter={counter}");
        assert_eq!(
            ok(&["code", "--uri", &uri]),
            format!("{code}\n"),
            "{counter}"
        );
    }
    let uri = format!("otpauth://hotp/Svc:bob?secret={RFC_SHA1_B32}&counter=1&digits=8");
    assert_eq!(ok(&["code", "--uri", &uri]), "94287082\n");
    // Time has no meaning for HOTP: refused rather than silently ignored.
    for option in ["--time", "--period", "--t0"] {
        bad(&["code", "--uri", &uri, option, "30"], "usage");
    }
}

#[test]
fn code_without_time_uses_the_system_clock() {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .to_string()
    };
    let before = now();
    let out = ok(&["code", "--secret", KUF_SECRET]);
    let after = now();
    let expected: Vec<String> = [before, after]
        .iter()
        .map(|t| ok(&["code", "--secret", KUF_SECRET, "--time", t]))
        .collect();
    assert!(expected.contains(&out), "{out:?} not in {expected:?}");
    assert_eq!(out.len(), 7);
}

// -------------------------------------------------------------------------------------------
// verify
// -------------------------------------------------------------------------------------------

const NOW: u64 = 1_111_111_109; // step 37037036
const NOW_STEP: u64 = NOW / 30;

fn code_at(time: u64) -> String {
    ok(&["code", "--secret", KUF_SECRET, "--time", &time.to_string()])
        .trim_end()
        .to_owned()
}

fn verify(extra: &[&str], code: &str) -> Run {
    let now = NOW.to_string();
    let mut args = vec!["verify", "--secret", KUF_SECRET, "--time", &now];
    args.extend_from_slice(extra);
    args.push(code);
    run(&args)
}

fn assert_accepted(r: &Run, step: u64) {
    assert_eq!(
        (r.status, r.stdout.as_str(), r.stderr.as_str()),
        (
            0,
            format!("{{\"accepted\":true,\"time_step\":{step}}}\n").as_str(),
            ""
        )
    );
}

fn assert_refused(r: &Run, reason: &str) {
    assert_eq!(
        (r.status, r.stdout.as_str(), r.stderr.as_str()),
        (
            1,
            format!("{{\"accepted\":false,\"reason\":\"{reason}\"}}\n").as_str(),
            ""
        )
    );
}

#[test]
fn verify_accepts_one_step_each_way_and_refuses_two() {
    for offset in [-1i64, 0, 1] {
        let code = code_at(NOW.checked_add_signed(offset * 30).unwrap());
        let step = NOW_STEP.checked_add_signed(offset).unwrap();
        assert_accepted(&verify(&[], &code), step);
    }
    for offset in [-2i64, 2] {
        let code = code_at(NOW.checked_add_signed(offset * 30).unwrap());
        assert_refused(&verify(&[], &code), "no_match");
        // A wider window reaches it.
        let step = NOW_STEP.checked_add_signed(offset).unwrap();
        assert_accepted(&verify(&["--window", "2"], &code), step);
    }
    // Window 0: the current step only.
    assert_accepted(&verify(&["--window", "0"], &code_at(NOW)), NOW_STEP);
    assert_refused(&verify(&["--window", "0"], &code_at(NOW - 30)), "no_match");
}

#[test]
fn verify_refuses_replays_with_last_step() {
    let code = code_at(NOW);
    let step = NOW_STEP.to_string();
    let prev = (NOW_STEP - 1).to_string();
    let next = (NOW_STEP + 1).to_string();
    // Fresh: accepted; once used: replayed.
    assert_accepted(&verify(&["--last-step", &prev], &code), NOW_STEP);
    assert_refused(&verify(&["--last-step", &step], &code), "replayed");
    assert_refused(&verify(&["--last-step", &next], &code), "replayed");
    // An older code after a newer one was used (RFC 6238 section 5.2).
    assert_refused(
        &verify(&["--last-step", &step], &code_at(NOW - 30)),
        "replayed",
    );
    // The next step's code is still fresh.
    assert_accepted(
        &verify(&["--last-step", &step], &code_at(NOW + 30)),
        NOW_STEP + 1,
    );
    // A code that matches nothing is no_match even with --last-step.
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert_refused(&verify(&["--last-step", &step], wrong), "no_match");
}

#[test]
fn verify_handles_rfc_vectors_and_typed_codes() {
    let r = run(&[
        "verify",
        "--secret-hex",
        RFC_SHA1_HEX,
        "--digits",
        "8",
        "--time",
        "59",
        "94287082",
    ]);
    assert_accepted(&r, 1);
    // White space is dropped, as people type codes; `--` ends the options.
    let r = run(&[
        "verify",
        "--secret",
        RFC_SHA1_B32,
        "--time",
        "1111111109",
        "--",
        " 081 804\n",
    ]);
    assert_accepted(&r, 37037036);
    // SHA-512 through a URI, 8 digits.
    let b32 = Secret::from_hex(&rfc6238_seed("SHA512"))
        .unwrap()
        .to_base32();
    let uri = format!(
        "otpauth://totp/Ex:bob?secret={}&algorithm=SHA512&digits=8",
        &*b32
    );
    let r = run(&["verify", "--uri", &uri, "--time", "20000000000", "47863826"]);
    assert_accepted(&r, 0x27BC86AA);
}

#[test]
fn verify_hotp_looks_ahead_and_refuses_replays() {
    let uri = format!("otpauth://hotp/Svc:bob?secret={RFC_SHA1_B32}&counter=1");
    // 287082 is counter 1, 359152 counter 2, 969429 counter 3 (RFC 4226 Appendix D).
    assert_accepted(&run(&["verify", "--uri", &uri, "287082"]), 1);
    assert_accepted(&run(&["verify", "--uri", &uri, "359152"]), 2);
    assert_refused(&run(&["verify", "--uri", &uri, "969429"]), "no_match");
    assert_accepted(
        &run(&["verify", "--uri", &uri, "--window", "2", "969429"]),
        3,
    );
    // Counter 0 is behind the URI's counter: not looked at.
    assert_refused(&run(&["verify", "--uri", &uri, "755224"]), "no_match");
    // Counter 1 already used.
    assert_refused(
        &run(&["verify", "--uri", &uri, "--last-step", "1", "287082"]),
        "replayed",
    );
    assert_accepted(
        &run(&["verify", "--uri", &uri, "--last-step", "1", "359152"]),
        2,
    );
    assert_refused(
        &run(&["verify", "--uri", &uri, "--last-step", "5", "359152"]),
        "replayed",
    );
    bad(&["verify", "--uri", &uri, "--time", "5", "287082"], "usage");
}

#[test]
fn verify_treats_malformed_codes_as_bad_input() {
    let now = NOW.to_string();
    let base = ["verify", "--secret", KUF_SECRET, "--time", now.as_str()];
    for (code, expected) in [
        ("12a456", Code::parse("12a456", Digits::SIX).unwrap_err()),
        ("12345", Code::parse("12345", Digits::SIX).unwrap_err()),
        ("1234567", Code::parse("1234567", Digits::SIX).unwrap_err()),
        ("  ", Code::parse("  ", Digits::SIX).unwrap_err()),
        ("１23456", Code::parse("１23456", Digits::SIX).unwrap_err()),
    ] {
        let mut args = base.to_vec();
        args.push(code);
        assert_eq!(bad(&args, "code"), expected.to_string(), "{code:?}");
    }
    // With --digits 8 a 6-digit code is the wrong length.
    let mut args = base.to_vec();
    args.extend(["--digits", "8", "123456"]);
    bad(&args, "code");
    // Missing or extra CODE.
    bad(&base, "usage");
    let mut args = base.to_vec();
    args.extend(["123456", "654321"]);
    bad(&args, "usage");
}

// -------------------------------------------------------------------------------------------
// uri
// -------------------------------------------------------------------------------------------

#[test]
fn uri_parse_prints_the_key_uri_format_example() {
    assert_eq!(
        ok(&["uri", "parse", KUF_URI]),
        "{\"type\":\"totp\",\"issuer\":\"Example\",\"label_issuer\":\"Example\",\
         \"account\":\"alice@google.com\",\"secret\":\"JBSWY3DPEHPK3PXP\",\
         \"secret_hex\":\"48656c6c6f21deadbeef\",\"algorithm\":\"SHA1\",\"digits\":6,\
         \"period\":30,\"counter\":null}\n"
    );
}

#[test]
fn uri_parse_reports_hotp_absent_issuers_and_non_defaults() {
    assert_eq!(
        ok(&[
            "uri",
            "parse",
            "otpauth://hotp/bob?secret=jbsw-y3dp-ehpk-3pxp&counter=42&algorithm=sha512&digits=8"
        ]),
        "{\"type\":\"hotp\",\"issuer\":null,\"label_issuer\":null,\"account\":\"bob\",\
         \"secret\":\"JBSWY3DPEHPK3PXP\",\"secret_hex\":\"48656c6c6f21deadbeef\",\
         \"algorithm\":\"SHA512\",\"digits\":8,\"period\":null,\"counter\":42}\n"
    );
    // The issuer parameter without a label prefix, and a period.
    assert_eq!(
        ok(&[
            "uri",
            "parse",
            "otpauth://totp/bob?secret=JBSWY3DPEHPK3PXP&issuer=ACME+Co&period=60"
        ]),
        "{\"type\":\"totp\",\"issuer\":\"ACME Co\",\"label_issuer\":null,\"account\":\"bob\",\
         \"secret\":\"JBSWY3DPEHPK3PXP\",\"secret_hex\":\"48656c6c6f21deadbeef\",\
         \"algorithm\":\"SHA1\",\"digits\":6,\"period\":60,\"counter\":null}\n"
    );
    // The largest counter is a JSON number too.
    let out = ok(&[
        "uri",
        "parse",
        "otpauth://hotp/bob?secret=JBSWY3DPEHPK3PXP&counter=18446744073709551615",
    ]);
    assert!(
        out.ends_with(",\"counter\":18446744073709551615}\n"),
        "{out}"
    );
}

#[test]
fn uri_parse_escapes_json_strings() {
    // Issuer `Q"uote\` + U+0001, account with a tab and non-ASCII text.
    let out = ok(&[
        "uri",
        "parse",
        "otpauth://totp/Q%22uote%5C%01:b%09ob%E2%80%A8%C3%A9?secret=JBSWY3DPEHPK3PXP",
    ]);
    assert!(
        out.starts_with(
            "{\"type\":\"totp\",\"issuer\":\"Q\\\"uote\\\\\\u0001\",\
             \"label_issuer\":\"Q\\\"uote\\\\\\u0001\",\"account\":\"b\\u0009ob\u{2028}é\","
        ),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1);
    // Every control character is escaped as \u00XX.
    assert!(
        !out.trim_end().chars().any(|c| (c as u32) < 0x20),
        "{out:?}"
    );
}

#[test]
fn uri_build_produces_the_key_uri_format_example() {
    let expected = format!("{KUF_URI}\n");
    assert_eq!(
        ok(&[
            "uri",
            "build",
            "--issuer",
            "Example",
            "--account",
            "alice@google.com",
            "--secret",
            KUF_SECRET
        ]),
        expected
    );
    assert_eq!(
        ok(&[
            "uri",
            "build",
            "--account=alice@google.com",
            "--secret-hex=48656c6c6f21deadbeef",
            "--issuer=Example",
        ]),
        expected
    );
    assert_eq!(
        ok(&[
            "uri",
            "build",
            "--issuer",
            "ACME Co",
            "--account",
            "John Doe+x",
            "--secret",
            "jbsw y3dp ehpk 3pxp",
            "--algorithm",
            "SHA256",
            "--digits",
            "8",
            "--period",
            "60"
        ]),
        "otpauth://totp/ACME%20Co:John%20Doe%2Bx?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Co\
         &algorithm=SHA256&digits=8&period=60\n"
    );
    assert_eq!(
        ok(&["uri", "build", "--account", "bob", "--secret", KUF_SECRET]),
        "otpauth://totp/bob?secret=JBSWY3DPEHPK3PXP\n"
    );
}

#[test]
fn uri_build_then_parse_then_code_round_trips() {
    let uri = ok(&[
        "uri",
        "build",
        "--issuer",
        "Example",
        "--account",
        "carol",
        "--secret-hex",
        &rfc6238_seed("SHA512"),
        "--algorithm",
        "SHA512",
        "--digits",
        "8",
    ]);
    let uri = uri.trim_end();
    assert_eq!(ok(&["code", "--uri", uri, "--time", "59"]), "90693936\n");
    let parsed = ok(&["uri", "parse", uri]);
    assert!(
        parsed.contains(&format!("\"secret_hex\":\"{}\"", rfc6238_seed("SHA512"))),
        "{parsed}"
    );
}

#[test]
fn uri_build_refuses_what_the_format_cannot_carry() {
    for (account, issuer) in [("a:b", "Example"), ("alice", "Ex:ample"), ("  ", "Example")] {
        let message = bad(
            &[
                "uri",
                "build",
                "--account",
                account,
                "--issuer",
                issuer,
                "--secret",
                KUF_SECRET,
            ],
            "uri",
        );
        let expected = OtpAuth::totp(
            Some(issuer),
            account,
            Secret::from_base32(KUF_SECRET).unwrap(),
            totp_mfa::otp::TotpParams::default(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(message, expected);
    }
    bad(&["uri", "build", "--secret", KUF_SECRET], "usage");
    bad(&["uri", "build", "--account", "bob"], "usage");
    bad(
        &[
            "uri",
            "build",
            "--account",
            "bob",
            "--secret",
            KUF_SECRET,
            "--t0",
            "5",
        ],
        "usage",
    );
    bad(
        &[
            "uri",
            "build",
            "--account",
            "bob",
            "--secret",
            KUF_SECRET,
            "--digits",
            "5",
        ],
        "param",
    );
}

// -------------------------------------------------------------------------------------------
// qr
// -------------------------------------------------------------------------------------------

#[test]
fn qr_renders_svg_and_text() {
    let svg = ok(&["qr", "--uri", KUF_URI, "--format", "svg"]);
    // A standalone SVG document: the root element with its namespace.
    assert!(svg.starts_with("<svg "), "{}", &svg[..svg.len().min(80)]);
    assert!(svg.contains(r#"xmlns="http://www.w3.org/2000/svg""#));
    let text = ok(&["qr", "--uri", KUF_URI]);
    assert!(text.lines().count() > 10, "{text}");
    assert!(text.chars().any(|c| matches!(c, '▀' | '▄' | '█')), "{text}");
    assert_eq!(text, ok(&["qr", "--uri", KUF_URI, "--format", "text"]));
}

#[test]
fn qr_refuses_bad_input() {
    bad(&["qr"], "usage");
    bad(&["qr", "--uri", KUF_URI, "--format", "png"], "param");
    bad(&["qr", "--uri", "https://example.com"], "uri");
    bad(&["qr", "--secret", KUF_SECRET], "usage");
    // A valid URI too long for a QR code: 256-byte names, each byte percent-encoded.
    let name = "%21".repeat(256);
    let uri = format!("otpauth://totp/{name}:{name}?secret={KUF_SECRET}&issuer={name}");
    assert!(OtpAuth::parse(&uri).is_ok());
    assert_eq!(
        bad(&["qr", "--uri", &uri], "qr"),
        QrError::TooLong.to_string()
    );
}

// -------------------------------------------------------------------------------------------
// Help and bad input
// -------------------------------------------------------------------------------------------

#[test]
fn help_goes_to_stdout_and_no_arguments_to_stderr() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["code", "--help"],
        &["uri", "--help"],
    ] {
        let r = run(args);
        assert_eq!((r.status, r.stderr.as_str()), (0, ""), "{args:?}");
        assert!(r.stdout.contains("otptool code"), "{args:?}");
    }
    let r = run::<&str>(&[]);
    assert_eq!((r.status, r.stdout.as_str()), (2, ""));
    assert!(r.stderr.contains("otptool code"));
}

#[test]
fn bad_input_is_exit_2_with_a_json_error_of_the_right_kind() {
    let secret = ["--secret", KUF_SECRET];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = vec!["code"];
        v.extend_from_slice(&secret);
        v.extend_from_slice(extra);
        v
    };
    // Structure: usage.
    for args in [
        vec!["frobnicate"],
        vec!["uri"],
        vec!["uri", "frob"],
        vec!["code"],
        vec!["code", "--time", "59"],
        vec!["code", "--secret"],
        vec!["code", "--secret", "--time", "59"],
        vec!["code", "--secret", KUF_SECRET, "--uri", KUF_URI],
        vec!["code", "--secret", KUF_SECRET, "--secret-hex", "00"],
        with(&["--frob", "1"]),
        with(&["-x"]),
        with(&["--window", "1"]),
        with(&["--time", "59", "--time", "60"]),
        with(&["extra"]),
        vec!["uri", "parse"],
        vec!["uri", "parse", KUF_URI, KUF_URI],
        vec!["uri", "parse", "--secret", KUF_SECRET],
    ] {
        bad(&args, "usage");
    }
    // Values: param.
    let cases: [(Vec<&str>, Option<String>); 10] = [
        (with(&["--digits", "x"]), None),
        (with(&["--digits", "-6"]), None),
        (with(&["--digits", "99999999999999999999999"]), None),
        (
            with(&["--digits", "9"]),
            Some(Digits::new(9).unwrap_err().to_string()),
        ),
        (
            with(&["--digits", "5"]),
            Some(ParamError::Digits(5).to_string()),
        ),
        (
            with(&["--period", "0"]),
            Some(Period::new(0).unwrap_err().to_string()),
        ),
        (
            with(&["--period", "3601"]),
            Some(Period::new(3601).unwrap_err().to_string()),
        ),
        (
            with(&["--algorithm", "MD5"]),
            Some(ParamError::Algorithm.to_string()),
        ),
        (with(&["--t0", "18446744073709551616"]), None),
        (with(&["--t0", ""]), None),
    ];
    for (args, message) in cases {
        let got = bad(&args, "param");
        if let Some(m) = message {
            assert_eq!(got, m, "{args:?}");
        }
    }
    let v = ["verify", "--secret", KUF_SECRET, "--time", "59"];
    let verify_with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut a = v.to_vec();
        a.extend_from_slice(extra);
        a.push("123456");
        a
    };
    assert_eq!(
        bad(&verify_with(&["--window", "11"]), "param"),
        Window::symmetric(11).unwrap_err().to_string()
    );
    bad(&verify_with(&["--window", "99999999999"]), "param");
    bad(&verify_with(&["--last-step", "x"]), "param");
    // Time.
    bad(&with(&["--time", "abc"]), "time");
    bad(&with(&["--time", "-5"]), "time");
    bad(&with(&["--time", "18446744073709551616"]), "time");
    let message = bad(&with(&["--t0", "100", "--time", "99"]), "time");
    assert!(message.contains("T0"), "{message}");
    bad(&verify_with(&["--t0", "100"]), "time");
}

#[test]
fn bad_secrets_and_uris_never_echo_the_secret() {
    // (option, value, expected library message)
    let secret_cases = [
        (
            "--secret",
            "JBSWY3DP1HPK3PXP",
            Secret::from_base32("JBSWY3DP1HPK3PXP"),
        ),
        ("--secret", "JBSWY3DP", Secret::from_base32("JBSWY3DP")),
        ("--secret", "", Secret::from_base32("")),
        ("--secret", " - ", Secret::from_base32(" - ")),
        (
            "--secret-hex",
            "48656c6c6f21deadbeeg",
            Secret::from_hex("48656c6c6f21deadbeeg"),
        ),
        (
            "--secret-hex",
            "48656c6c6f21deadbee",
            Secret::from_hex("48656c6c6f21deadbee"),
        ),
        ("--secret-hex", "48656c6c6f", Secret::from_hex("48656c6c6f")),
    ];
    for (option, value, expected) in secret_cases {
        let expected = expected.unwrap_err().to_string();
        for command in ["code", "verify"] {
            let mut args = vec![command, option, value, "--time", "59"];
            if command == "verify" {
                args.push("123456");
            }
            let message = bad(&args, "secret");
            assert_eq!(message, expected, "{args:?}");
            if value.len() >= 8 {
                assert!(!message.contains(&value[..8]), "{message}");
            }
        }
        let message = bad(
            &["uri", "build", "--account", "bob", option, value],
            "secret",
        );
        assert_eq!(message, expected);
    }
    // The secret in a URI: the URI's error, without the secret.
    for uri in [
        "otpauth://totp/x?secret=JBSWY3DP!EHPK3PXP",
        "otpauth://totp/x?secret=JBSWY3DP",
        "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&secret=GEZDGNBVGY3TQOJQ",
        "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=12",
        "otpauth://totp/?secret=JBSWY3DPEHPK3PXP",
        "otpauth://totp/x%ZZ?secret=JBSWY3DPEHPK3PXP",
        "otpauth://motp/x?secret=JBSWY3DPEHPK3PXP",
        "https://example.com/?secret=JBSWY3DPEHPK3PXP",
        "otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP",
        "otpauth://totp/x",
    ] {
        let expected = OtpAuth::parse(uri).unwrap_err().to_string();
        for args in [
            vec!["uri", "parse", uri],
            vec!["code", "--uri", uri],
            vec!["verify", "--uri", uri, "123456"],
            vec!["qr", "--uri", uri],
        ] {
            let r = run(&args);
            assert!(!r.stderr.contains("JBSWY3DP"), "{args:?}: {}", r.stderr);
            assert!(!r.stderr.contains("GEZDGNBV"), "{args:?}: {}", r.stderr);
            assert_eq!(bad(&args, "uri"), expected, "{args:?}");
        }
    }
    // A secret typed in the wrong place (misspelled option, stray argument) is not echoed.
    for args in [
        vec!["code", "--secert", KUF_SECRET],
        vec!["code", "--secert=JBSWY3DPEHPK3PXP"],
        vec!["code", "--JBSWY3DPEHPK3PXP"],
        vec!["code", "-JBSWY3DPEHPK3PXP"],
        vec!["code", "--secret", KUF_SECRET, KUF_SECRET],
        vec!["uri", "parse", KUF_URI, KUF_SECRET],
        vec![KUF_SECRET],
        vec!["uri", KUF_SECRET],
        vec![
            "verify", "--secret", KUF_SECRET, "--time", "59", "12345", KUF_SECRET,
        ],
    ] {
        let r = run(&args);
        assert!(!r.stderr.contains("JBSWY3DP"), "{args:?}: {}", r.stderr);
        bad(&args, "usage");
    }
}

#[cfg(unix)]
#[test]
fn non_utf8_arguments_are_bad_input() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let r = run(&[
        OsStr::new("code"),
        OsStr::new("--secret"),
        OsStr::from_bytes(b"JBSW\xffY3DPEHPK3PXP"),
    ]);
    assert_eq!((r.status, r.stdout.as_str()), (2, ""));
    assert_eq!(parse_error_line(&r.stderr).unwrap().0, "usage");
    assert!(!r.stderr.contains("JBSW"));
}

/// Hostile and random input: always exit 0, 1 or 2, never a panic, and every failure is a
/// well-formed error line.
#[test]
fn never_panics_on_odd_input() {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let pieces = [
        "code",
        "verify",
        "uri",
        "parse",
        "build",
        "qr",
        "--secret",
        "--secret-hex",
        "--uri",
        "--algorithm",
        "--digits",
        "--period",
        "--t0",
        "--time",
        "--window",
        "--last-step",
        "--account",
        "--issuer",
        "--format",
        "--",
        "-",
        "=",
        "--=",
        "--secret=",
        "svg",
        "text",
        KUF_SECRET,
        KUF_URI,
        RFC_SHA1_HEX,
        "0",
        "6",
        "8",
        "9",
        "30",
        "18446744073709551615",
        "18446744073709551616",
        "123456",
        "12345678",
        "SHA512",
        "",
        " ",
        "\u{1}",
        "\n",
        "é",
        "%",
        "otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP&counter=18446744073709551615",
        "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&period=3600&digits=8",
    ];
    let long = "9".repeat(100_000);
    for _ in 0..300 {
        let n = (next() % 7) as usize;
        let mut args: Vec<&str> = (0..n)
            .map(|_| pieces[(next() % pieces.len() as u64) as usize])
            .collect();
        if next() % 20 == 0 {
            args.push(&long);
        }
        let r = run(&args);
        match r.status {
            0 | 1 => assert_eq!(r.stderr, "", "{args:?}"),
            2 if args.is_empty() => {}
            2 => assert!(
                parse_error_line(&r.stderr).is_some(),
                "{args:?}: {}",
                r.stderr
            ),
            s => panic!("{args:?}: exit {s}: {}", r.stderr),
        }
    }
    // Extremes that must work.
    let uri = "otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP&counter=18446744073709551615";
    let code = ok(&["code", "--uri", uri]);
    let r = run(&["verify", "--uri", uri, "--window", "10", code.trim_end()]);
    assert_accepted(&r, u64::MAX);
    ok(&[
        "code",
        "--secret",
        KUF_SECRET,
        "--time",
        "18446744073709551615",
        "--period",
        "1",
    ]);
    let r = run(&[
        "verify",
        "--secret",
        KUF_SECRET,
        "--time",
        "0",
        "--window",
        "10",
        "--last-step",
        "18446744073709551615",
        "123456",
    ]);
    assert!(r.status == 1, "{}", r.stdout);
}

// -------------------------------------------------------------------------------------------
// oathtool
// -------------------------------------------------------------------------------------------

fn oathtool_available() -> bool {
    Command::new("oathtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn oathtool(args: &[&str]) -> String {
    let out = Command::new("oathtool")
        .args(args)
        .output()
        .expect("oathtool runs");
    assert!(out.status.success(), "oathtool {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("oathtool prints UTF-8")
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("OS random numbers");
    u64::from_le_bytes(b)
}

/// Cross-checks `code` against Debian's oathtool for random keys, parameters and times
/// (skipped when oathtool is not installed; tests/cross_check.rs covers it at scale).
#[test]
fn code_agrees_with_oathtool() {
    if !oathtool_available() {
        return;
    }
    let algorithms = ["SHA1", "SHA256", "SHA512"];
    for _ in 0..12 {
        let len = 10 + (random_u64() % 55) as usize;
        let mut key = vec![0u8; len];
        getrandom::fill(&mut key).expect("OS random numbers");
        let secret = Secret::from_bytes(&key).unwrap();
        let key_hex = hex(&key);
        let key_b32 = secret.to_base32();
        let algorithm = algorithms[(random_u64() % 3) as usize];
        let digits = (6 + random_u64() % 3).to_string();
        let period = (1 + random_u64() % 120).to_string();
        let t0 = (random_u64() % 1000).to_string();
        let time = (1000 + random_u64() % 4_000_000_000).to_string();
        let ours_hex = ok(&[
            "code",
            "--secret-hex",
            &key_hex,
            "--algorithm",
            algorithm,
            "--digits",
            &digits,
            "--period",
            &period,
            "--t0",
            &t0,
            "--time",
            &time,
        ]);
        let ours_b32 = ok(&[
            "code",
            "--secret",
            &key_b32,
            "--algorithm",
            algorithm,
            "--digits",
            &digits,
            "--period",
            &period,
            "--t0",
            &t0,
            "--time",
            &time,
        ]);
        let theirs = oathtool(&[
            &format!("--totp={algorithm}"),
            "-d",
            &digits,
            "-s",
            &format!("{period}s"),
            "-S",
            &format!("@{t0}"),
            "-N",
            &format!("@{time}"),
            &key_hex,
        ]);
        let context = format!("{algorithm} {digits} digits, period {period}, T0 {t0}, time {time}");
        assert_eq!(ours_hex, theirs, "{context}");
        assert_eq!(ours_b32, theirs, "{context}");
        // HOTP through a URI.
        let counter = (random_u64() % 1_000_000).to_string();
        let uri = format!(
            "otpauth://hotp/x?secret={}&counter={counter}&digits={digits}",
            &*key_b32
        );
        let theirs = oathtool(&["-c", &counter, "-d", &digits, &key_hex]);
        assert_eq!(
            ok(&["code", "--uri", &uri]),
            theirs,
            "hotp counter {counter}"
        );
    }
}

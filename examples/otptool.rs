//! `otptool`: one-time codes, `otpauth://` URIs and QR codes from the command line, built on
//! `totp-mfa`. Meant for scripts and for checking an integration by hand.
//!
//! Run it with `cargo run --example otptool -- <command> ...`; the binary lands in
//! `target/<profile>/examples/otptool`.
//!
//! # Commands
//!
//! ```text
//! otptool code   (--secret B32 | --secret-hex HEX | --uri URI)
//!                [--algorithm SHA1|SHA256|SHA512] [--digits N] [--period S] [--t0 S] [--time UNIX]
//! otptool verify (--secret B32 | --secret-hex HEX | --uri URI)
//!                [--algorithm ..] [--digits N] [--period S] [--t0 S] [--time UNIX]
//!                [--window N] [--last-step N] CODE
//! otptool uri parse URI
//! otptool uri build --account NAME [--issuer NAME] (--secret B32 | --secret-hex HEX)
//!                [--algorithm ..] [--digits N] [--period S]
//! otptool qr --uri URI [--format text|svg]
//! otptool --help
//! ```
//!
//! * `code` prints the code and a newline. The time is `--time` (Unix seconds) or the system
//!   clock. With `--uri` the parameters come from the URI, and explicit options override
//!   them; for an `hotp` URI the code for its counter is printed (`--period`, `--t0` and
//!   `--time` do not apply to HOTP and are refused).
//! * `verify` checks `CODE` (white space inside it is ignored) against `--window N` steps
//!   back and ahead (default 1, at most 10). It prints one JSON line and exits 0 when the
//!   code is accepted, `{"accepted":true,"time_step":N}`, or exits 1 when it is refused,
//!   `{"accepted":false,"reason":"replayed"}` (it matches a step `<= --last-step`) or
//!   `{"accepted":false,"reason":"no_match"}`. For an `hotp` URI the window looks ahead
//!   only, from the URI's counter, and `time_step` is the matching counter.
//! * `uri parse` prints one JSON object: `type` (`"totp"` or `"hotp"`), `issuer`,
//!   `label_issuer`, `account`, `secret` (canonical base32), `secret_hex`, `algorithm`
//!   (e.g. `"SHA1"`), `digits`, `period` (`null` for hotp) and `counter` (`null` for
//!   totp). `algorithm`, `digits` and `period` are the effective values (the Key Uri Format
//!   defaults when the URI omits them); an absent issuer is `null`.
//! * `uri build` prints the Key Uri Format URI of a TOTP credential.
//! * `qr` prints the QR code of the (canonicalized) URI, as Unicode text for a terminal
//!   (default) or as an SVG document.
//!
//! Every option also accepts the `--name=value` form, and `--` ends the options.
//!
//! # Exit status and errors
//!
//! `0` success; `1` code refused by `verify`; `2` bad input. On bad input nothing goes to
//! stdout and stderr gets one JSON line `{"error":"KIND","message":"..."}`, where `KIND` is
//! one of `usage` (unknown command or option, missing or repeated option or argument),
//! `param` (a bad number, algorithm, digit count, period, window or format), `secret`,
//! `uri`, `code` (a malformed code: not digits, or the wrong number of them), `time` (a
//! bad `--time`, a time before `T0`, or a system clock before 1970), `qr` or `io`. Messages
//! never contain a secret, nor any argument the tool did not recognize (it could be a
//! mistyped secret): they name positions instead.
//!
//! Secrets given on a command line are visible to other users through the process list and
//! end up in shell history: use this tool with test secrets or on a single-user machine.
//!
//! # Examples
//!
//! ```text
//! $ otptool code --secret-hex 3132333435363738393031323334353637383930 --digits 8 --time 59
//! 94287082
//! $ otptool verify --secret JBSWY3DPEHPK3PXP --time 1111111109 --last-step 37037035 "$CODE"
//! {"accepted":true,"time_step":37037036}
//! $ otptool uri build --issuer Example --account alice@google.com --secret JBSWY3DPEHPK3PXP
//! otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example
//! $ otptool uri parse 'otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example'
//! {"type":"totp","issuer":"Example","label_issuer":"Example","account":"alice@google.com","secret":"JBSWY3DPEHPK3PXP","secret_hex":"48656c6c6f21deadbeef","algorithm":"SHA1","digits":6,"period":30,"counter":null}
//! $ otptool qr --uri 'otpauth://totp/Example:alice?secret=JBSWY3DPEHPK3PXP' --format svg > qr.svg
//! $ otptool code --secret 'JBSW!'
//! {"error":"secret","message":"the key has a character that is not base32 (A-Z, 2-7) at position 5; check for typos"}
//! ```

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use totp_mfa::otp::{
    Algorithm, Code, Digits, Hotp, Period, Totp, TotpParams, Verification, Window,
};
use totp_mfa::{OtpAuth, OtpKind, Secret};
use zeroize::Zeroizing;

const USAGE: &str = "\
otptool: RFC 6238 TOTP / RFC 4226 HOTP codes, otpauth:// URIs and QR codes

USAGE:
  otptool code   (--secret B32 | --secret-hex HEX | --uri URI)
                 [--algorithm SHA1|SHA256|SHA512] [--digits N] [--period S] [--t0 S]
                 [--time UNIX]
  otptool verify (--secret B32 | --secret-hex HEX | --uri URI)
                 [--algorithm ALG] [--digits N] [--period S] [--t0 S] [--time UNIX]
                 [--window N] [--last-step N] CODE
  otptool uri parse URI
  otptool uri build --account NAME [--issuer NAME] (--secret B32 | --secret-hex HEX)
                 [--algorithm ALG] [--digits N] [--period S]
  otptool qr --uri URI [--format text|svg]
  otptool --help

COMMANDS:
  code        Print the code for --time (Unix seconds; default: the system clock), or for
              the counter of an hotp URI. With --uri, explicit options override the URI.
  verify      Check CODE within --window N steps back and ahead (default 1, max 10).
              Accepted: exit 0, {\"accepted\":true,\"time_step\":N}
              Refused:  exit 1, {\"accepted\":false,\"reason\":\"replayed\"|\"no_match\"}
              (replayed: CODE matches a step <= --last-step).
  uri parse   Print the URI's contents as one JSON object.
  uri build   Print the otpauth:// URI of a TOTP credential.
  qr          Print the QR code of the URI (default: text for a terminal).

Options also take the form --name=value; -- ends the options.

EXIT STATUS:
  0 success, 1 code refused (verify), 2 bad input: stderr then holds one JSON line
  {\"error\":\"KIND\",\"message\":\"...\"}, KIND one of usage, param, secret, uri, code,
  time, qr, io.
";

/// Why the tool stops without doing its job.
enum Failure {
    /// `--help`: usage on stdout, exit 0.
    Help,
    /// Bad input: a JSON line on stderr, exit 2.
    Bad { kind: &'static str, message: String },
}

impl Failure {
    fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Failure::Bad {
            kind,
            message: message.into(),
        }
    }

    fn usage(message: impl Into<String>) -> Self {
        Self::new("usage", message)
    }
}

/// What a successful command prints, and its exit status (verify refusals exit 1).
struct Output {
    text: Zeroizing<String>,
    status: u8,
}

impl Output {
    fn ok(text: Zeroizing<String>) -> Self {
        Output { text, status: 0 }
    }
}

fn main() -> ExitCode {
    let raw: Vec<OsString> = std::env::args_os().skip(1).collect();
    if raw.is_empty() {
        let _ = std::io::stderr().write_all(USAGE.as_bytes());
        return ExitCode::from(2);
    }
    match to_utf8(raw).and_then(|args| run(&args)) {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(out.text.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => ExitCode::from(out.status),
                Err(e) => {
                    report(&Failure::new("io", format!("cannot write the output: {e}")));
                    ExitCode::from(2)
                }
            }
        }
        Err(Failure::Help) => {
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(USAGE.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::from(2),
            }
        }
        Err(failure) => {
            report(&failure);
            ExitCode::from(2)
        }
    }
}

/// Writes the JSON error line to stderr (best effort: there is nowhere else to complain).
fn report(failure: &Failure) {
    if let Failure::Bad { kind, message } = failure {
        let mut line = String::with_capacity(64 + message.len());
        line.push_str("{\"error\":");
        push_json_str(&mut line, kind);
        line.push_str(",\"message\":");
        push_json_str(&mut line, message);
        line.push_str("}\n");
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

/// The arguments as UTF-8, in a buffer that is wiped on exit (they may hold a secret).
fn to_utf8(raw: Vec<OsString>) -> Result<Zeroizing<Vec<String>>, Failure> {
    let mut args = Zeroizing::new(Vec::with_capacity(raw.len()));
    for (i, arg) in raw.into_iter().enumerate() {
        match arg.into_string() {
            Ok(s) => args.push(s),
            Err(_) => {
                return Err(Failure::usage(format!(
                    "argument {} is not valid UTF-8",
                    i + 1
                )));
            }
        }
    }
    Ok(args)
}

fn run(args: &[String]) -> Result<Output, Failure> {
    let Some(command) = args.first() else {
        return Err(Failure::Help);
    };
    let rest = &args[1..];
    match command.as_str() {
        "--help" | "-h" => Err(Failure::Help),
        "code" => cmd_code(&Args::parse(rest, 2, CODE_OPTIONS)?),
        "verify" => cmd_verify(&Args::parse(rest, 2, VERIFY_OPTIONS)?),
        "qr" => cmd_qr(&Args::parse(rest, 2, QR_OPTIONS)?),
        "uri" => match rest.first().map(String::as_str) {
            Some("parse") => cmd_uri_parse(&Args::parse(&rest[1..], 3, &[])?),
            Some("build") => cmd_uri_build(&Args::parse(&rest[1..], 3, URI_BUILD_OPTIONS)?),
            Some("--help" | "-h") => Err(Failure::Help),
            Some(_) => Err(Failure::usage(
                "unknown uri subcommand (expected parse or build)",
            )),
            None => Err(Failure::usage("missing uri subcommand (parse or build)")),
        },
        _ => Err(Failure::usage(
            "unknown command (expected code, verify, uri or qr); see otptool --help",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Argument parsing
// ---------------------------------------------------------------------------------------------

const SOURCE_OPTIONS: [&str; 3] = ["secret", "secret-hex", "uri"];
const CODE_OPTIONS: &[&str] = &[
    "secret",
    "secret-hex",
    "uri",
    "algorithm",
    "digits",
    "period",
    "t0",
    "time",
];
const VERIFY_OPTIONS: &[&str] = &[
    "secret",
    "secret-hex",
    "uri",
    "algorithm",
    "digits",
    "period",
    "t0",
    "time",
    "window",
    "last-step",
];
const URI_BUILD_OPTIONS: &[&str] = &[
    "account",
    "issuer",
    "secret",
    "secret-hex",
    "algorithm",
    "digits",
    "period",
];
const QR_OPTIONS: &[&str] = &["uri", "format"];

/// The options (all of which take a value) and positional arguments of one command.
struct Args<'a> {
    options: Vec<(&'static str, &'a str)>,
    positionals: Vec<&'a str>,
    /// 1-based position on the command line of `positionals[0]`'s slot, for messages.
    positional_at: Vec<usize>,
}

impl<'a> Args<'a> {
    /// Parses `args`, the first of which is argument number `first` on the command line.
    ///
    /// Error messages quote only option names that are in `allowed`: anything else could be
    /// a secret typed in the wrong place, so it is referred to by its position.
    fn parse(args: &'a [String], first: usize, allowed: &[&'static str]) -> Result<Self, Failure> {
        let mut parsed = Args {
            options: Vec::new(),
            positionals: Vec::new(),
            positional_at: Vec::new(),
        };
        let mut i = 0;
        let mut options_ended = false;
        while i < args.len() {
            let arg = args[i].as_str();
            let position = first + i;
            i += 1;
            if options_ended || arg == "-" || !arg.starts_with('-') {
                parsed.positionals.push(arg);
                parsed.positional_at.push(position);
                continue;
            }
            if arg == "--" {
                options_ended = true;
                continue;
            }
            if arg == "--help" || arg == "-h" {
                return Err(Failure::Help);
            }
            let Some(body) = arg.strip_prefix("--") else {
                return Err(Failure::usage(format!(
                    "unknown option at argument {position}; see otptool --help"
                )));
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&name) = allowed.iter().find(|a| **a == name) else {
                return Err(Failure::usage(format!(
                    "unknown option at argument {position}; see otptool --help"
                )));
            };
            let value = match inline {
                Some(v) => v,
                None => match args.get(i) {
                    Some(v) if !v.starts_with("--") => {
                        i += 1;
                        v.as_str()
                    }
                    _ => return Err(Failure::usage(format!("option --{name} needs a value"))),
                },
            };
            if parsed.options.iter().any(|(n, _)| *n == name) {
                return Err(Failure::usage(format!(
                    "option --{name} is given more than once"
                )));
            }
            parsed.options.push((name, value));
        }
        Ok(parsed)
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        self.options
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Exactly `names.len()` positional arguments.
    fn positionals(&self, names: &[&str]) -> Result<Vec<&'a str>, Failure> {
        if let Some(missing) = names.get(self.positionals.len()) {
            return Err(Failure::usage(format!("missing argument {missing}")));
        }
        if let Some(at) = self.positional_at.get(names.len()) {
            return Err(Failure::usage(format!(
                "unexpected argument at position {at}; see otptool --help"
            )));
        }
        Ok(self.positionals.clone())
    }
}

/// A non-negative decimal integer (surrounding white space allowed).
fn parse_u64(value: &str, option: &str, kind: &'static str) -> Result<u64, Failure> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Failure::new(
            kind,
            format!("--{option}: not a number (expected a non-negative decimal integer)"),
        ));
    }
    v.parse::<u64>()
        .map_err(|_| Failure::new(kind, format!("--{option}: the number is too large")))
}

fn parse_u32(value: &str, option: &str) -> Result<u32, Failure> {
    u32::try_from(parse_u64(value, option, "param")?)
        .map_err(|_| Failure::new("param", format!("--{option}: the number is too large")))
}

fn param_error(e: impl std::fmt::Display) -> Failure {
    Failure::new("param", e.to_string())
}

/// `--algorithm`, `--digits`, `--period` and `--t0` applied over `params`.
fn apply_params(args: &Args<'_>, mut params: TotpParams) -> Result<TotpParams, Failure> {
    if let Some(v) = args.get("algorithm") {
        params = params.with_algorithm(v.parse::<Algorithm>().map_err(param_error)?);
    }
    if let Some(v) = args.get("digits") {
        params = params.with_digits(Digits::new(parse_u32(v, "digits")?).map_err(param_error)?);
    }
    if let Some(v) = args.get("period") {
        let seconds = parse_u64(v, "period", "param")?;
        params = params.with_period(Period::new(seconds).map_err(param_error)?);
    }
    if let Some(v) = args.get("t0") {
        params = params.with_t0(parse_u64(v, "t0", "param")?);
    }
    Ok(params)
}

/// The secret from `--secret` or `--secret-hex` (exactly one).
fn secret_option(args: &Args<'_>) -> Result<Secret, Failure> {
    let secret_error = |e: totp_mfa::SecretError| Failure::new("secret", e.to_string());
    match (args.get("secret"), args.get("secret-hex")) {
        (Some(b32), None) => Secret::from_base32(b32).map_err(secret_error),
        (None, Some(hex)) => Secret::from_hex(hex).map_err(secret_error),
        _ => Err(Failure::usage(
            "give exactly one of --secret or --secret-hex",
        )),
    }
}

fn parse_uri(text: &str) -> Result<OtpAuth, Failure> {
    OtpAuth::parse(text).map_err(|e| Failure::new("uri", e.to_string()))
}

/// What `code` and `verify` compute with.
struct Credential {
    secret: Secret,
    kind: OtpKind,
    params: TotpParams,
}

/// The credential of `--secret`, `--secret-hex` or `--uri`, with the options applied.
fn credential(args: &Args<'_>) -> Result<Credential, Failure> {
    let sources = SOURCE_OPTIONS.iter().filter(|s| args.has(s)).count();
    if sources != 1 {
        return Err(Failure::usage(
            "give exactly one of --secret, --secret-hex or --uri",
        ));
    }
    let (secret, kind, params) = match args.get("uri") {
        Some(text) => {
            let auth = parse_uri(text)?;
            (auth.secret().clone(), auth.kind(), auth.totp_params())
        }
        None => (secret_option(args)?, OtpKind::Totp, TotpParams::default()),
    };
    if matches!(kind, OtpKind::Hotp { .. }) {
        if let Some(name) = ["period", "t0", "time"].into_iter().find(|n| args.has(n)) {
            return Err(Failure::usage(format!(
                "--{name} does not apply to an hotp URI"
            )));
        }
    }
    let params = apply_params(args, params)?;
    Ok(Credential {
        secret,
        kind,
        params,
    })
}

/// `--time`, or the system clock.
fn now(args: &Args<'_>) -> Result<u64, Failure> {
    match args.get("time") {
        Some(v) => parse_u64(v, "time", "time"),
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .map_err(|_| {
                Failure::new(
                    "time",
                    "the system clock is set before 1970-01-01 (the Unix epoch)",
                )
            }),
    }
}

fn otp_error(e: totp_mfa::otp::OtpError) -> Failure {
    let kind = match e {
        totp_mfa::otp::OtpError::BeforeT0 { .. } => "time",
        _ => "secret",
    };
    Failure::new(kind, e.to_string())
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

fn cmd_code(args: &Args<'_>) -> Result<Output, Failure> {
    args.positionals(&[])?;
    let cred = credential(args)?;
    let code = match cred.kind {
        OtpKind::Hotp { counter } => {
            Hotp::new(&cred.secret, cred.params.algorithm(), cred.params.digits())
                .map_err(otp_error)?
                .generate(counter)
        }
        OtpKind::Totp => {
            let now = now(args)?;
            Totp::new(&cred.secret, cred.params)
                .map_err(otp_error)?
                .generate(now)
                .map_err(otp_error)?
        }
    };
    let mut text = Zeroizing::new(String::with_capacity(code.len() + 1));
    text.push_str(code.as_str());
    text.push('\n');
    Ok(Output::ok(text))
}

fn cmd_verify(args: &Args<'_>) -> Result<Output, Failure> {
    let [typed] = args.positionals(&["CODE"])?[..] else {
        return Err(Failure::usage("missing argument CODE"));
    };
    let cred = credential(args)?;
    let window = match args.get("window") {
        Some(v) => Window::symmetric(parse_u32(v, "window")?).map_err(param_error)?,
        None => Window::default(),
    };
    let last_step = args
        .get("last-step")
        .map(|v| parse_u64(v, "last-step", "param"))
        .transpose()?;
    let code = Code::parse(typed, cred.params.digits())
        .map_err(|e| Failure::new("code", e.to_string()))?;
    let verification = match cred.kind {
        OtpKind::Hotp { counter } => {
            let hotp = Hotp::new(&cred.secret, cred.params.algorithm(), cred.params.digits())
                .map_err(otp_error)?;
            verify_hotp(&hotp, &code, counter, window.ahead(), last_step)
        }
        OtpKind::Totp => {
            let now = now(args)?;
            Totp::new(&cred.secret, cred.params)
                .map_err(otp_error)?
                .verify(&code, now, window, last_step)
                .map_err(otp_error)?
        }
    };
    let (text, status) = match verification {
        Verification::Accepted { time_step } => (
            format!("{{\"accepted\":true,\"time_step\":{time_step}}}\n"),
            0,
        ),
        Verification::Replayed { .. } => (
            "{\"accepted\":false,\"reason\":\"replayed\"}\n".to_owned(),
            1,
        ),
        Verification::Rejected => (
            "{\"accepted\":false,\"reason\":\"no_match\"}\n".to_owned(),
            1,
        ),
    };
    Ok(Output {
        text: Zeroizing::new(text),
        status,
    })
}

/// HOTP with replay protection: counters `counter ..= counter + ahead`; a match at a counter
/// `<= last_used` is a replay. Which sub-ranges are scanned depends only on public values;
/// each scan is [`Hotp::verify`]'s constant-time one.
fn verify_hotp(
    hotp: &Hotp,
    code: &Code,
    counter: u64,
    ahead: u32,
    last_used: Option<u64>,
) -> Verification {
    let end = counter.saturating_add(u64::from(ahead));
    let fresh_start = match last_used {
        None => Some(counter),
        Some(last) => last.checked_add(1).map(|s| s.max(counter)),
    };
    if let Some(start) = fresh_start.filter(|s| *s <= end) {
        let look_ahead = u32::try_from(end - start).unwrap_or(u32::MAX);
        if let Verification::Accepted { time_step } = hotp.verify(code, start, look_ahead) {
            return Verification::Accepted { time_step };
        }
    }
    if let Some(last) = last_used.filter(|l| *l >= counter) {
        let look_ahead = u32::try_from(last.min(end) - counter).unwrap_or(u32::MAX);
        if let Verification::Accepted { time_step } = hotp.verify(code, counter, look_ahead) {
            return Verification::Replayed { time_step };
        }
    }
    Verification::Rejected
}

fn cmd_uri_parse(args: &Args<'_>) -> Result<Output, Failure> {
    let [text] = args.positionals(&["URI"])?[..] else {
        return Err(Failure::usage("missing argument URI"));
    };
    let auth = parse_uri(text)?;
    let params = auth.totp_params();
    let (kind, period, counter) = match auth.kind() {
        OtpKind::Totp => ("totp", Some(params.period().seconds()), None),
        OtpKind::Hotp { counter } => ("hotp", None, Some(counter)),
    };
    let mut out = Zeroizing::new(String::with_capacity(256));
    out.push('{');
    json_field_str(&mut out, "type", Some(kind));
    out.push(',');
    json_field_str(&mut out, "issuer", auth.issuer());
    out.push(',');
    json_field_str(&mut out, "label_issuer", auth.label_issuer());
    out.push(',');
    json_field_str(&mut out, "account", Some(auth.account()));
    out.push(',');
    json_field_str(&mut out, "secret", Some(&auth.secret().to_base32()));
    out.push(',');
    json_field_str(&mut out, "secret_hex", Some(&auth.secret().to_hex()));
    out.push(',');
    json_field_str(&mut out, "algorithm", Some(params.algorithm().name()));
    out.push(',');
    json_field_num(&mut out, "digits", Some(u64::from(params.digits().get())));
    out.push(',');
    json_field_num(&mut out, "period", period);
    out.push(',');
    json_field_num(&mut out, "counter", counter);
    out.push_str("}\n");
    Ok(Output::ok(out))
}

fn cmd_uri_build(args: &Args<'_>) -> Result<Output, Failure> {
    args.positionals(&[])?;
    let account = args
        .get("account")
        .ok_or_else(|| Failure::usage("option --account is required"))?;
    let secret = secret_option(args)?;
    let params = apply_params(args, TotpParams::default())?;
    let auth = OtpAuth::totp(args.get("issuer"), account, secret, params)
        .map_err(|e| Failure::new("uri", e.to_string()))?;
    let uri = auth.to_uri();
    let mut text = Zeroizing::new(String::with_capacity(uri.as_str().len() + 1));
    text.push_str(uri.as_str());
    text.push('\n');
    Ok(Output::ok(text))
}

fn cmd_qr(args: &Args<'_>) -> Result<Output, Failure> {
    args.positionals(&[])?;
    let text = args
        .get("uri")
        .ok_or_else(|| Failure::usage("option --uri is required"))?;
    let svg = match args.get("format").unwrap_or("text") {
        "text" => false,
        "svg" => true,
        _ => {
            return Err(Failure::new("param", "--format: expected text or svg"));
        }
    };
    let uri = parse_uri(text)?.to_uri();
    let qr_error = |e: totp_mfa::QrError| Failure::new("qr", e.to_string());
    let mut image = if svg {
        uri.to_svg().map_err(qr_error)?
    } else {
        uri.to_terminal(totp_mfa::TerminalBackground::Dark)
            .map_err(qr_error)?
    };
    if !image.ends_with('\n') {
        image.push('\n');
    }
    Ok(Output::ok(image))
}

// ---------------------------------------------------------------------------------------------
// JSON (RFC 8259)
// ---------------------------------------------------------------------------------------------

/// Appends `s` as a JSON string: `"` and `\` escaped, control characters as `\u00XX`.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_field_str(out: &mut String, name: &str, value: Option<&str>) {
    push_json_str(out, name);
    out.push(':');
    match value {
        Some(v) => push_json_str(out, v),
        None => out.push_str("null"),
    }
}

fn json_field_num(out: &mut String, name: &str, value: Option<u64>) {
    push_json_str(out, name);
    out.push(':');
    match value {
        Some(v) => {
            let _ = write!(out, "{v}");
        }
        None => out.push_str("null"),
    }
}

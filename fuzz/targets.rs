//! Fuzz target bodies, shared by the libFuzzer binaries in `fuzz_targets/` and by
//! `tests/fuzz_corpus.rs`, which replays the committed corpus under `cargo test`.
//!
//! Every target must never panic. Each also checks a property of its own.

#![allow(dead_code)]

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;

use totp_mfa::otp::{Code, Digits, Totp, Window, time_step};
use totp_mfa::testing::Authenticator;
use totp_mfa::{
    Error, LoginStart, ManualClock, MemoryStore, Mfa, OtpAuth, Policy, Reauth, RecoveryCode,
    SecondFactor, Secret, UserId,
};

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// `OtpAuth::parse` never panics; whatever parses re-serializes to a URI that means the same
/// (issuer, account, secret, parameters), and that canonical form is a fixed point.
pub fn uri_parse(data: &[u8]) {
    let input = text(data);
    if let Ok(parsed) = OtpAuth::parse(&input) {
        let uri = parsed.to_uri();
        let again = OtpAuth::parse(uri.as_str()).expect("a built URI parses");
        assert_eq!(again.issuer(), parsed.issuer(), "issuer");
        assert_eq!(again.account(), parsed.account(), "account");
        assert_eq!(again.secret(), parsed.secret(), "secret");
        assert_eq!(again.kind(), parsed.kind(), "kind");
        assert_eq!(again.totp_params(), parsed.totp_params(), "parameters");
        let canonical = OtpAuth::parse(again.to_uri().as_str()).expect("canonical URI parses");
        assert_eq!(canonical, again, "the canonical form is a fixed point");
        // Debug shows the secret only as its length (the names may contain any text, even
        // the secret's base32 by chance, so the secret's own rendering is what is checked).
        let shown = format!("{:?}", parsed.secret());
        assert!(
            !shown.contains(parsed.secret().to_base32().as_str()),
            "{shown}"
        );
        assert!(format!("{parsed:?}").contains(&shown));
    }
}

/// Base32 and hex secret decoding never panic; decoded secrets round-trip through base32.
pub fn base32_secret(data: &[u8]) {
    let input = text(data);
    if let Ok(secret) = Secret::from_base32(&input) {
        assert!(secret.len() >= Secret::MIN_IMPORT_BYTES && secret.len() <= Secret::MAX_BYTES);
        let again = Secret::from_base32(&secret.to_base32_grouped()).expect("own output parses");
        assert_eq!(again, secret);
    }
    if let Ok(secret) = Secret::from_hex(&input) {
        assert_eq!(
            Secret::from_hex(&secret.to_hex()).expect("own output parses"),
            secret
        );
    }
}

/// `Code::parse` never panics and yields exactly `digits` ASCII digits; verification of the
/// parsed code at a fuzzed time and window never panics.
pub fn code_input(data: &[u8]) {
    let (head, rest) = data.split_at(data.len().min(10));
    let mut h = [0u8; 10];
    h[..head.len()].copy_from_slice(head);
    let digits = Digits::new(6 + u32::from(h[0] % 3)).expect("6..=8");
    let now = u64::from_le_bytes([h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8]]);
    let window = Window::new(u32::from(h[9] % 11), u32::from(h[9] / 25 % 11)).expect("in range");
    let input = text(rest);
    if let Ok(code) = Code::parse(&input, digits) {
        assert_eq!(code.len(), digits.get() as usize);
        assert!(code.as_str().bytes().all(|b| b.is_ascii_digit()));
        let secret = Secret::from_bytes(b"12345678901234567890").expect("20 bytes");
        let params = totp_mfa::otp::TotpParams::default().with_digits(digits);
        let totp = Totp::new(&secret, params).expect("keyed");
        let _ = totp.verify(&code, now, window, None);
        let _ = totp.verify(&code, now, window, Some(now / 30));
    }
}

/// Recovery-code normalization never panics and is idempotent.
pub fn recovery_input(data: &[u8]) {
    let input = text(data);
    if let Ok(code) = RecoveryCode::parse(&input) {
        assert_eq!(code.as_str().len(), 19);
        let again = RecoveryCode::parse(code.as_str()).expect("own output parses");
        assert_eq!(again.as_str(), code.as_str());
    }
}

/// A deterministic generator for reproducible runs. Not secure: fuzzing only.
struct FuzzRng(u64);

impl rand_core::TryRng for FuzzRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.try_next_u64()? as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Ok(z ^ (z >> 31))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let v = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for FuzzRng {}

/// What the fuzzer knows, as an independent model of the rules.
#[derive(Default)]
struct Model {
    /// The phone of the pending enrollment, if any.
    pending: Option<Authenticator>,
    /// The phone of the active credential and the secret behind it.
    active: Option<(Totp, Authenticator)>,
    /// The last accepted time step of the active credential.
    last_step: u64,
    /// Every recovery code ever shown, and which are still unused.
    shown: Vec<String>,
    unused: HashSet<String>,
    tickets: Vec<String>,
    step_ups: Vec<String>,
}

impl Model {
    /// Which fresh step (if any) `code` matches: the latest step in the window after the
    /// last used one, as RFC 6238 section 5.2 requires.
    fn fresh_step(&self, code: &str, now: u64) -> Option<u64> {
        let (totp, _) = self.active.as_ref()?;
        let center = time_step(now, totp.params()).ok()?;
        let mut found = None;
        for step in center.saturating_sub(1)..=center.saturating_add(1) {
            if step > self.last_step && totp.generate_at_step(step).as_str() == code {
                found = Some(step);
            }
        }
        found
    }
}

/// Random sequences of events through the enrollment and login state machines. Never
/// panics, and never authorizes without a valid factor according to the model.
pub fn flow_sequence(data: &[u8]) {
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next();
    let seed = u64::from(next().unwrap_or(0)) << 8 | u64::from(next().unwrap_or(0));
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let policy = Policy::new("Fuzz")
        .with_recovery_hash_rounds(1_000)
        .with_recovery_codes(4);
    let Ok(mfa) = Mfa::new(MemoryStore::new(), policy) else {
        panic!("policy is valid")
    };
    let mfa = mfa.with_clock(clock.clone()).with_rng(FuzzRng(seed));
    let user = UserId::new("fuzz").expect("valid");
    let mut model = Model::default();
    let mut steps = 0;

    while let Some(op) = next() {
        steps += 1;
        if steps > 64 {
            break;
        }
        let arg = next().unwrap_or(0);
        let now = {
            use totp_mfa::Clock;
            clock.now().expect("manual clock")
        };
        match op % 14 {
            0 => clock.advance(u64::from(arg) * 7),
            1 => clock.set(now.saturating_sub(u64::from(arg))), // clocks go backwards too
            2 => match mfa.begin_enrollment(&user, "fuzz@example.com") {
                Ok(e) => {
                    assert!(model.active.is_none(), "begin succeeded while active");
                    model.pending =
                        Some(Authenticator::from_uri(e.uri().as_str()).expect("own URI"));
                }
                Err(Error::AlreadyEnabled) => assert!(model.active.is_some()),
                Err(e) => panic!("begin: {e:?}"),
            },
            3 | 4 => {
                // Confirm with the pending phone's code at an offset, or with noise.
                let code = match (&model.pending, op) {
                    (Some(phone), 3) => {
                        let offset = i64::from(arg % 5) - 2;
                        phone
                            .code_at(now.saturating_add_signed(offset * 30))
                            .unwrap_or_default()
                    }
                    _ => format!("{:06}", u32::from(arg) * 3_923),
                };
                if let Ok(codes) = mfa.confirm_enrollment(&user, &code) {
                    let phone = model.pending.take().expect("confirmed without pending");
                    assert!(model.active.is_none(), "confirmed twice");
                    // The model keeps its own copy of what the phone scanned.
                    let totp = phone.totp().clone();
                    model.last_step = confirmed_step(&totp, &code, now);
                    model.active = Some((totp, phone));
                    model.shown = codes.iter().map(|c| c.as_str().to_owned()).collect();
                    model.unused = model.shown.iter().cloned().collect();
                    model.tickets.clear();
                    model.step_ups.clear();
                }
            }
            5 => match mfa.start_login(&user) {
                Ok(LoginStart::Challenge(c)) => {
                    assert!(model.active.is_some(), "challenge without active MFA");
                    model.tickets.push(c.ticket().to_owned());
                }
                Ok(LoginStart::NoMfa) => assert!(model.active.is_none(), "NoMfa while active"),
                Err(e) => panic!("start_login: {e:?}"),
            },
            6..=9 => {
                let ticket = pick(&model.tickets, arg).unwrap_or_default();
                let (factor_text, is_recovery) = factor_for(&model, op, arg, now);
                let factor = if is_recovery {
                    SecondFactor::RecoveryCode(&factor_text)
                } else {
                    SecondFactor::Totp(&factor_text)
                };
                match mfa.complete_login(&user, &ticket, factor) {
                    Ok(auth) => {
                        assert!(model.tickets.contains(&ticket), "unknown ticket accepted");
                        consume(&mut model, &factor_text, is_recovery, now);
                        // A successful login spends every open ticket.
                        model.tickets.clear();
                        model.step_ups = vec![auth.step_up_token().to_owned()];
                        assert_eq!(auth.recovery_codes_left(), model.unused.len());
                    }
                    Err(e) => assert!(!matches!(e, Error::Storage(_) | Error::CorruptRecord(_))),
                }
            }
            10 | 11 => {
                let (factor_text, is_recovery) = factor_for(&model, 6 + arg % 4, arg, now);
                let step_up = pick(&model.step_ups, arg);
                let reauth = match (&step_up, arg % 3) {
                    (Some(token), 0) => Reauth::StepUp(token),
                    _ if is_recovery => Reauth::Factor(SecondFactor::RecoveryCode(&factor_text)),
                    _ => Reauth::Factor(SecondFactor::Totp(&factor_text)),
                };
                let used_step_up = matches!(reauth, Reauth::StepUp(_));
                let result = if op == 10 {
                    mfa.regenerate_recovery_codes(&user, reauth).map(Some)
                } else {
                    mfa.disable(&user, reauth).map(|()| None)
                };
                if let Ok(new_codes) = result {
                    if used_step_up {
                        assert!(model.step_ups.contains(step_up.as_ref().expect("token")));
                        model.step_ups.clear();
                    } else {
                        consume(&mut model, &factor_text, is_recovery, now);
                    }
                    match new_codes {
                        Some(codes) => {
                            model.shown = codes.iter().map(|c| c.as_str().to_owned()).collect();
                            model.unused = model.shown.iter().cloned().collect();
                        }
                        None => {
                            model.active = None;
                            model.pending = None;
                            model.unused.clear();
                            model.tickets.clear();
                            model.step_ups.clear();
                        }
                    }
                }
            }
            12 => {
                let _ = mfa.unlock(&user);
            }
            _ => {
                let _ = mfa.status(&user).expect("status reads");
            }
        }
    }
}

fn pick(items: &[String], arg: u8) -> Option<String> {
    (!items.is_empty()).then(|| items[usize::from(arg) % items.len()].clone())
}

/// A factor to present: the phone's code at an offset (6), noise (7), a shown recovery code
/// (8, used or not), or a mangled one (9).
fn factor_for(model: &Model, op: u8, arg: u8, now: u64) -> (String, bool) {
    match op {
        6 => match &model.active {
            Some((_, phone)) => {
                let offset = i64::from(arg % 5) - 2;
                (
                    phone
                        .code_at(now.saturating_add_signed(offset * 30))
                        .unwrap_or_default(),
                    false,
                )
            }
            None => ("123456".to_owned(), false),
        },
        7 => (format!("{:06}", u32::from(arg) * 3_911), false),
        8 => (
            pick(&model.shown, arg).unwrap_or_default().to_lowercase(),
            true,
        ),
        _ => (format!("{:A>16}", arg), true),
    }
}

/// Checks that an accepted factor was valid in the model, and spends it.
fn consume(model: &mut Model, text: &str, is_recovery: bool, now: u64) {
    if is_recovery {
        let canonical = RecoveryCode::parse(text).expect("accepted code parses");
        assert!(
            model.unused.remove(canonical.as_str()),
            "a recovery code that was not unused was accepted"
        );
    } else {
        let step = model
            .fresh_step(text, now)
            .expect("a TOTP code that was not fresh and valid was accepted");
        model.last_step = step;
    }
}

/// The step a confirmation code matched (the latest in the window).
fn confirmed_step(totp: &Totp, code: &str, now: u64) -> u64 {
    let center = time_step(now, totp.params()).unwrap_or(0);
    let mut found = 0;
    for step in center.saturating_sub(1)..=center.saturating_add(1) {
        if totp.generate_at_step(step).as_str() == code {
            found = step;
        }
    }
    found
}

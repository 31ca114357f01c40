//! Adversarial regression suite for totp-mfa: every attack of the security review, as a
//! reproducible test, ported from the reviewer's `attacks.rs` to the current API and record
//! format.
//!
//! Naming:
//! * `withstood_*`: an attack the crate resisted; asserts the safe behaviour.
//! * `fixed_*`: a finding of the review that has since been fixed; asserts the safe behaviour
//!   so the weakness cannot come back.
//! * `known_*`: current behaviour that is a deliberate trade-off or a documented gap; asserts
//!   what the crate does today (flip it when the behaviour is changed on purpose).
//!
//! Every assertion is deterministic: nothing here measures wall-clock time. SEC ids refer to
//! `SECURITY-REQUIREMENTS.md`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use getrandom::SysRng;
use rand_core::{TryCryptoRng, TryRng};
use totp_mfa::otp::{Code, Digits, Totp, TotpParams, Window};
use totp_mfa::testing::Authenticator;
use totp_mfa::{
    CasOutcome, Clock, Error, Factor, LoginStart, ManualClock, MemoryStore, Mfa, MfaStatus,
    OtpAuth, Policy, Reauth, RecoveryCodes, SecondFactor, Secret, Store, StoredRecord, Throttle,
    UserId,
};

// =========================================================================================
// Harness
// =========================================================================================

const T0: u64 = 1_800_000_000; // multiple of 30

type TestMfa = Mfa<Arc<MemoryStore>, Arc<ManualClock>>;

struct W {
    mfa: TestMfa,
    clock: Arc<ManualClock>,
    store: Arc<MemoryStore>,
}

fn fast_policy() -> Policy {
    Policy::new("Example").with_recovery_hash_rounds(1_000)
}

/// A policy where nothing is delayed and the lock is at NIST's ceiling: every guess is
/// evaluated, so races are about counting only.
fn no_delay_policy() -> Policy {
    fast_policy().with_throttle(Throttle {
        free_failures: 100,
        lock_after: 100,
        ..Throttle::default()
    })
}

fn world_with(policy: Policy) -> W {
    world_at(policy, T0)
}

fn world_at(policy: Policy, now: u64) -> W {
    let clock = Arc::new(ManualClock::new(now));
    let store = Arc::new(MemoryStore::new());
    let mfa = Mfa::new(store.clone(), policy)
        .unwrap()
        .with_clock(clock.clone());
    W { mfa, clock, store }
}

fn world() -> W {
    world_with(fast_policy())
}

fn uid(s: &str) -> UserId {
    UserId::new(s).unwrap()
}

struct Phone {
    totp: Totp,
    app: Authenticator,
    base32: String,
}

impl Phone {
    fn from_uri(uri: &str) -> Phone {
        let auth = OtpAuth::parse(uri).unwrap();
        Phone {
            totp: Totp::new(auth.secret(), auth.totp_params()).unwrap(),
            app: Authenticator::from_uri(uri).unwrap(),
            base32: auth.secret().to_base32().to_string(),
        }
    }
    fn at(&self, now: u64) -> String {
        self.app.code_at(now).unwrap()
    }
    fn step(&self, step: u64) -> String {
        self.totp.generate_at_step(step).as_str().to_owned()
    }
}

impl W {
    fn now(&self) -> u64 {
        self.clock.now().unwrap()
    }
    fn step(&self) -> u64 {
        self.now() / 30
    }
    fn enroll(&self, user: &UserId) -> (Phone, RecoveryCodes) {
        let e = self
            .mfa
            .begin_enrollment(user, "someone@example.com")
            .unwrap();
        let phone = Phone::from_uri(e.uri().as_str());
        let codes = self
            .mfa
            .confirm_enrollment(user, &phone.at(self.now()))
            .unwrap();
        (phone, codes)
    }
    fn ticket(&self, user: &UserId) -> String {
        match self.mfa.start_login(user).unwrap() {
            LoginStart::Challenge(c) => c.ticket().to_owned(),
            LoginStart::NoMfa => panic!("expected a challenge"),
        }
    }
    fn failures(&self, user: &UserId) -> u32 {
        match self.mfa.status(user).unwrap() {
            MfaStatus::Active { failures, .. } => failures,
            other => panic!("not active: {other:?}"),
        }
    }
    fn raw(&self, user: &UserId) -> (u64, Vec<u8>) {
        let r = self.store.load(user).unwrap().unwrap();
        (r.version(), r.data().to_vec())
    }
    /// Rewrites the stored record through the public store API (compare-and-swap).
    fn patch(&self, user: &UserId, f: impl FnOnce(&mut Raw)) {
        let (v, bytes) = self.raw(user);
        let mut raw = Raw::decode(&bytes);
        f(&mut raw);
        let out = self
            .store
            .compare_and_swap(user, Some(v), StoredRecord::new(v + 1, raw.encode()))
            .unwrap();
        assert_eq!(out, CasOutcome::Saved);
    }
    fn put_bytes(&self, user: &UserId, bytes: Vec<u8>) {
        let v = self.store.load(user).unwrap().map(|r| r.version());
        let out = self
            .store
            .compare_and_swap(user, v, StoredRecord::new(v.unwrap_or(0) + 1, bytes))
            .unwrap();
        assert_eq!(out, CasOutcome::Saved);
    }
}

/// A code that is certainly wrong for every step in `[step-3, step+3]`.
fn wrong_code(phone: &Phone, step: u64) -> String {
    let valid: Vec<String> = (step.saturating_sub(3)..=step + 3)
        .map(|s| phone.step(s))
        .collect();
    (0..1_000_000u32)
        .map(|n| format!("{n:06}"))
        .find(|c| !valid.contains(c))
        .unwrap()
}

/// Same for recovery codes: a well-formed code that is not one of ours.
fn wrong_recovery(codes: &RecoveryCodes) -> String {
    let ours: Vec<String> = codes.iter().map(|c| c.as_str().to_owned()).collect();
    ["ZZZZ-ZZZZ-ZZZZ-ZZZZ", "YYYY-YYYY-YYYY-YYYY"]
        .into_iter()
        .find(|c| !ours.iter().any(|o| o == c))
        .unwrap()
        .to_owned()
}

fn race<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(n));
    let f = Arc::new(f);
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let b = barrier.clone();
            let f = f.clone();
            thread::spawn(move || {
                b.wait();
                f(i)
            })
        })
        .collect();
    hs.into_iter().map(|h| h.join().unwrap()).collect()
}

// ----- A test-side codec of the record format, to craft records. -----
//
// It follows `src/flow/record.rs` (format version 1) and `src/seal.rs` byte for byte:
//
//   "TMFA" | 1 | generation u64 | failures u32 | last failure u64
//   | step-up: 0 | 1 hash[32] expiry u64
//   | state: 0 (disabled)
//          | 1 secret-field params account(u16 len, bytes) issued u64 expires u64 attempts u32
//          | 2 secret-field params last_step u64 activated u64 rounds u32
//              n u8 (salt[16] hash[32]) * n ticket-key-field epoch u64
//   params = algorithm u8 | digits u8 | period u32 | t0 u64
//   secret-field = 0 len u8 bytes (plain) | 1 key-id u32 nonce[24] len u8 ciphertext+tag
//
// All integers are big-endian. Without sealing keys (every test here) the fields are plain.

#[derive(Clone, Debug, PartialEq, Eq)]
enum RawField {
    Plain(Vec<u8>),
    Sealed {
        key_id: u32,
        nonce: [u8; 24],
        sealed: Vec<u8>,
    },
}

#[derive(Clone, Debug)]
struct Raw {
    generation: u64,
    count: u32,
    last_at: u64,
    step_up: Option<([u8; 32], u64)>,
    state: RawState,
}

#[derive(Clone, Debug)]
struct RawParams {
    alg: u8,
    digits: u8,
    period: u32,
    t0: u64,
}

#[derive(Clone, Debug)]
enum RawState {
    Disabled,
    Pending {
        secret: RawField,
        params: RawParams,
        account: Vec<u8>,
        issued: u64,
        expires: u64,
        attempts: u32,
    },
    Active {
        secret: RawField,
        params: RawParams,
        last_step: u64,
        activated: u64,
        rounds: u32,
        codes: Vec<([u8; 16], [u8; 32])>,
        ticket_key: RawField,
        epoch: u64,
    },
}

struct Rd<'a>(&'a [u8]);
impl Rd<'_> {
    fn take(&mut self, n: usize) -> Vec<u8> {
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        h.to_vec()
    }
    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.take(2).try_into().unwrap())
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take(4).try_into().unwrap())
    }
    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.take(8).try_into().unwrap())
    }
    fn tok(&mut self) -> ([u8; 32], u64) {
        (self.take(32).try_into().unwrap(), self.u64())
    }
    fn field(&mut self) -> RawField {
        match self.u8() {
            0 => {
                let n = self.u8() as usize;
                RawField::Plain(self.take(n))
            }
            1 => {
                let key_id = self.u32();
                let nonce = self.take(24).try_into().unwrap();
                let n = self.u8() as usize;
                RawField::Sealed {
                    key_id,
                    nonce,
                    sealed: self.take(n),
                }
            }
            t => panic!("unknown secret-field tag {t}"),
        }
    }
    fn params(&mut self) -> RawParams {
        RawParams {
            alg: self.u8(),
            digits: self.u8(),
            period: self.u32(),
            t0: self.u64(),
        }
    }
}

fn put_field(w: &mut Vec<u8>, f: &RawField) {
    match f {
        RawField::Plain(bytes) => {
            w.push(0);
            w.push(bytes.len() as u8);
            w.extend(bytes);
        }
        RawField::Sealed {
            key_id,
            nonce,
            sealed,
        } => {
            w.push(1);
            w.extend(key_id.to_be_bytes());
            w.extend(nonce);
            w.push(sealed.len() as u8);
            w.extend(sealed);
        }
    }
}

fn put_params(w: &mut Vec<u8>, x: &RawParams) {
    w.push(x.alg);
    w.push(x.digits);
    w.extend(x.period.to_be_bytes());
    w.extend(x.t0.to_be_bytes());
}

impl Raw {
    fn decode(b: &[u8]) -> Raw {
        let mut r = Rd(b);
        assert_eq!(r.take(4), b"TMFA");
        assert_eq!(r.u8(), 1, "record format version");
        let generation = r.u64();
        let count = r.u32();
        let last_at = r.u64();
        let step_up = match r.u8() {
            0 => None,
            1 => Some(r.tok()),
            f => panic!("bad step-up flag {f}"),
        };
        let state = match r.u8() {
            0 => RawState::Disabled,
            1 => RawState::Pending {
                secret: r.field(),
                params: r.params(),
                account: {
                    let n = r.u16() as usize;
                    r.take(n)
                },
                issued: r.u64(),
                expires: r.u64(),
                attempts: r.u32(),
            },
            2 => {
                let secret = r.field();
                let params = r.params();
                let last_step = r.u64();
                let activated = r.u64();
                let rounds = r.u32();
                let n = r.u8();
                let codes = (0..n)
                    .map(|_| {
                        (
                            r.take(16).try_into().unwrap(),
                            r.take(32).try_into().unwrap(),
                        )
                    })
                    .collect();
                RawState::Active {
                    secret,
                    params,
                    last_step,
                    activated,
                    rounds,
                    codes,
                    ticket_key: r.field(),
                    epoch: r.u64(),
                }
            }
            s => panic!("unknown state {s}"),
        };
        assert!(r.0.is_empty(), "trailing bytes");
        Raw {
            generation,
            count,
            last_at,
            step_up,
            state,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = b"TMFA\x01".to_vec();
        w.extend(self.generation.to_be_bytes());
        w.extend(self.count.to_be_bytes());
        w.extend(self.last_at.to_be_bytes());
        match &self.step_up {
            None => w.push(0),
            Some((h, e)) => {
                w.push(1);
                w.extend(h);
                w.extend(e.to_be_bytes());
            }
        }
        match &self.state {
            RawState::Disabled => w.push(0),
            RawState::Pending {
                secret,
                params,
                account,
                issued,
                expires,
                attempts,
            } => {
                w.push(1);
                put_field(&mut w, secret);
                put_params(&mut w, params);
                w.extend((account.len() as u16).to_be_bytes());
                w.extend(account);
                w.extend(issued.to_be_bytes());
                w.extend(expires.to_be_bytes());
                w.extend(attempts.to_be_bytes());
            }
            RawState::Active {
                secret,
                params,
                last_step,
                activated,
                rounds,
                codes,
                ticket_key,
                epoch,
            } => {
                w.push(2);
                put_field(&mut w, secret);
                put_params(&mut w, params);
                w.extend(last_step.to_be_bytes());
                w.extend(activated.to_be_bytes());
                w.extend(rounds.to_be_bytes());
                w.push(codes.len() as u8);
                for (s, h) in codes {
                    w.extend(s);
                    w.extend(h);
                }
                put_field(&mut w, ticket_key);
                w.extend(epoch.to_be_bytes());
            }
        }
        w
    }
}

/// The active state's fields that the tests rewrite.
struct ActiveMut<'a> {
    secret: &'a mut RawField,
    params: &'a mut RawParams,
    last_step: &'a mut u64,
    rounds: &'a mut u32,
    codes: &'a mut Vec<([u8; 16], [u8; 32])>,
    ticket_key: &'a mut RawField,
    epoch: &'a mut u64,
}

fn active_mut(raw: &mut Raw) -> ActiveMut<'_> {
    match &mut raw.state {
        RawState::Active {
            secret,
            params,
            last_step,
            rounds,
            codes,
            ticket_key,
            epoch,
            ..
        } => ActiveMut {
            secret,
            params,
            last_step,
            rounds,
            codes,
            ticket_key,
            epoch,
        },
        _ => panic!("not active"),
    }
}

/// Guards the test codec above (not a security property): it must read and re-encode, byte
/// for byte, the records the crate writes, or every crafted-record test would test nothing.
#[test]
fn the_test_codec_round_trips_records_written_by_the_crate() {
    let w = world();
    let (alice, bob) = (uid("alice"), uid("bob"));
    let _ = w.enroll(&alice);
    let _ = w.mfa.begin_enrollment(&bob, "bob@example.com").unwrap();
    w.clock.advance(30);
    for user in [&alice, &bob] {
        let (_, bytes) = w.raw(user);
        assert_eq!(Raw::decode(&bytes).encode(), bytes);
    }
    match Raw::decode(&w.raw(&alice).1).state {
        RawState::Active {
            secret: RawField::Plain(s),
            ticket_key: RawField::Plain(k),
            rounds,
            codes,
            epoch,
            ..
        } => {
            assert_eq!(s.len(), 20);
            assert_eq!(k.len(), 32);
            assert_eq!(rounds, 1_000);
            assert_eq!(codes.len(), 10);
            assert_eq!(epoch, 0);
        }
        s => panic!("{s:?}"),
    }
    match Raw::decode(&w.raw(&bob).1).state {
        RawState::Pending { account, .. } => assert_eq!(account, b"bob@example.com"),
        s => panic!("{s:?}"),
    }
}

// =========================================================================================
// FINDINGS OF THE REVIEW: fixed ones (asserting the fix) and known ones (asserting today's
// deliberate behaviour)
// =========================================================================================

/// KNOWN GAP (SEC-08, SEC-31 by analogy, RFC 6238 §5.1), originally rated HIGH: without
/// sealing keys the store sees the TOTP shared secret in plaintext, in the pending and the
/// active record. SEC-08's crate rule is that the storage trait only ever sees an AEAD-sealed
/// secret; anyone who can read the records table (backup, replica, SQL injection elsewhere,
/// a support dashboard) gets every user's seed.
///
/// Encryption at rest closes this once configured (the `encryption` feature and
/// `Mfa::with_sealing_keys`, covered by `tests/sealing.rs`); the default configuration used
/// here still stores the plain secret. Ignored so that it stays visible without asserting a
/// weakness on every run: `cargo test --test adversarial -- --ignored` shows it still holds.
#[test]
#[ignore = "known gap: plaintext secret in the store unless sealing keys are configured (SEC-08)"]
fn known_secret_is_stored_in_plaintext_until_encryption_is_configured() {
    let w = world();
    let alice = uid("alice");
    let (phone, _) = w.enroll(&alice);
    let (_, bytes) = w.raw(&alice);
    let secret = Secret::from_base32(&phone.base32).unwrap();
    let plain = secret.expose_bytes();
    assert!(
        bytes.windows(plain.len()).any(|win| win == plain),
        "the stored record no longer holds the raw secret: turn this into a fixed_ test"
    );
    // And the pending enrollment too: the secret is in the store before it is confirmed.
    let bob = uid("bob");
    let e = w.mfa.begin_enrollment(&bob, "bob").unwrap();
    let s = Secret::from_base32(e.manual_key()).unwrap();
    let (_, bytes) = w.raw(&bob);
    assert!(bytes.windows(s.len()).any(|win| win == s.expose_bytes()));
}

/// FIXED (SEC-10, SEC-46), originally MEDIUM: `SecondFactor` and `Reauth` derived `Debug`,
/// which printed the TOTP code, the recovery code and the step-up token verbatim, so a host
/// logging its handler arguments with `{:?}` (`tracing::instrument` does by default) wrote
/// recovery codes and step-up tokens into its logs. Their `Debug` is now redacted.
#[test]
fn fixed_debug_of_second_factor_and_reauth_is_redacted() {
    let w = world();
    let alice = uid("alice");
    let (_phone, codes) = w.enroll(&alice);
    let rc = codes.iter().next().unwrap().as_str().to_owned();
    let totp = "123456";
    let step_up = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let logged = format!(
        "{:?} {:?} {:?} {:?} {:?} {:#?}",
        SecondFactor::Totp(totp),
        SecondFactor::RecoveryCode(&rc),
        Reauth::StepUp(step_up),
        Reauth::Factor(SecondFactor::RecoveryCode(&rc)),
        Reauth::Factor(SecondFactor::Totp(totp)),
        Reauth::Factor(SecondFactor::RecoveryCode(&rc)),
    );
    for needle in [
        totp,
        &rc,
        &rc.replace('-', ""),
        &rc[..4],
        step_up,
        &step_up[..8],
    ] {
        assert!(!logged.contains(needle), "{needle:?} leaked: {logged}");
    }
    // Still useful in a log: the variant is shown.
    assert!(
        logged.contains("Totp") && logged.contains("RecoveryCode"),
        "{logged}"
    );
    assert!(
        logged.contains("StepUp") && logged.contains("Factor"),
        "{logged}"
    );
}

/// KNOWN, BY DESIGN (SEC-06; RFC 4226 R6 "MUST be at least 128 bits"), originally MEDIUM:
/// `Secret::from_bytes`, `Secret::from_base32` and `OtpAuth::parse` accept 80-bit keys on
/// purpose (importing existing seeds; `Secret::is_weak` flags them). What the review worried
/// about, a weak key reaching the login flow through the store, is fixed: the flows only
/// store generated secrets of at least 128 bits, and the record decoder refuses anything
/// shorter as `CorruptRecord`, so such a record never logs anyone in.
#[test]
fn known_80_bit_imports_are_accepted_but_records_refuse_them() {
    assert!(Secret::from_bytes(&[0u8; 15]).unwrap().is_weak());
    assert!(Secret::from_bytes(&[0u8; 10]).unwrap().is_weak());
    assert!(!Secret::from_bytes(&[0u8; 16]).unwrap().is_weak());
    assert!(Secret::from_base32("AAAAAAAAAAAAAAAA").is_ok()); // 80 bits of zeros
    let uri = "otpauth://totp/X:y?secret=AAAAAAAAAAAAAAAA&issuer=X";
    let a = OtpAuth::parse(uri).unwrap();
    assert_eq!(a.secret().len(), 10);
    assert!(a.secret().is_weak());

    // The flows refuse a short secret read from the store, active or pending: fail closed.
    let w = world();
    let alice = uid("alice");
    let (_phone, codes) = w.enroll(&alice);
    let ticket = w.ticket(&alice);
    let (_, good) = w.raw(&alice);
    for len in [10usize, 15] {
        w.patch(&alice, |r| {
            *active_mut(r).secret = RawField::Plain(vec![0u8; len]);
        });
        w.clock.advance(30);
        let t = Totp::new(
            &Secret::from_bytes(&vec![0u8; len]).unwrap(),
            TotpParams::default(),
        )
        .unwrap();
        let code = t.generate(w.now()).unwrap();
        let rc = codes.iter().next().unwrap().as_str().to_owned();
        for r in [
            w.mfa.status(&alice).map(|_| ()),
            w.mfa.start_login(&alice).map(|_| ()),
            w.mfa
                .complete_login(&alice, &ticket, SecondFactor::Totp(code.as_str()))
                .map(|_| ()),
            w.mfa
                .complete_login(&alice, &ticket, SecondFactor::RecoveryCode(&rc))
                .map(|_| ()),
            w.mfa
                .disable(&alice, Reauth::Factor(SecondFactor::Totp(code.as_str()))),
        ] {
            assert!(matches!(r, Err(Error::CorruptRecord(_))), "{len}: {r:?}");
        }
        w.put_bytes(&alice, good.clone());
    }
    let bob = uid("bob");
    let _ = w.mfa.begin_enrollment(&bob, "bob").unwrap();
    w.patch(&bob, |r| {
        if let RawState::Pending { secret, .. } = &mut r.state {
            *secret = RawField::Plain(vec![0u8; 15]);
        }
    });
    let t = Totp::new(
        &Secret::from_bytes(&[0u8; 15]).unwrap(),
        TotpParams::default(),
    )
    .unwrap();
    let r = w
        .mfa
        .confirm_enrollment(&bob, t.generate(w.now()).unwrap().as_str());
    assert!(matches!(r, Err(Error::CorruptRecord(_))), "{r:?}");
}

/// FIXED (availability; SEC-33 "single-use, short-lived", WSTG), originally LOW: a user kept
/// at most 8 open challenges and a new one evicted the oldest, so anyone holding only the
/// password could call `start_login` in a loop and make every legitimate ticket
/// `ChallengeInvalid`. Tickets are now stateless MACs: starting a login writes nothing,
/// evicts no one, and a successful login spends every open ticket (the attacker's too).
#[test]
fn fixed_challenge_flooding_does_not_evict_the_users_ticket() {
    let w = world();
    let alice = uid("alice");
    let (phone, _) = w.enroll(&alice);
    w.clock.advance(30);
    let victim_ticket = w.ticket(&alice);
    let before = w.raw(&alice);
    // The attacker, who has only the password.
    let attacker_tickets: Vec<String> = (0..100).map(|_| w.ticket(&alice)).collect();
    assert_eq!(w.raw(&alice), before, "starting a login wrote to the store");
    let a = w
        .mfa
        .complete_login(
            &alice,
            &victim_ticket,
            SecondFactor::Totp(&phone.at(w.now())),
        )
        .unwrap();
    assert_eq!(a.user(), &alice);
    // One success spends every ticket that was open.
    w.clock.advance(30);
    for t in attacker_tickets.iter().step_by(10).chain([&victim_ticket]) {
        let r = w
            .mfa
            .complete_login(&alice, t, SecondFactor::Totp(&phone.at(w.now())));
        assert!(matches!(r, Err(Error::ChallengeInvalid)), "{r:?}");
    }
}

/// KNOWN, BY DESIGN (API hazard, SEC-32/SEC-40 "one path to Authenticated"), originally LOW:
/// `start_login` returns `LoginStart::NoMfa` ("the password alone authorizes") for any user
/// id without a record. `UserId` is compared as raw bytes with no normalization, so a host
/// that enrolls under one spelling and logs in under another (e-mail case, white space,
/// Unicode NFC vs NFD, a zero-width space) skips the second factor; so does a custom `Store`
/// whose `load` maps a transient error to `Ok(None)`. The host must pass one canonical,
/// stable id (ideally the database primary key) and must not turn store errors into "no
/// record". This test pins the behaviour so a change to it is deliberate.
#[test]
fn known_start_login_is_no_mfa_for_any_unenrolled_spelling_of_a_user() {
    let w = world();
    let alice = uid("alice@example.com");
    let _ = w.enroll(&alice);
    assert!(matches!(
        w.mfa.start_login(&alice).unwrap(),
        LoginStart::Challenge(_)
    ));
    for variant in [
        "Alice@example.com",
        "alice@example.com ",
        " alice@example.com",
        "alice@example.com\u{200B}",
        "alice@EXAMPLE.com",
    ] {
        let r = w.mfa.start_login(&uid(variant)).unwrap();
        assert!(
            matches!(r, LoginStart::NoMfa),
            "{variant:?} -> {r:?} (MFA skipped for a different spelling)"
        );
    }
}

// FIXED (SEC-15 "charge the throttle atomically BEFORE any HMAC work"; SEC-24, SEC-44;
// availability of the recovery path), originally MEDIUM: the driver used to evaluate a factor
// first and charge it only if its compare-and-swap won, re-running the whole transition
// (PBKDF2 over every stored recovery code) on every conflict, up to 1,000 times; and
// `start_login`, which anyone with the password may call without limit, rewrote the record
// on every call. A `start_login` flood therefore made recovery-code checks lose their races
// again and again: CPU amplification, a recovery path starved into `Contention`, and fully
// evaluated guesses left uncounted.
//
// Now `start_login` writes nothing (stateless tickets), and a factor is charged in its own
// cheap compare-and-swap, checked once, then committed cheaply. The two tests below assert
// that, deterministically (counts, no clocks).

thread_local! {
    static MY_CONFLICTS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A MemoryStore that counts, per calling thread, how often a compare-and-swap lost.
#[derive(Default)]
struct CountingStore(MemoryStore);

impl Store for CountingStore {
    type Error = totp_mfa::PoisonedStore;
    fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, Self::Error> {
        self.0.load(user)
    }
    fn compare_and_swap(
        &self,
        user: &UserId,
        expected: Option<u64>,
        new: StoredRecord,
    ) -> Result<CasOutcome, Self::Error> {
        let r = self.0.compare_and_swap(user, expected, new)?;
        if r == CasOutcome::Conflict {
            MY_CONFLICTS.with(|c| c.set(c.get() + 1));
        }
        Ok(r)
    }
}

/// With threads flooding `start_login` (an attacker who knows only the password), every
/// recovery-code check completes on its first try: no lost race, each wrong guess counted
/// exactly once, and the real user's correct code works (SEC-15, SEC-24, SEC-33).
#[test]
fn fixed_start_login_flood_neither_starves_nor_uncounts_recovery_code_checks() {
    let clock = Arc::new(ManualClock::new(T0));
    let store = Arc::new(CountingStore::default());
    let policy = no_delay_policy().with_recovery_codes(2);
    let mfa = Arc::new(
        Mfa::new(store.clone(), policy)
            .unwrap()
            .with_clock(clock.clone()),
    );
    let alice = uid("alice");
    let e = mfa.begin_enrollment(&alice, "alice").unwrap();
    let phone = Phone::from_uri(e.uri().as_str());
    let codes = mfa.confirm_enrollment(&alice, &phone.at(T0)).unwrap();
    let mut it = codes.iter();
    let good_rc = it.next().unwrap().as_str().to_owned();
    let login_rc = it.next().unwrap().as_str().to_owned();
    let wrong_rc = wrong_recovery(&codes);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicUsize::new(0));
    let flooders: Vec<_> = (0..2)
        .map(|_| {
            let mfa = mfa.clone();
            let stop = stop.clone();
            let started = started.clone();
            thread::spawn(move || {
                let a = uid("alice");
                while !stop.load(Ordering::Relaxed) {
                    let _ = mfa.start_login(&a).unwrap();
                    started.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Make sure the flood is running before the victim's requests.
    while started.load(Ordering::Relaxed) < 100 {
        thread::yield_now();
    }
    let failures = || match mfa.status(&uid("alice")).unwrap() {
        MfaStatus::Active { failures, .. } => failures,
        s => panic!("{s:?}"),
    };
    for guess in 1..=3 {
        MY_CONFLICTS.with(|c| c.set(0));
        let r = mfa.regenerate_recovery_codes(
            &alice,
            Reauth::Factor(SecondFactor::RecoveryCode(&wrong_rc)),
        );
        assert!(
            matches!(r, Err(Error::WrongRecoveryCode { .. })),
            "{:?}",
            r.map(|_| ())
        );
        assert_eq!(
            MY_CONFLICTS.with(|c| c.get()),
            0,
            "guess {guess} lost a race"
        );
        assert_eq!(
            failures(),
            guess,
            "guess {guess} was not counted exactly once"
        );
    }
    // The real user logs in with a recovery code, on a ticket issued during the flood.
    MY_CONFLICTS.with(|c| c.set(0));
    let ticket = match mfa.start_login(&alice).unwrap() {
        LoginStart::Challenge(c) => c.ticket().to_owned(),
        LoginStart::NoMfa => panic!("no challenge"),
    };
    let a = mfa
        .complete_login(&alice, &ticket, SecondFactor::RecoveryCode(&login_rc))
        .unwrap();
    assert_eq!(a.factor(), Factor::RecoveryCode);
    // And resets MFA with the other one (the lost-phone path).
    mfa.disable(&alice, Reauth::Factor(SecondFactor::RecoveryCode(&good_rc)))
        .unwrap();
    assert_eq!(MY_CONFLICTS.with(|c| c.get()), 0);
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        f.join().unwrap();
    }
    assert!(matches!(mfa.status(&alice).unwrap(), MfaStatus::Disabled));
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Bystander,
    Victim,
    Attacker,
}

thread_local! {
    static ROLE: std::cell::Cell<Role> = const { std::cell::Cell::new(Role::Bystander) };
}

type Attack = Arc<dyn Fn() + Send + Sync>;

/// A MemoryStore that lets one attacker request land between each of the victim's loads and
/// its compare-and-swap: the worst-case (attacker-wins-every-race) interleaving. The victim
/// is whatever runs on a thread whose `ROLE` is `Victim`.
#[derive(Default)]
struct InterleavingStore {
    inner: MemoryStore,
    attack: Mutex<Option<Attack>>,
    /// Victim loads to let through before the attacker starts winning every race.
    spare_loads: AtomicUsize,
    attacks: AtomicUsize,
    attacker_writes: AtomicUsize,
    victim_conflicts: AtomicUsize,
}

impl InterleavingStore {
    fn arm(&self, spare_loads: usize, attack: Attack) {
        self.spare_loads.store(spare_loads, Ordering::SeqCst);
        self.attacks.store(0, Ordering::SeqCst);
        self.attacker_writes.store(0, Ordering::SeqCst);
        self.victim_conflicts.store(0, Ordering::SeqCst);
        *self.attack.lock().unwrap() = Some(attack);
    }
    fn counts(&self) -> (usize, usize, usize) {
        (
            self.attacks.load(Ordering::SeqCst),
            self.attacker_writes.load(Ordering::SeqCst),
            self.victim_conflicts.load(Ordering::SeqCst),
        )
    }
}

impl Store for InterleavingStore {
    type Error = totp_mfa::PoisonedStore;
    fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, Self::Error> {
        let r = self.inner.load(user)?;
        if ROLE.get() == Role::Victim {
            let spare = self.spare_loads.load(Ordering::SeqCst);
            if spare > 0 {
                self.spare_loads.store(spare - 1, Ordering::SeqCst);
            } else if let Some(attack) = self.attack.lock().unwrap().clone() {
                ROLE.set(Role::Attacker);
                attack();
                ROLE.set(Role::Victim);
                self.attacks.fetch_add(1, Ordering::SeqCst);
            }
        }
        Ok(r)
    }
    fn compare_and_swap(
        &self,
        user: &UserId,
        expected: Option<u64>,
        new: StoredRecord,
    ) -> Result<CasOutcome, Self::Error> {
        let out = self.inner.compare_and_swap(user, expected, new)?;
        match (ROLE.get(), out) {
            (Role::Attacker, CasOutcome::Saved) => {
                self.attacker_writes.fetch_add(1, Ordering::SeqCst);
            }
            (Role::Victim, CasOutcome::Conflict) => {
                self.victim_conflicts.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
        Ok(out)
    }
}

/// The OS generator, counting how often it is drawn from: the work a request does between
/// charging a factor and committing it (the check, then the new tokens) shows up as draws.
#[derive(Clone, Default)]
struct CountingRng(Arc<AtomicUsize>);

impl TryRng for CountingRng {
    type Error = <SysRng as TryRng>::Error;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        SysRng.try_next_u32()
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        SysRng.try_next_u64()
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        SysRng.try_fill_bytes(dst)
    }
}

impl TryCryptoRng for CountingRng {}

/// The deterministic version (SEC-15, SEC-23, SEC-24, SEC-44). The review showed that when
/// an attacker's `start_login` landed in each evaluation window, a recovery-code guess was
/// evaluated 1,000 times and returned as `Contention`, uncounted, and a correct code was
/// evaluated 1,000 times and not granted. Now:
///
/// 1. the same attack no longer races at all (`start_login` writes nothing): the wrong guess
///    is counted, the correct code is granted, and the victim loses no race;
/// 2. an attacker that really writes, with its own wrong guesses (all a password holder can
///    write), and wins every race while the victim commits a correct code, pays a counted
///    failure per race won; the victim's code is checked once (its pre-commit work, the
///    check and the token draws, is not repeated: same RNG draws as an uncontended login)
///    and is still granted;
/// 3. the same attacker winning every race from the victim's first load locks the account
///    with its own counted guesses, and the victim's guess is refused as `Locked` before
///    any check: never `Contention`, never an evaluated-but-uncounted guess.
#[test]
fn fixed_guess_is_counted_and_checked_once_even_when_the_attacker_wins_every_race() {
    let clock = Arc::new(ManualClock::new(T0));
    let store = Arc::new(InterleavingStore::default());
    let draws = CountingRng::default();
    let lock_after = 100;
    let policy = no_delay_policy().with_recovery_codes(3);
    let mfa = Arc::new(
        Mfa::new(store.clone(), policy)
            .unwrap()
            .with_clock(clock.clone())
            .with_rng(draws.clone()),
    );
    let alice = uid("alice");
    let e = mfa.begin_enrollment(&alice, "alice").unwrap();
    let phone = Phone::from_uri(e.uri().as_str());
    let codes = mfa.confirm_enrollment(&alice, &phone.at(T0)).unwrap();
    let rcs: Vec<String> = codes.iter().map(|c| c.as_str().to_owned()).collect();
    let wrong_rc = wrong_recovery(&codes);
    let wrong_totp = wrong_code(&phone, T0 / 30);
    let status = |mfa: &Mfa<_, _, _>| match mfa.status(&uid("alice")).unwrap() {
        MfaStatus::Active {
            failures,
            recovery_codes_left,
            ..
        } => (failures, recovery_codes_left),
        s => panic!("{s:?}"),
    };
    let ticket = |mfa: &Mfa<Arc<InterleavingStore>, Arc<ManualClock>, CountingRng>| match mfa
        .start_login(&uid("alice"))
        .unwrap()
    {
        LoginStart::Challenge(c) => c.ticket().to_owned(),
        LoginStart::NoMfa => panic!("no challenge"),
    };
    let as_victim = |f: &mut dyn FnMut()| {
        ROLE.set(Role::Victim);
        f();
        ROLE.set(Role::Bystander);
    };

    // Baseline: RNG draws of one uncontended recovery-code login.
    let t = ticket(&mfa);
    let before = draws.0.load(Ordering::SeqCst);
    let _ = mfa
        .complete_login(&alice, &t, SecondFactor::RecoveryCode(&rcs[0]))
        .unwrap();
    let login_draws = draws.0.load(Ordering::SeqCst) - before;
    assert_eq!(status(&mfa), (0, 2));

    // 1. The review's attack: a `start_login` in every window.
    let weak = Arc::downgrade(&mfa);
    store.arm(
        0,
        Arc::new(move || {
            if let Some(m) = weak.upgrade() {
                let _ = m.start_login(&uid("alice")).unwrap();
            }
        }),
    );
    let mut r = None;
    as_victim(&mut || {
        r = Some(mfa.regenerate_recovery_codes(
            &alice,
            Reauth::Factor(SecondFactor::RecoveryCode(&wrong_rc)),
        ))
    });
    let r = r.unwrap();
    assert!(
        matches!(r, Err(Error::WrongRecoveryCode { .. })),
        "{:?}",
        r.map(|_| ())
    );
    let (attacks, attacker_writes, conflicts) = store.counts();
    assert!(attacks >= 1);
    assert_eq!((attacker_writes, conflicts), (0, 0));
    assert_eq!(status(&mfa), (1, 2), "the wrong guess must be counted");
    let t = ticket(&mfa);
    let mut r = None;
    as_victim(&mut || {
        r = Some(mfa.complete_login(&alice, &t, SecondFactor::RecoveryCode(&rcs[1])))
    });
    assert_eq!(r.unwrap().unwrap().factor(), Factor::RecoveryCode);
    assert_eq!(store.counts().2, 0);
    assert_eq!(status(&mfa), (0, 1));

    // 2. An attacker that writes (its own wrong TOTP guesses) wins every race after the
    //    victim's charge, i.e. every race of the commit.
    let attacker_ticket = ticket(&mfa);
    let weak = Arc::downgrade(&mfa);
    let guess = wrong_totp.clone();
    store.arm(
        1,
        Arc::new(move || {
            if let Some(m) = weak.upgrade() {
                let _ =
                    m.complete_login(&uid("alice"), &attacker_ticket, SecondFactor::Totp(&guess));
            }
        }),
    );
    let t = ticket(&mfa);
    let before = draws.0.load(Ordering::SeqCst);
    let mut r = None;
    as_victim(&mut || {
        r = Some(mfa.complete_login(&alice, &t, SecondFactor::RecoveryCode(&rcs[2])))
    });
    let r = r.unwrap();
    let (attacks, attacker_writes, conflicts) = store.counts();
    // The victim's charge was failure 1; each race the attacker won was a counted guess of
    // its own, until the lock stopped it; then the victim's cheap commit went through.
    assert_eq!(attacker_writes as u32, lock_after - 1, "{r:?}");
    assert_eq!(
        conflicts, attacker_writes,
        "a race was won without a counted guess"
    );
    assert_eq!(attacks, attacker_writes + 1);
    assert_eq!(r.unwrap().factor(), Factor::RecoveryCode);
    assert_eq!(
        draws.0.load(Ordering::SeqCst) - before,
        login_draws,
        "the work between charge and commit was repeated on a lost race"
    );
    assert_eq!(status(&mfa), (0, 0));

    // 3. The same attacker wins every race from the victim's first load.
    mfa.unlock(&alice).unwrap();
    let attacker_ticket = ticket(&mfa);
    let weak = Arc::downgrade(&mfa);
    let guess = wrong_totp.clone();
    store.arm(
        0,
        Arc::new(move || {
            if let Some(m) = weak.upgrade() {
                let _ =
                    m.complete_login(&uid("alice"), &attacker_ticket, SecondFactor::Totp(&guess));
            }
        }),
    );
    let mut r = None;
    as_victim(&mut || {
        r = Some(mfa.disable(
            &alice,
            Reauth::Factor(SecondFactor::RecoveryCode(&wrong_rc)),
        ))
    });
    let r = r.unwrap();
    assert!(matches!(r, Err(Error::Locked)), "{r:?}");
    let (_, attacker_writes, conflicts) = store.counts();
    assert_eq!(attacker_writes as u32, lock_after);
    assert_eq!(conflicts, attacker_writes);
    assert_eq!(status(&mfa), (lock_after, 0));
}

/// KNOWN, BY DESIGN (SEC-20 "wrong and replayed codes give the same public variant"),
/// originally INFORMATIONAL: the public error distinguishes a replayed code
/// (`CodeAlreadyUsed`, "wait for the next code") from a wrong one (`WrongCode`), which tells
/// a guesser "your guess equals an already-used code of the window" (low value: it is a
/// past code) and confirms to a phisher replaying a stolen code that it was genuine. The
/// crate keeps the distinction for the honest user's sake; both are counted as failures.
#[test]
fn known_replayed_and_wrong_codes_are_distinguishable() {
    let w = world();
    let alice = uid("alice");
    let (phone, _) = w.enroll(&alice);
    let used = phone.at(w.now()); // the confirmation code: its step is spent
    let t = w.ticket(&alice);
    let replay = w
        .mfa
        .complete_login(&alice, &t, SecondFactor::Totp(&used))
        .unwrap_err();
    let wrong = w
        .mfa
        .complete_login(
            &alice,
            &t,
            SecondFactor::Totp(&wrong_code(&phone, w.step())),
        )
        .unwrap_err();
    assert!(
        matches!(replay, Error::CodeAlreadyUsed { .. }),
        "{replay:?}"
    );
    assert!(matches!(wrong, Error::WrongCode { .. }), "{wrong:?}");
    assert!(replay.is_refused_factor() && wrong.is_refused_factor());
    assert_ne!(replay.to_string(), wrong.to_string());
    assert_eq!(w.failures(&alice), 2, "both are counted");
}

/// FIXED (SEC-27 "a full-width-digit input normalizes"), originally INFORMATIONAL: recovery
/// codes typed with full-width characters (common with East-Asian input methods) were
/// refused as malformed. They now read as the ASCII code, once; zero-width and look-alike
/// characters are still refused (see `withstood_recovery_code_variants_are_one_code`).
#[test]
fn fixed_full_width_recovery_codes_normalize() {
    let w = world();
    let alice = uid("alice");
    let (_phone, codes) = w.enroll(&alice);
    let mut it = codes.iter();
    let to_full_width = |rc: &str, dash: char| -> String {
        rc.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap()
                } else {
                    dash
                }
            })
            .collect()
    };
    let first = it.next().unwrap().as_str().to_owned();
    let second = it.next().unwrap().as_str().to_owned();
    for full_width in [
        to_full_width(&first, '-'),
        to_full_width(&second.to_lowercase(), '\u{FF0D}'), // full-width hyphen-minus, lower case
    ] {
        let a = w
            .mfa
            .complete_login(
                &alice,
                &w.ticket(&alice),
                SecondFactor::RecoveryCode(&full_width),
            )
            .unwrap();
        assert_eq!(a.factor(), Factor::RecoveryCode);
        // The same code again, in ASCII: spent.
        let ascii: String = full_width
            .chars()
            .map(|c| match c {
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap(),
                c => c,
            })
            .collect();
        let r = w.mfa.complete_login(
            &alice,
            &w.ticket(&alice),
            SecondFactor::RecoveryCode(&ascii),
        );
        assert!(matches!(r, Err(Error::WrongRecoveryCode { .. })), "{r:?}");
        w.mfa.unlock(&alice).unwrap();
    }
    assert_eq!(w.failures(&alice), 0);
}

/// FIXED (store trust / DoS; SEC-22), originally LOW: the record decoder bounded every length
/// but not the PBKDF2 work factor. A record with `rounds = u32::MAX` and 32 codes made one
/// recovery-code guess cost ~1.4 * 10^11 HMAC computations, re-run on every lost race, and
/// `rounds = 1` was accepted too; the policy had no upper bound either. Stored rounds are now
/// bounded to 1,000..=1,000,000 (anything else is `CorruptRecord`, before any hashing) and
/// the policy refuses the same out-of-bounds values.
#[test]
fn fixed_crafted_pbkdf2_rounds_out_of_bounds_are_corrupt_records() {
    let w = world();
    let alice = uid("alice");
    let (_phone, codes) = w.enroll(&alice);
    let rc = codes.iter().next().unwrap().as_str().to_owned();
    let ticket = w.ticket(&alice);
    for rounds in [0, 1, 999, 1_000_001, u32::MAX] {
        w.patch(&alice, |r| *active_mut(r).rounds = rounds);
        let st = w.mfa.status(&alice);
        assert!(
            matches!(st, Err(Error::CorruptRecord(_))),
            "{rounds}: {st:?}"
        );
        let r = w
            .mfa
            .complete_login(&alice, &ticket, SecondFactor::RecoveryCode(&rc));
        assert!(matches!(r, Err(Error::CorruptRecord(_))), "{rounds}: {r:?}");
        let r = w
            .mfa
            .disable(&alice, Reauth::Factor(SecondFactor::RecoveryCode(&rc)));
        assert!(matches!(r, Err(Error::CorruptRecord(_))), "{rounds}: {r:?}");
    }
    // The bounds themselves are valid records (the codes no longer match at 1,000,000
    // rounds, which is one honest, counted refusal; not run here to keep the test fast).
    for rounds in [1_000, 1_000_000] {
        w.patch(&alice, |r| *active_mut(r).rounds = rounds);
        assert!(matches!(
            w.mfa.status(&alice).unwrap(),
            MfaStatus::Active { .. }
        ));
    }
    w.patch(&alice, |r| *active_mut(r).rounds = 1_000);
    assert!(
        w.mfa
            .complete_login(&alice, &ticket, SecondFactor::RecoveryCode(&rc))
            .is_ok()
    );
    // And the policy.
    for rounds in [0, 999, 1_000_001, u32::MAX] {
        let r = fast_policy().with_recovery_hash_rounds(rounds).validate();
        assert!(matches!(r, Err(Error::Config(_))), "{rounds}: {r:?}");
    }
    for rounds in [1_000, 1_000_000] {
        assert!(
            fast_policy()
                .with_recovery_hash_rounds(rounds)
                .validate()
                .is_ok()
        );
    }
}

/// FIXED (SEC-38 "a credential generation counter lets callers invalidate sessions"),
/// originally INFORMATIONAL: the record kept a `generation`, incremented at activation, but
/// never exposed it, so a host could not tell that a session was authorized by a credential
/// that had since been reset. `Authorization::credential_generation()` and
/// `MfaStatus::Active { generation, .. }` now expose it: a session made before a reset is
/// recognizably stale. (Within the crate, step-up tokens and tickets die on disable/begin/
/// confirm: see `withstood_step_up_token_after_disable_and_reenroll`.)
#[test]
fn fixed_credential_generation_is_exposed() {
    let w = world();
    let alice = uid("alice");
    let generation = |w: &W| match w.mfa.status(&uid("alice")).unwrap() {
        MfaStatus::Active { generation, .. } => generation,
        s => panic!("{s:?}"),
    };
    let (phone, _) = w.enroll(&alice);
    w.clock.advance(30);
    let a = w
        .mfa
        .complete_login(
            &alice,
            &w.ticket(&alice),
            SecondFactor::Totp(&phone.at(w.now())),
        )
        .unwrap();
    assert_eq!(a.credential_generation(), generation(&w));
    // A second login on the same credential: same generation (sessions stay valid).
    w.clock.advance(30);
    let a2 = w
        .mfa
        .complete_login(
            &alice,
            &w.ticket(&alice),
            SecondFactor::Totp(&phone.at(w.now())),
        )
        .unwrap();
    assert_eq!(a2.credential_generation(), a.credential_generation());
    // Reset and enroll again: the old session's generation no longer matches.
    w.mfa
        .disable(&alice, Reauth::StepUp(a2.step_up_token()))
        .unwrap();
    let (phone2, _) = w.enroll(&alice);
    assert!(generation(&w) > a.credential_generation());
    w.clock.advance(30);
    let a3 = w
        .mfa
        .complete_login(
            &alice,
            &w.ticket(&alice),
            SecondFactor::Totp(&phone2.at(w.now())),
        )
        .unwrap();
    assert_eq!(a3.credential_generation(), generation(&w));
    assert_ne!(a3.credential_generation(), a.credential_generation());
    // The generation is not secret, but the Debug output of an Authorization stays minimal.
    let dbg = format!("{a3:?}");
    assert!(!dbg.contains(a3.session_token()) && !dbg.contains(a3.step_up_token()));
}

/// KNOWN, BY DESIGN (SEC-12 vs availability), originally INFORMATIONAL: after the server
/// clock jumps forward and comes back (bad NTP step), `last_step` stays in the future; every
/// correct code is then refused as `CodeAlreadyUsed` AND counted, so an honest user locks
/// the factor within `lock_after` tries. Fail-closed (replay protection is never relaxed),
/// but an operational hazard: keep server clocks monotonic, and unlock after a clock fault.
#[test]
fn known_clock_jump_back_locks_out_honest_users() {
    let w = world();
    let alice = uid("alice");
    let (phone, _) = w.enroll(&alice);
    // The server clock jumps a day ahead (bad NTP step); a user logs in meanwhile.
    w.clock.advance(86_400);
    let t = w.ticket(&alice);
    let _ = w
        .mfa
        .complete_login(&alice, &t, SecondFactor::Totp(&phone.at(w.now())))
        .unwrap();
    // The clock is corrected. From now on the honest user, with a correct phone, waits out
    // every delay the crate imposes and types the right code each time.
    w.clock.set(T0 + 60);
    let mut outcomes = Vec::new();
    loop {
        if let MfaStatus::Active {
            retry_at: Some(at), ..
        } = w.mfa.status(&alice).unwrap()
        {
            w.clock.set(at);
        }
        let t = w.ticket(&alice);
        let r = w
            .mfa
            .complete_login(&alice, &t, SecondFactor::Totp(&phone.at(w.now())));
        let done = !matches!(r, Err(Error::CodeAlreadyUsed { .. }));
        outcomes.push(r.map(|_| ()));
        if done {
            break;
        }
        assert!(outcomes.len() <= 10, "{outcomes:?}");
    }
    assert!(
        matches!(outcomes.last(), Some(Err(Error::Locked))),
        "{outcomes:?}"
    );
    assert_eq!(outcomes.len(), 11, "{outcomes:?}");
    assert!(
        w.now() < T0 + 86_400,
        "locked before the stored last_step was reached"
    );
    // Only the host's unlock (after the clock fault is understood) and time help.
    w.mfa.unlock(&alice).unwrap();
    w.clock.set(T0 + 86_400 + 60);
    assert!(
        w.mfa
            .complete_login(
                &alice,
                &w.ticket(&alice),
                SecondFactor::Totp(&phone.at(w.now()))
            )
            .is_ok()
    );
}

// =========================================================================================
// REPLAY ATTACKS (withstood)
// =========================================================================================

/// SEC-12, SEC-35, SEC-37, SEC-25: a TOTP code works once across every path: the
/// confirmation code cannot log in, disable or regenerate, and a login code cannot be
/// replayed on a new ticket, for a sensitive change, or with white space around it.
#[test]
fn withstood_same_code_across_challenges_and_paths() {
    let w = world_with(no_delay_policy());
    let alice = uid("alice");
    let (phone, _) = w.enroll(&alice);
    // The confirmation code cannot log in, nor disable, nor regenerate (SEC-35).
    let confirm_code = phone.at(w.now());
    for r in [
        w.mfa
            .complete_login(&alice, &w.ticket(&alice), SecondFactor::Totp(&confirm_code))
            .map(|_| ()),
        w.mfa
            .disable(&alice, Reauth::Factor(SecondFactor::Totp(&confirm_code)))
            .map(|_| ()),
        w.mfa
            .regenerate_recovery_codes(&alice, Reauth::Factor(SecondFactor::Totp(&confirm_code)))
            .map(|_| ()),
    ] {
        assert!(matches!(r, Err(Error::CodeAlreadyUsed { .. })), "{r:?}");
    }
    w.clock.advance(30);
    let c = phone.at(w.now());
    let _ = w
        .mfa
        .complete_login(&alice, &w.ticket(&alice), SecondFactor::Totp(&c))
        .unwrap();
    // Same code on a new challenge, and for a sensitive change.
    assert!(
        w.mfa
            .complete_login(&alice, &w.ticket(&alice), SecondFactor::Totp(&c))
            .is_err()
    );
    assert!(
        w.mfa
            .regenerate_recovery_codes(&alice, Reauth::Factor(SecondFactor::Totp(&c)))
            .is_err()
    );
    assert!(
        w.mfa
            .disable(&alice, Reauth::Factor(SecondFactor::Totp(&c)))
            .is_err()
    );
    // With white space / a pasted newline it is the same code: still refused.
    let spaced = format!(" {} {}\n", &c[..3], &c[3..]);
    assert!(
        w.mfa
            .complete_login(&alice, &w.ticket(&alice), SecondFactor::Totp(&spaced))
            .is_err()
    );
}

/// SEC-11, SEC-12: inside the window, a code at or before the last accepted step is refused
/// (future edge first, then older steps); outside the window nothing is accepted; distinct
/// fresh steps in order are each accepted once.
#[test]
fn withstood_older_in_window_and_alternating_steps() {
    let w = world_with(no_delay_policy());
    let alice = uid("alice");
    let (phone, _) = w.enroll(&alice);
    w.clock.advance(300);
    let s = w.step();
    // Future edge first (T+1), then T, then T-1, then T+1 again: only the first works.
    let mut ok = 0;
    for step in [s + 1, s, s - 1, s + 1] {
        if w.mfa
            .complete_login(
                &alice,
                &w.ticket(&alice),
                SecondFactor::Totp(&phone.step(step)),
            )
            .is_ok()
        {
            ok += 1;
        }
    }
    assert_eq!(ok, 1);
    // Outside the window (T+2, T-2) never works, even when unused.
    w.clock.advance(300);
    let s = w.step();
    for step in [s + 2, s - 2] {
        assert!(
            w.mfa
                .complete_login(
                    &alice,
                    &w.ticket(&alice),
                    SecondFactor::Totp(&phone.step(step))
                )
                .is_err()
        );
    }
    // T-1 then T: both fresh and in order -> both accepted (RFC allows, distinct OTPs).
    let a = w.mfa.complete_login(
        &alice,
        &w.ticket(&alice),
        SecondFactor::Totp(&phone.step(s - 1)),
    );
    let b = w.mfa.complete_login(
        &alice,
        &w.ticket(&alice),
        SecondFactor::Totp(&phone.step(s)),
    );
    assert!(a.is_ok() && b.is_ok());
}

/// SEC-23, SEC-27: every accepted spelling of a recovery code (case, separators, look-alike
/// digits, white space, full-width forms) is the same single-use code, and Unicode tricks are
/// refused as malformed without being hashed or counted.
#[test]
fn withstood_recovery_code_variants_are_one_code() {
    let w = world_with(no_delay_policy());
    let alice = uid("alice");
    let (_phone, codes) = w.enroll(&alice);
    let rc = codes.iter().next().unwrap().as_str().to_owned();
    let bare = rc.replace('-', "");
    let lookalike: String = bare
        .chars()
        .map(|c| match c {
            '1' => 'l',
            '0' => 'O',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    let variants = [
        rc.clone(),
        bare.clone(),
        bare.to_lowercase(),
        lookalike.clone(),
        lookalike.replace('l', "I"),
        format!(" {} ", rc.replace('-', " - ")),
        format!("{}\u{3000}{}", &bare[..8], &bare[8..]), // ideographic space (white space)
        bare.chars()
            .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap())
            .collect(), // full-width forms
    ];
    let mut ok = 0;
    for v in &variants {
        if w.mfa
            .complete_login(&alice, &w.ticket(&alice), SecondFactor::RecoveryCode(v))
            .is_ok()
        {
            ok += 1;
        }
    }
    assert_eq!(ok, 1, "a recovery code was accepted more than once");
    // Unicode look-alikes and zero-width characters are refused as malformed (never hashed,
    // never accepted, never counted). Full-width forms of the code's own characters read as
    // ASCII (SEC-27, `fixed_full_width_recovery_codes_normalize`), but a full-width letter
    // outside the alphabet is still refused. Each replaces the 9th character, so every case
    // is exercised whatever the random code is.
    let (_p2, codes2) = {
        let bob = uid("bob");
        let r = w.enroll(&bob);
        (r.0, r.1)
    };
    let bob = uid("bob");
    let rc2 = codes2.iter().next().unwrap().as_str().replace('-', "");
    let at_9th = |s: &str| format!("{}{s}{}", &rc2[..8], &rc2[9..]);
    let before = w.failures(&bob);
    for v in [
        format!("{}\u{200B}{}", &rc2[..8], &rc2[8..]), // zero-width space
        format!("{}\u{FEFF}", rc2),                    // BOM
        format!("{}\u{00AD}{}", &rc2[..8], &rc2[8..]), // soft hyphen
        format!("{}\u{2010}{}", &rc2[..8], &rc2[8..]), // Unicode hyphen
        at_9th("\u{212A}"),                            // Kelvin sign
        at_9th("\u{0410}"),                            // Cyrillic A
        at_9th("\u{0131}"),                            // dotless i
        at_9th("\u{FF35}"),                            // full-width U (not in the alphabet)
        at_9th("\u{FF10}\u{0338}"),                    // full-width zero + combining mark
    ] {
        let r = w
            .mfa
            .complete_login(&bob, &w.ticket(&bob), SecondFactor::RecoveryCode(&v));
        assert!(
            matches!(r, Err(Error::RecoveryCodeFormat(_))),
            "{v:?}: {r:?}"
        );
    }
    assert_eq!(w.failures(&bob), before);
    // The genuine code still works once afterwards.
    assert!(
        w.mfa
            .complete_login(&bob, &w.ticket(&bob), SecondFactor::RecoveryCode(&rc2))
            .is_ok()
    );
}

/// SEC-23, SEC-25: a recovery code spent to regenerate the set, and every other old code,
/// stop working at once; the new set works.
#[test]
fn withstood_recovery_code_spent_by_reauth_cannot_log_in() {
    let w = world();
    let alice = uid("alice");
    let (_phone, codes) = w.enroll(&alice);
    let mut it = codes.iter();
    let a = it.next().unwrap().as_str().to_owned();
    let b = it.next().unwrap().as_str().to_owned();
    let new = w
        .mfa
        .regenerate_recovery_codes(&alice, Reauth::Factor(SecondFactor::RecoveryCode(&a)))
        .unwrap();
    for old in [&a, &b] {
        assert!(
            w.mfa
                .complete_login(&alice, &w.ticket(&alice), SecondFactor::RecoveryCode(old))
                .is_err()
        );
    }
    let n = new.iter().next().unwrap().as_str().to_owned();
    assert!(
        w.mfa
            .complete_login(&alice, &w.ticket(&alice), SecondFactor::RecoveryCode(&n))
            .is_ok()
    );
}

// =========================================================================================
// RACES (withstood)
// =========================================================================================

/// SEC-13, SEC-37: one TOTP code raced between logins and disables succeeds exactly once.
#[test]
fn withstood_race_disable_vs_login_with_the_same_totp_code() {
    for _ in 0..20 {
        let w = Arc::new(world_with(no_delay_policy()));
        let alice = uid("alice");
        let (phone, _) = w.enroll(&alice);
        w.clock.advance(30);
        let code = phone.at(w.now());
        let tickets: Vec<String> = (0..4).map(|_| w.ticket(&alice)).collect();
        let w2 = w.clone();
        let res = race(8, move |i| {
            let a = uid("alice");
            if i % 2 == 0 {
                w2.mfa
                    .complete_login(&a, &tickets[i / 2], SecondFactor::Totp(&code))
                    .map(|_| "login")
            } else {
                w2.mfa
                    .disable(&a, Reauth::Factor(SecondFactor::Totp(&code)))
                    .map(|_| "disable")
            }
        });
        let oks: Vec<_> = res.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(oks.len(), 1, "{res:?}");
    }
}

/// SEC-13, SEC-23, SEC-25: regeneration racing recovery-code logins never resurrects an old
/// code, and the new set is complete.
#[test]
fn withstood_race_regenerate_vs_recovery_code_login() {
    for _ in 0..8 {
        // Four codes: one per racing login (fewer PBKDF2 runs keep the test fast).
        let w = Arc::new(world_with(no_delay_policy().with_recovery_codes(4)));
        let alice = uid("alice");
        let (phone, codes) = w.enroll(&alice);
        w.clock.advance(30);
        let totp = phone.at(w.now());
        let old: Vec<String> = codes.iter().map(|c| c.as_str().to_owned()).collect();
        let tickets: Vec<String> = (0..4).map(|_| w.ticket(&alice)).collect();
        let w2 = w.clone();
        let old2 = old.clone();
        let res = race(5, move |i| {
            let a = uid("alice");
            if i == 4 {
                w2.mfa
                    .regenerate_recovery_codes(&a, Reauth::Factor(SecondFactor::Totp(&totp)))
                    .map(Some)
            } else {
                w2.mfa
                    .complete_login(&a, &tickets[i], SecondFactor::RecoveryCode(&old2[i]))
                    .map(|_| None)
            }
        });
        let new = res[4].as_ref().unwrap().as_ref().unwrap();
        // Every old code is dead afterwards (no resurrection), the new set is complete.
        for o in &old {
            let r = w
                .mfa
                .complete_login(&alice, &w.ticket(&alice), SecondFactor::RecoveryCode(o));
            assert!(r.is_err(), "old code resurrected");
        }
        match w.mfa.status(&alice).unwrap() {
            MfaStatus::Active {
                recovery_codes_left,
                ..
            } => assert_eq!(recovery_codes_left, new.len()),
            s => panic!("{s:?}"),
        }
        w.mfa.unlock(&alice).unwrap();
    }
}

/// SEC-35, SEC-07: confirmation racing a new enrollment activates at most once, and only the
/// secret the confirming phone holds.
#[test]
fn withstood_race_confirm_vs_begin() {
    for _ in 0..30 {
        let w = Arc::new(world());
        let alice = uid("alice");
        let e = w.mfa.begin_enrollment(&alice, "alice").unwrap();
        let phone = Phone::from_uri(e.uri().as_str());
        let code = phone.at(w.now());
        let w2 = w.clone();
        let res = race(4, move |i| {
            let a = uid("alice");
            if i % 2 == 0 {
                w2.mfa.confirm_enrollment(&a, &code).map(|_| None)
            } else {
                w2.mfa
                    .begin_enrollment(&a, "alice")
                    .map(|e| Some(e.uri().as_str().to_owned()))
            }
        });
        let confirmed = res.iter().filter(|r| matches!(r, Ok(None))).count();
        assert!(confirmed <= 1);
        if confirmed == 1 {
            // Active with the secret the confirming phone holds: log in with that phone.
            assert!(matches!(
                w.mfa.status(&alice).unwrap(),
                MfaStatus::Active { .. }
            ));
            w.clock.advance(30);
            assert!(
                w.mfa
                    .complete_login(
                        &alice,
                        &w.ticket(&alice),
                        SecondFactor::Totp(&phone.at(w.now()))
                    )
                    .is_ok()
            );
        }
    }
}

/// SEC-39, SEC-23: a step-up token raced between regenerate and disable is spent once.
#[test]
fn withstood_race_step_up_token_double_spend() {
    for _ in 0..20 {
        let w = Arc::new(world_with(no_delay_policy().with_recovery_codes(1)));
        let alice = uid("alice");
        let (phone, _) = w.enroll(&alice);
        w.clock.advance(30);
        let a = w
            .mfa
            .complete_login(
                &alice,
                &w.ticket(&alice),
                SecondFactor::Totp(&phone.at(w.now())),
            )
            .unwrap();
        let tok = a.step_up_token().to_owned();
        let w2 = w.clone();
        let res = race(6, move |i| {
            let u = uid("alice");
            if i % 2 == 0 {
                w2.mfa
                    .regenerate_recovery_codes(&u, Reauth::StepUp(&tok))
                    .map(|_| ())
            } else {
                w2.mfa.disable(&u, Reauth::StepUp(&tok))
            }
        });
        assert_eq!(res.iter().filter(|r| r.is_ok()).count(), 1, "{res:?}");
    }
}

/// SEC-14, SEC-15, SEC-24 (CVE-2024-4629): parallel wrong guesses on every path (TOTP and
/// recovery code, login and reauthentication) are all counted, the number checked never
/// exceeds the lock limit, and the correct code is then refused.
#[test]
fn withstood_race_wrong_guesses_on_every_path_are_all_counted() {
    let w = Arc::new(world_with(fast_policy().with_throttle(Throttle {
        free_failures: 100,
        lock_after: 20,
        ..Throttle::default()
    })));
    let alice = uid("alice");
    let (phone, codes) = w.enroll(&alice);
    let wrong = wrong_code(&phone, w.step());
    let wrong_rc = wrong_recovery(&codes);
    let tickets: Vec<String> = (0..8).map(|_| w.ticket(&alice)).collect();
    let w2 = w.clone();
    let res = race(60, move |i| {
        let a = uid("alice");
        match i % 5 {
            0 => w2
                .mfa
                .complete_login(&a, &tickets[i % 8], SecondFactor::Totp(&wrong))
                .map(|_| ()),
            1 => w2
                .mfa
                .complete_login(&a, &tickets[i % 8], SecondFactor::RecoveryCode(&wrong_rc))
                .map(|_| ()),
            2 => w2
                .mfa
                .disable(&a, Reauth::Factor(SecondFactor::Totp(&wrong))),
            3 => w2
                .mfa
                .regenerate_recovery_codes(
                    &a,
                    Reauth::Factor(SecondFactor::RecoveryCode(&wrong_rc)),
                )
                .map(|_| ()),
            _ => w2
                .mfa
                .regenerate_recovery_codes(&a, Reauth::StepUp("not-a-token"))
                .map(|_| ()),
        }
    });
    let refused = res
        .iter()
        .filter(|r| matches!(r, Err(e) if e.is_refused_factor()))
        .count();
    assert!(res.iter().all(|r| r.is_err()));
    assert_eq!(refused, 20, "evaluated more guesses than the lock allows");
    assert_eq!(w.failures(&alice), 20);
    // And the correct code is now refused (locked).
    w.clock.advance(30);
    assert!(matches!(
        w.mfa.complete_login(
            &alice,
            &w.ticket(&alice),
            SecondFactor::Totp(&phone.at(w.now()))
        ),
        Err(Error::Locked)
    ));
}

/// SEC-13, SEC-43, SEC-44: a mix of every transition raced on one user keeps one success per
/// factor, a decodable record, and a state consistent with the successes.
#[test]
fn withstood_race_login_disable_begin_confirm_mix_keeps_record_consistent() {
    for round in 0..15 {
        let w = Arc::new(world_with(no_delay_policy().with_recovery_codes(2)));
        let alice = uid("alice");
        let (phone, codes) = w.enroll(&alice);
        w.clock.advance(30);
        let c = phone.at(w.now());
        let rc: Vec<String> = codes.iter().map(|c| c.as_str().to_owned()).collect();
        let tickets: Vec<String> = (0..4).map(|_| w.ticket(&alice)).collect();
        let w2 = w.clone();
        let rc_c = rc.clone();
        let res = race(8, move |i| {
            let a = uid("alice");
            match i {
                0 | 1 => w2
                    .mfa
                    .complete_login(&a, &tickets[i], SecondFactor::Totp(&c))
                    .map(|_| "login-totp"),
                2 | 3 => w2
                    .mfa
                    .complete_login(&a, &tickets[i], SecondFactor::RecoveryCode(&rc_c[0]))
                    .map(|_| "login-rc"),
                4 => w2
                    .mfa
                    .disable(&a, Reauth::Factor(SecondFactor::RecoveryCode(&rc_c[1])))
                    .map(|_| "disable"),
                5 => w2.mfa.begin_enrollment(&a, "x").map(|_| "begin"),
                6 => w2.mfa.confirm_enrollment(&a, "000000").map(|_| "confirm"),
                _ => w2
                    .mfa
                    .regenerate_recovery_codes(&a, Reauth::Factor(SecondFactor::Totp(&c)))
                    .map(|_| "regen"),
            }
        });
        let oks: Vec<&str> = res
            .iter()
            .filter_map(|r| r.as_ref().ok().copied())
            .collect();
        // At most one success per spent factor.
        assert!(
            oks.iter()
                .filter(|s| s.starts_with("login-totp") || **s == "regen")
                .count()
                <= 1,
            "{round}: {res:?}"
        );
        assert!(
            oks.iter().filter(|s| **s == "login-rc").count() <= 1,
            "{round}: {res:?}"
        );
        // The record always decodes, and the state matches the successes.
        let st = w.mfa.status(&alice).unwrap();
        let disabled = oks.contains(&"disable");
        let begun = oks.contains(&"begin");
        match st {
            MfaStatus::Disabled => assert!(disabled && !begun, "{res:?}"),
            MfaStatus::Pending { .. } => assert!(disabled && begun, "{res:?}"),
            MfaStatus::Active { .. } => assert!(!disabled, "{res:?}"),
            _ => unreachable!(),
        }
        // A spent recovery code never comes back.
        if oks.contains(&"login-rc") && !disabled {
            assert!(
                w.mfa
                    .complete_login(
                        &alice,
                        &w.ticket(&alice),
                        SecondFactor::RecoveryCode(&rc[0])
                    )
                    .is_err()
            );
        }
    }
}

// =========================================================================================
// THROTTLING (withstood)
// =========================================================================================

/// SEC-30, SEC-14: malformed codes (wrong length, non-ASCII digits, signs, NULs) are refused
/// before any check and not counted; none of them can ever match.
#[test]
fn withstood_malformed_input_is_never_evaluated_nor_accepted() {
    // Malformed inputs are not counted: check that none of them can ever match either.
    let w = world();
    let alice = uid("alice");
    let (phone, _) = w.enroll(&alice);
    w.clock.advance(30);
    let good = phone.at(w.now());
    let t = w.ticket(&alice);
    let fw: String = good
        .chars()
        .map(|c| char::from_u32(c as u32 - 0x30 + 0xFF10).unwrap())
        .collect();
    let arabic: String = good
        .chars()
        .map(|c| char::from_u32(c as u32 - 0x30 + 0x0660).unwrap())
        .collect();
    for bad in [
        format!("{good}0"),
        good[..5].to_owned(),
        format!("{}\u{200B}{}", &good[..3], &good[3..]),
        fw,
        arabic,
        format!("+{good}"),
        format!("-{good}"),
        format!("0x{good}"),
        "".to_owned(),
        "\u{0}".repeat(6),
    ] {
        let r = w.mfa.complete_login(&alice, &t, SecondFactor::Totp(&bad));
        assert!(matches!(r, Err(Error::CodeFormat(_))), "{bad:?}: {r:?}");
    }
    assert_eq!(w.failures(&alice), 0);
    assert!(
        w.mfa
            .complete_login(&alice, &t, SecondFactor::Totp(&good))
            .is_ok()
    );
}

/// SEC-14, SEC-17: setting the server clock back neither forgets failures nor lifts a delay.
#[test]
fn withstood_clock_backwards_does_not_forget_failures_or_delays() {
    let w = world();
    let alice = uid("alice");
    let (phone, _) = w.enroll(&alice);
    let wrong = wrong_code(&phone, w.step());
    let t = w.ticket(&alice);
    for _ in 0..4 {
        let _ = w.mfa.complete_login(&alice, &t, SecondFactor::Totp(&wrong));
    }
    assert_eq!(w.failures(&alice), 4);
    // Clock set back a day: still throttled (retry_at is in the future), count unchanged.
    w.clock.set(T0 - 86_400);
    let t2 = w.ticket(&alice);
    let r = w
        .mfa
        .complete_login(&alice, &t2, SecondFactor::Totp(&wrong));
    assert!(matches!(r, Err(Error::Throttled { .. })), "{r:?}");
    assert_eq!(w.failures(&alice), 4);
    // Set to 0 and to an earlier time than T0 - 1 day: same.
    w.clock.set(0);
    let r = w
        .mfa
        .complete_login(&alice, &w.ticket(&alice), SecondFactor::Totp(&wrong));
    assert!(matches!(r, Err(Error::Throttled { .. })), "{r:?}");
}

/// SEC-14, SEC-34, SEC-41: once locked, no path (enrollment, reauthentication, recovery code,
/// a forged step-up token, time) resets the count; only the host's unlock does.
#[test]
fn withstood_lock_cannot_be_reset_without_a_factor() {
    let w = world_with(fast_policy().with_throttle(Throttle {
        free_failures: 100,
        lock_after: 5,
        ..Throttle::default()
    }));
    let alice = uid("alice");
    let (phone, codes) = w.enroll(&alice);
    let wrong = wrong_code(&phone, w.step());
    for _ in 0..5 {
        let _ = w
            .mfa
            .complete_login(&alice, &w.ticket(&alice), SecondFactor::Totp(&wrong));
    }
    w.clock.advance(30);
    let good = phone.at(w.now());
    let rc = codes.iter().next().unwrap().as_str().to_owned();
    // Every path refuses, none resets the count.
    assert!(matches!(
        w.mfa.begin_enrollment(&alice, "x"),
        Err(Error::AlreadyEnabled)
    ));
    assert!(matches!(
        w.mfa.confirm_enrollment(&alice, &good),
        Err(Error::AlreadyEnabled)
    ));
    assert!(matches!(
        w.mfa
            .disable(&alice, Reauth::Factor(SecondFactor::Totp(&good))),
        Err(Error::Locked)
    ));
    assert!(matches!(
        w.mfa
            .regenerate_recovery_codes(&alice, Reauth::Factor(SecondFactor::RecoveryCode(&rc))),
        Err(Error::Locked)
    ));
    assert!(matches!(
        w.mfa.disable(
            &alice,
            Reauth::StepUp("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        ),
        Err(Error::StepUpInvalid)
    ));
    assert!(matches!(
        w.mfa
            .complete_login(&alice, &w.ticket(&alice), SecondFactor::RecoveryCode(&rc)),
        Err(Error::Locked)
    ));
    // Time does not unlock.
    w.clock.advance(365 * 86_400);
    assert!(matches!(
        w.mfa.complete_login(
            &alice,
            &w.ticket(&alice),
            SecondFactor::Totp(&phone.at(w.now()))
        ),
        Err(Error::Locked)
    ));
    assert_eq!(w.failures(&alice), 5);
}

/// SEC-42, SEC-44: extreme failure counts and times in the record lock or delay, never
/// overflow, never panic (also when formatting the retry time).
#[test]
fn withstood_huge_failure_counts_and_times_in_the_record() {
    let w = world();
    let alice = uid("alice");
    let (phone, _) = w.enroll(&alice);
    for (count, last_at) in [
        (u32::MAX, u64::MAX),
        (u32::MAX, 0),
        (9, u64::MAX),
        (4, u64::MAX - 1),
        (u32::MAX - 1, T0),
    ] {
        w.patch(&alice, |r| {
            r.count = count;
            r.last_at = last_at;
        });
        let st = w.mfa.status(&alice).unwrap();
        let r = w.mfa.complete_login(
            &alice,
            &w.ticket(&alice),
            SecondFactor::Totp(&phone.at(w.now())),
        );
        assert!(
            matches!(r, Err(Error::Locked | Error::Throttled { .. })),
            "{count} {last_at}: {r:?} {st:?}"
        );
        let _ = format!("{}", r.unwrap_err()); // rfc3339 of huge times: no panic
    }
}

// =========================================================================================
// STATE MACHINE (withstood)
// =========================================================================================

/// SEC-33, SEC-39: tickets and step-up tokens are bound to one user and one use; a session
/// token is not a step-up token; mangled tickets are refused.
#[test]
fn withstood_tickets_and_step_up_tokens_are_bound_to_one_user() {
    let w = world();
    let (alice, bob) = (uid("alice"), uid("bob"));
    let (pa, _) = w.enroll(&alice);
    let (pb, _) = w.enroll(&bob);
    w.clock.advance(30);
    let ta = w.ticket(&alice);
    // Alice's ticket for Bob, with Bob's valid code.
    assert!(matches!(
        w.mfa
            .complete_login(&bob, &ta, SecondFactor::Totp(&pb.at(w.now()))),
        Err(Error::ChallengeInvalid)
    ));
    // Alice's ticket with Bob's code for Alice.
    assert!(
        w.mfa
            .complete_login(&alice, &ta, SecondFactor::Totp(&pb.at(w.now())))
            .is_err()
    );
    let a = w
        .mfa
        .complete_login(&alice, &ta, SecondFactor::Totp(&pa.at(w.now())))
        .unwrap();
    // Alice's step-up token for Bob.
    assert!(matches!(
        w.mfa.disable(&bob, Reauth::StepUp(a.step_up_token())),
        Err(Error::StepUpInvalid)
    ));
    // Session token is not a step-up token.
    assert!(matches!(
        w.mfa.disable(&alice, Reauth::StepUp(a.session_token())),
        Err(Error::StepUpInvalid)
    ));
    // Ticket reuse after success.
    assert!(matches!(
        w.mfa
            .complete_login(&alice, &ta, SecondFactor::Totp(&pa.at(w.now() + 30))),
        Err(Error::ChallengeInvalid)
    ));
    // Ticket mangled: case flipped / trailing '=' / non-canonical base64 trailing bits.
    let t = w.ticket(&alice);
    let mut flipped = t.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] ^= 1; // changes trailing bits of the final char
    for bad in [
        t.to_uppercase(),
        format!("{t}="),
        String::from_utf8(flipped).unwrap(),
        format!(" {t}"),
    ] {
        if bad == t {
            continue;
        }
        assert!(
            w.mfa
                .complete_login(&alice, &bad, SecondFactor::Totp(&pa.at(w.now() + 30)))
                .is_err()
        );
    }
}

/// SEC-33, SEC-39: tickets and step-up tokens expire.
#[test]
fn withstood_expired_ticket_and_step_up() {
    let w = world();
    let alice = uid("alice");
    let (phone, _) = w.enroll(&alice);
    let t = w.ticket(&alice);
    w.clock.advance(300);
    assert!(matches!(
        w.mfa
            .complete_login(&alice, &t, SecondFactor::Totp(&phone.at(w.now()))),
        Err(Error::ChallengeExpired)
    ));
    let a = w
        .mfa
        .complete_login(
            &alice,
            &w.ticket(&alice),
            SecondFactor::Totp(&phone.at(w.now())),
        )
        .unwrap();
    w.clock.advance(300);
    assert!(matches!(
        w.mfa.disable(&alice, Reauth::StepUp(a.step_up_token())),
        Err(Error::StepUpInvalid)
    ));
}

/// SEC-38, SEC-39: a newer login supersedes the older step-up token; disable and re-enroll
/// kill every earlier token and ticket, and the old phone's codes.
#[test]
fn withstood_step_up_token_after_disable_and_reenroll() {
    let w = world();
    let alice = uid("alice");
    let (phone, _) = w.enroll(&alice);
    w.clock.advance(30);
    let a1 = w
        .mfa
        .complete_login(
            &alice,
            &w.ticket(&alice),
            SecondFactor::Totp(&phone.at(w.now())),
        )
        .unwrap();
    w.clock.advance(30);
    let a2 = w
        .mfa
        .complete_login(
            &alice,
            &w.ticket(&alice),
            SecondFactor::Totp(&phone.at(w.now())),
        )
        .unwrap();
    // The first step-up token is superseded by the second login.
    assert!(
        w.mfa
            .disable(&alice, Reauth::StepUp(a1.step_up_token()))
            .is_err()
    );
    let old_ticket = w.ticket(&alice);
    w.mfa
        .disable(&alice, Reauth::StepUp(a2.step_up_token()))
        .unwrap();
    let (phone2, _) = w.enroll(&alice);
    // Old step-up (spent) and a step-up that was outstanding before the re-enrollment: dead.
    for tok in [a1.step_up_token(), a2.step_up_token()] {
        assert!(matches!(
            w.mfa.disable(&alice, Reauth::StepUp(tok)),
            Err(Error::StepUpInvalid)
        ));
    }
    // A ticket issued before the disable is dead for the new credential.
    w.clock.advance(30);
    assert!(matches!(
        w.mfa
            .complete_login(&alice, &old_ticket, SecondFactor::Totp(&phone2.at(w.now()))),
        Err(Error::ChallengeInvalid)
    ));
    // The old phone's codes do not work on the new credential.
    assert!(
        w.mfa
            .complete_login(
                &alice,
                &w.ticket(&alice),
                SecondFactor::Totp(&phone.at(w.now()))
            )
            .is_err()
    );
}

/// SEC-35, SEC-36: starting an enrollment never touches an active credential.
#[test]
fn withstood_begin_enrollment_never_overwrites_an_active_secret() {
    let w = world();
    let alice = uid("alice");
    let (phone, _) = w.enroll(&alice);
    let before = w.raw(&alice);
    assert!(matches!(
        w.mfa.begin_enrollment(&alice, "evil"),
        Err(Error::AlreadyEnabled)
    ));
    assert!(matches!(
        w.mfa.confirm_enrollment(&alice, &phone.at(w.now())),
        Err(Error::AlreadyEnabled)
    ));
    assert_eq!(w.raw(&alice), before);
}

/// SEC-32, SEC-40: without an active credential no ticket is valid, a ticket issued before a
/// reset dies with it, and a pending enrollment's status shows nothing secret.
#[test]
fn withstood_no_authorization_without_a_factor_on_non_active_states() {
    let w = world();
    let alice = uid("alice");
    // Disabled: no ticket can be valid.
    assert!(matches!(
        w.mfa.complete_login(
            &alice,
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            SecondFactor::Totp("123456")
        ),
        Err(Error::ChallengeInvalid)
    ));
    // Pending: a challenge issued while active is revoked by disable + begin.
    let (phone, _) = w.enroll(&alice);
    w.clock.advance(30);
    let a = w
        .mfa
        .complete_login(
            &alice,
            &w.ticket(&alice),
            SecondFactor::Totp(&phone.at(w.now())),
        )
        .unwrap();
    let t = w.ticket(&alice);
    w.mfa
        .disable(&alice, Reauth::StepUp(a.step_up_token()))
        .unwrap();
    let e = w.mfa.begin_enrollment(&alice, "alice").unwrap();
    let p2 = Phone::from_uri(e.uri().as_str());
    assert!(matches!(
        w.mfa
            .complete_login(&alice, &t, SecondFactor::Totp(&p2.at(w.now()))),
        Err(Error::ChallengeInvalid)
    ));
    assert!(matches!(
        w.mfa.start_login(&alice).unwrap(),
        LoginStart::NoMfa
    ));
    // Status of a pending enrollment leaks nothing secret.
    let st = format!("{:?}", w.mfa.status(&alice).unwrap());
    assert!(!st.contains(&p2.base32[..8]), "{st}");
}

// =========================================================================================
// TIME (withstood)
// =========================================================================================

/// SEC-02, SEC-42: time 0 and times near `u64::MAX` neither underflow nor overflow; at the
/// very top everything is expired (fail closed).
#[test]
fn withstood_time_zero_and_near_u64_max() {
    // now = 0: enrollment and login work, no underflow in the window.
    let w = world_at(fast_policy(), 0);
    let alice = uid("alice");
    let (phone, _) = w.enroll(&alice);
    let r = w
        .mfa
        .complete_login(&alice, &w.ticket(&alice), SecondFactor::Totp(&phone.at(0)));
    assert!(matches!(r, Err(Error::CodeAlreadyUsed { .. })), "{r:?}");
    w.clock.set(30);
    assert!(
        w.mfa
            .complete_login(&alice, &w.ticket(&alice), SecondFactor::Totp(&phone.at(30)))
            .is_ok()
    );

    // Near u64::MAX: steps at the top of the range.
    let top = u64::MAX - 100;
    let w = world_at(fast_policy(), top);
    let (phone, _) = w.enroll(&alice);
    let s = top / 30;
    let next = phone.step(s + 1); // the future edge of the window
    assert!(
        w.mfa
            .complete_login(&alice, &w.ticket(&alice), SecondFactor::Totp(&next))
            .is_ok()
    );
    // At exactly u64::MAX: every ticket/enrollment is "expired" (saturated expiry == now):
    // fail-closed, no panic.
    w.clock.set(u64::MAX);
    let st = w.mfa.status(&alice).unwrap();
    let _ = st;
    let t = w.ticket(&alice);
    let r = w
        .mfa
        .complete_login(&alice, &t, SecondFactor::Totp(&phone.step(u64::MAX / 30)));
    assert!(matches!(r, Err(Error::ChallengeExpired)), "{r:?}");
    let bob = uid("bob");
    let e = w.mfa.begin_enrollment(&bob, "bob").unwrap();
    let pb = Phone::from_uri(e.uri().as_str());
    assert!(matches!(
        w.mfa.confirm_enrollment(&bob, &pb.step(u64::MAX / 30)),
        Err(Error::EnrollmentExpired)
    ));
    // The otp layer at the very edges.
    let sec = Secret::from_bytes(b"12345678901234567890").unwrap();
    for period in [1u64, 30, 120, 3600] {
        let p = TotpParams::default().with_period(totp_mfa::otp::Period::new(period).unwrap());
        let t = Totp::new(&sec, p).unwrap();
        for now in [0, 1, 29, 30, u64::MAX - 1, u64::MAX] {
            let c = t.generate(now).unwrap();
            for last in [None, Some(0), Some(u64::MAX)] {
                let _ = t
                    .verify(&c, now, Window::symmetric(10).unwrap(), last)
                    .unwrap();
            }
            let _ = t.locate(&c, now, u32::MAX).unwrap();
        }
    }
}

/// SEC-42, SEC-44, SEC-14: a stored T0 in the future (never written by the flows, whose
/// policy requires T0 = 0) gives a typed error, not a panic, and is not counted against the
/// user.
#[test]
fn withstood_non_zero_t0_from_the_store_is_an_uncounted_error_not_a_panic() {
    // Policies only store T0 = 0, so a record with another T0 is corrupt: refused before any
    // attempt is charged (it used to be charged and never refunded).
    let w = world();
    let alice = uid("alice");
    let (phone, _) = w.enroll(&alice);
    let ticket = w.ticket(&alice);
    w.patch(&alice, |r| active_mut(r).params.t0 = u64::MAX);
    for _ in 0..12 {
        let r = w
            .mfa
            .complete_login(&alice, &ticket, SecondFactor::Totp(&phone.at(w.now())));
        assert!(matches!(r, Err(Error::CorruptRecord(_))), "{r:?}");
    }
    w.patch(&alice, |r| active_mut(r).params.t0 = 0);
    assert_eq!(w.failures(&alice), 0);
}

// =========================================================================================
// INPUT (withstood)
// =========================================================================================

/// Megabyte-sized inputs in every text parameter are refused, never accepted, never counted
/// and never panic (SEC-30, SEC-42). The review also timed them (all well under 2 s in a
/// debug build; the account name is trimmed before its length is checked, so it is walked
/// once, linearly); timing is not asserted here, to keep the suite deterministic.
#[test]
fn withstood_giant_inputs_are_refused() {
    let w = world();
    let alice = uid("alice");
    let (_phone, codes) = w.enroll(&alice);
    let t = w.ticket(&alice);
    let mb = 1 << 20;
    let giants: Vec<String> = vec![
        "1".repeat(mb),
        " ".repeat(mb),
        "A".repeat(mb),
        ":".repeat(mb),
        "é".repeat(mb / 2),
        "\u{200B}".repeat(mb / 3),
        format!(
            "{}{}",
            codes.iter().next().unwrap().as_str(),
            " ".repeat(mb)
        ),
        format!("otpauth://totp/{}?secret=JBSWY3DPEHPK3PXP", "a".repeat(mb)),
    ];
    for g in &giants {
        for r in [
            w.mfa
                .complete_login(&alice, &t, SecondFactor::Totp(g))
                .map(|_| ()),
            w.mfa
                .complete_login(&alice, &t, SecondFactor::RecoveryCode(g))
                .map(|_| ()),
            w.mfa
                .complete_login(&alice, g, SecondFactor::Totp("123456"))
                .map(|_| ()),
            w.mfa.disable(&alice, Reauth::StepUp(g)),
            w.mfa
                .regenerate_recovery_codes(&alice, Reauth::Factor(SecondFactor::Totp(g)))
                .map(|_| ()),
            w.mfa.confirm_enrollment(&alice, g).map(|_| ()),
        ] {
            assert!(r.is_err());
        }
        // An account name is trimmed first, so megabytes of trailing white space around a
        // short name are accepted (harmless); anything longer than 256 bytes is not.
        let r = w.mfa.begin_enrollment(&uid("zed"), g);
        assert_eq!(
            r.is_ok(),
            !g.trim().is_empty() && g.trim().len() <= 256 && !g.contains(':')
        );
        assert!(UserId::new(g.as_str()).is_err());
        assert!(OtpAuth::parse(g).is_err());
        assert!(Authenticator::from_uri(g).is_err());
        assert!(Secret::from_base32(g).is_err());
        assert!(Secret::from_hex(g).is_err());
        assert!(Code::parse(g, Digits::SIX).is_err());
        assert!(Mfa::new(MemoryStore::new(), Policy::new(g.as_str())).is_err());
    }
    // Nothing was counted or changed by any of it.
    assert_eq!(w.failures(&alice), 0);
    assert!(matches!(
        w.mfa.status(&uid("zed")).unwrap(),
        MfaStatus::Disabled | MfaStatus::Pending { .. }
    ));
}

/// SEC-28, SEC-30: account names with look-alike colons, control characters, RTL overrides and
/// parameter smuggling either round-trip exactly through the URI or are refused as bad input;
/// the parser refuses duplicate parameters and never panics.
#[test]
fn withstood_odd_unicode_in_names_and_uris() {
    // Account names with look-alike colons, control characters, RTL overrides, NULs.
    let w = world();
    for (i, acct) in [
        "alice\u{FF1A}evil",                         // full-width colon
        "alice\u{A789}evil",                         // modifier letter colon
        "\u{202E}moc.evil@",                         // RTL override
        "a\u{0}b",                                   // NUL
        "a\r\nb",                                    // CRLF
        "%3A",                                       // would decode to a colon
        "a&secret=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", // parameter smuggling
        "a?issuer=Evil",
        "a#frag",
        "😀".repeat(64).as_str(), // 256 bytes exactly
    ]
    .iter()
    .enumerate()
    {
        let u = uid(&format!("u{i}"));
        match w.mfa.begin_enrollment(&u, acct) {
            Ok(e) => {
                let uri = e.uri().as_str().to_owned();
                let parsed = OtpAuth::parse(&uri).unwrap();
                assert_eq!(parsed.issuer(), Some("Example"), "{acct:?} -> {uri}");
                assert_eq!(parsed.account(), acct.trim(), "{acct:?} -> {uri}");
                assert_eq!(parsed.secret().to_base32_grouped().as_str(), e.manual_key());
                #[cfg(feature = "qr")]
                let _ = e.qr_svg();
            }
            Err(err) => assert!(err.is_bad_input(), "{acct:?}: {err:?}"),
        }
    }
    assert!(matches!(
        w.mfa.begin_enrollment(&uid("c"), "a:b"),
        Err(Error::Uri(_))
    ));
    // Duplicate-parameter smuggling and issuer mismatch in parsing.
    assert!(
        OtpAuth::parse("otpauth://totp/X:y?secret=JBSWY3DPEHPK3PXP&SECRET=GEZDGNBVGY3TQOJQ")
            .is_err()
    );
    assert!(
        OtpAuth::parse("otpauth://totp/X:y?secret=JBSWY3DPEHPK3PXP&digits=6&Digits=8").is_err()
    );
    // Lenient by design: dashes in the algorithm name are dropped ("sha-1--" is SHA1).
    assert!(OtpAuth::parse("otpauth://totp/X:y?secret=JBSWY3DPEHPK3PXP&algorithm=sha-1--").is_ok());
    assert!(
        OtpAuth::parse("otpauth://totp/X:y?secret=JBSWY3DPEHPK3PXP&algorithm=sha-1-2").is_err()
    );
    let _ = OtpAuth::parse("otpauth://totp/%F0%9F?secret=JBSWY3DPEHPK3PXP");
    let _ = OtpAuth::parse("otpauth://totp/é?secret=JBSWY3DPEHPK3PXP&algorithm=ééé");
    let _ = OtpAuth::parse("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&algorithm=SHA\u{2011}1");
    let _ = OtpAuth::parse("otpauth://totp/x?secret=%");
    let _ = OtpAuth::parse("otpauth://totp/x?secret=%4");
    let _ = OtpAuth::parse("otpauth://é");
    let _ = OtpAuth::parse("otpauth:/");
    let _ = OtpAuth::parse("OTPAUTHé://totp/x");
}

// =========================================================================================
// RECORD DECODING (withstood): weird-but-valid and invalid crafted records
// =========================================================================================

/// SEC-42, SEC-44, SEC-33: crafted records (short secrets, bad parameters, out-of-bounds
/// rounds, bad lengths, broken structure, sealed fields without keys) fail closed; weird but
/// valid ones never authorize with a spent or unknown factor, and a rewritten ticket key or
/// login epoch kills the open tickets.
#[test]
fn withstood_crafted_records_are_refused_or_handled() {
    let w = world();
    let alice = uid("alice");
    let (phone, codes) = w.enroll(&alice);
    let (_, good) = w.raw(&alice);
    let base = Raw::decode(&good);
    let bob = uid("bob");
    let _ = w.mfa.begin_enrollment(&bob, "bob").unwrap();
    let pending = Raw::decode(&w.raw(&bob).1);

    // Invalid: each must fail closed (CorruptRecord), never panic, never authorize (SEC-42,
    // SEC-44).
    let mut invalid: Vec<(&str, Raw)> = Vec::new();
    for n in 0..16usize {
        let mut r = base.clone();
        *active_mut(&mut r).secret = RawField::Plain(vec![7u8; n]);
        invalid.push(("short secret", r));
        let mut r = pending.clone();
        if let RawState::Pending { secret, .. } = &mut r.state {
            *secret = RawField::Plain(vec![7u8; n]);
        }
        invalid.push(("short pending secret", r));
    }
    let mut r = base.clone();
    *active_mut(&mut r).secret = RawField::Plain(vec![7u8; 129]);
    invalid.push(("long secret", r));
    let mut r = base.clone();
    active_mut(&mut r).params.period = 0;
    invalid.push(("period 0", r));
    let mut r = base.clone();
    active_mut(&mut r).params.period = 3601;
    invalid.push(("period 3601", r));
    for d in [0u8, 5, 9, 255] {
        let mut r = base.clone();
        active_mut(&mut r).params.digits = d;
        invalid.push(("digits", r));
    }
    for a in [0u8, 4, 255] {
        let mut r = base.clone();
        active_mut(&mut r).params.alg = a;
        invalid.push(("algorithm", r));
    }
    for rounds in [0, 999, 1_000_001] {
        let mut r = base.clone();
        *active_mut(&mut r).rounds = rounds;
        invalid.push(("rounds out of bounds", r));
    }
    let mut r = base.clone();
    *active_mut(&mut r).codes = vec![([0; 16], [0; 32]); 33];
    invalid.push(("33 codes", r));
    for n in [0usize, 16, 31, 33] {
        let mut r = base.clone();
        *active_mut(&mut r).ticket_key = RawField::Plain(vec![5u8; n]);
        invalid.push(("ticket key length", r));
    }
    for n in [0usize, 15] {
        let mut r = base.clone();
        *active_mut(&mut r).secret = RawField::Sealed {
            key_id: 1,
            nonce: [0; 24],
            sealed: vec![0; n],
        };
        invalid.push(("sealed field shorter than its tag", r));
    }
    let mut r = pending.clone();
    if let RawState::Pending { account, .. } = &mut r.state {
        *account = vec![0xff, 0xfe];
    }
    invalid.push(("account not UTF-8", r));
    for (what, r) in invalid {
        w.put_bytes(&alice, r.encode());
        let st = w.mfa.status(&alice);
        assert!(matches!(st, Err(Error::CorruptRecord(_))), "{what}: {st:?}");
        let l = w.mfa.start_login(&alice);
        assert!(matches!(l, Err(Error::CorruptRecord(_))), "{what}: {l:?}");
        let c = w.mfa.confirm_enrollment(&alice, &phone.at(w.now()));
        assert!(matches!(c, Err(Error::CorruptRecord(_))), "{what}: {c:?}");
    }
    // A sealed secret while no sealing keys are configured: fails closed too.
    let mut r = base.clone();
    *active_mut(&mut r).secret = RawField::Sealed {
        key_id: 1,
        nonce: [0; 24],
        sealed: vec![0; 36],
    };
    w.put_bytes(&alice, r.encode());
    assert!(matches!(w.mfa.status(&alice), Err(Error::Sealing(_))));
    assert!(matches!(w.mfa.start_login(&alice), Err(Error::Sealing(_))));
    // Structurally broken bytes.
    let secret_field_at = 4 + 1 + 8 + 4 + 8 + 1 + 1; // no step-up grant in `good`
    assert_eq!(good[secret_field_at - 2..secret_field_at + 1], [0, 2, 0]);
    for bytes in [
        vec![],
        b"TMFA".to_vec(),
        b"TMFA\x02".to_vec(),
        b"XMFA\x01".to_vec(),
        {
            let mut b = good.clone();
            b.push(0);
            b
        },
        {
            let mut b = good.clone();
            b.truncate(b.len() - 1);
            b
        },
        {
            let mut b = good.clone();
            b[secret_field_at - 2] = 2; // step-up flag
            b
        },
        {
            let mut b = good.clone();
            b[secret_field_at - 1] = 3; // state
            b
        },
        {
            let mut b = good.clone();
            b[secret_field_at] = 2; // secret-field kind
            b
        },
    ] {
        w.put_bytes(&alice, bytes);
        let st = w.mfa.status(&alice);
        assert!(matches!(st, Err(Error::CorruptRecord(_))), "{st:?}");
    }

    // Weird but valid: must not panic and must not authorize with a spent/unknown factor.
    w.put_bytes(&alice, base.encode());
    w.clock.advance(30);
    // Zero recovery codes: every recovery guess is a counted refusal.
    w.patch(&alice, |r| active_mut(r).codes.clear());
    let rc = codes.iter().next().unwrap().as_str().to_owned();
    assert!(matches!(
        w.mfa
            .complete_login(&alice, &w.ticket(&alice), SecondFactor::RecoveryCode(&rc)),
        Err(Error::WrongRecoveryCode { .. })
    ));
    assert_eq!(w.failures(&alice), 1);
    w.mfa.unlock(&alice).unwrap();
    // last_step at u64::MAX: every code is a replay.
    w.patch(&alice, |r| *active_mut(r).last_step = u64::MAX);
    assert!(matches!(
        w.mfa.complete_login(
            &alice,
            &w.ticket(&alice),
            SecondFactor::Totp(&phone.at(w.now()))
        ),
        Err(Error::CodeAlreadyUsed { .. })
    ));
    w.mfa.unlock(&alice).unwrap();
    // A period of 3600 s (above the policy's 120) is accepted from the store.
    w.patch(&alice, |r| {
        *active_mut(r).last_step = 0;
        active_mut(r).params.period = 3600;
    });
    assert!(matches!(
        w.mfa.status(&alice).unwrap(),
        MfaStatus::Active { .. }
    ));
    // A step-up grant that never expires does not make an unknown token valid.
    w.patch(&alice, |r| {
        r.step_up = Some(([0; 32], u64::MAX));
        active_mut(r).params.period = 30;
    });
    assert!(matches!(
        w.mfa.disable(
            &alice,
            Reauth::StepUp("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        ),
        Err(Error::StepUpInvalid)
    ));
    // Rewriting the ticket key or the login epoch in the store kills every open ticket
    // (SEC-33); a login on a fresh ticket still works, at the largest epoch too.
    // (Each successful login moves the epoch on by one: each value differs from the last.)
    for (key, epoch) in [
        (vec![0u8; 32], 0),
        (vec![0u8; 32], 5),
        (vec![9u8; 32], u64::MAX),
    ] {
        let open = w.ticket(&alice);
        w.patch(&alice, |r| {
            *active_mut(r).ticket_key = RawField::Plain(key.clone());
            *active_mut(r).epoch = epoch;
        });
        w.clock.advance(30);
        assert!(matches!(
            w.mfa
                .complete_login(&alice, &open, SecondFactor::Totp(&phone.at(w.now()))),
            Err(Error::ChallengeInvalid)
        ));
        assert!(
            w.mfa
                .complete_login(
                    &alice,
                    &w.ticket(&alice),
                    SecondFactor::Totp(&phone.at(w.now()))
                )
                .is_ok()
        );
    }
    // Pending with huge attempts / expiry in the past / issued in the future.
    let pb = {
        let e = w.mfa.begin_enrollment(&bob, "bob").unwrap();
        Phone::from_uri(e.uri().as_str())
    };
    w.patch(&bob, |r| {
        if let RawState::Pending {
            attempts, issued, ..
        } = &mut r.state
        {
            *attempts = u32::MAX;
            *issued = u64::MAX;
        }
    });
    assert!(matches!(
        w.mfa.confirm_enrollment(&bob, &pb.at(w.now())),
        Err(Error::EnrollmentAttemptsExhausted)
    ));
    w.patch(&bob, |r| {
        if let RawState::Pending {
            attempts, expires, ..
        } = &mut r.state
        {
            *attempts = 0;
            *expires = 0;
        }
    });
    assert!(matches!(
        w.mfa.confirm_enrollment(&bob, &pb.at(w.now())),
        Err(Error::EnrollmentExpired)
    ));
}

/// Semantic fuzzing: random edge values in every field of a valid record, then every API.
/// No panic, no success with a stale factor, and all errors are typed (SEC-30, SEC-42).
#[test]
fn withstood_randomized_weird_records_never_panic() {
    let edges_u64 = [
        0,
        1,
        29,
        30,
        T0 / 30,
        T0,
        T0 + 30,
        u64::MAX / 2,
        u64::MAX - 1,
        u64::MAX,
    ];
    let edges_u32 = [0u32, 1, 3, 9, 10, 11, 99, 100, u32::MAX - 1, u32::MAX];
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let w = world();
    let alice = uid("alice");
    let (phone, codes) = w.enroll(&alice);
    let rc = codes.iter().next().unwrap().as_str().to_owned();
    let (_, good) = w.raw(&alice);
    let base = Raw::decode(&good);
    for _ in 0..400 {
        let mut r = base.clone();
        r.generation = edges_u64[(rnd() % 10) as usize];
        r.count = edges_u32[(rnd() % 10) as usize];
        r.last_at = edges_u64[(rnd() % 10) as usize];
        if rnd() % 2 == 0 {
            r.step_up = Some(([rnd() as u8; 32], edges_u64[(rnd() % 10) as usize]));
        }
        {
            let a = active_mut(&mut r);
            // Secrets of 128 bits and more: the decoder refuses shorter ones.
            *a.secret = RawField::Plain(vec![rnd() as u8; 16 + (rnd() % 113) as usize]);
            a.params.alg = 1 + (rnd() % 3) as u8;
            a.params.digits = 6 + (rnd() % 3) as u8;
            a.params.period = [1u32, 30, 120, 3600][(rnd() % 4) as usize];
            a.params.t0 = if rnd() % 4 == 0 {
                edges_u64[(rnd() % 10) as usize]
            } else {
                0
            };
            *a.last_step = edges_u64[(rnd() % 10) as usize];
            *a.rounds = 1_000 + (rnd() % 101) as u32; // in bounds, and cheap to check
            a.codes.truncate((rnd() % 11) as usize);
            *a.ticket_key = RawField::Plain(vec![rnd() as u8; 32]);
            *a.epoch = edges_u64[(rnd() % 10) as usize];
        }
        if rnd() % 5 == 0 {
            r.state = RawState::Pending {
                secret: RawField::Plain(vec![1u8; 16 + (rnd() % 113) as usize]),
                params: RawParams {
                    alg: 1 + (rnd() % 3) as u8,
                    digits: 6 + (rnd() % 3) as u8,
                    period: [1u32, 30, 120, 3600][(rnd() % 4) as usize],
                    t0: 0,
                },
                account: ["bob", "", "é:x"][(rnd() % 3) as usize].as_bytes().to_vec(),
                issued: edges_u64[(rnd() % 10) as usize],
                expires: edges_u64[(rnd() % 10) as usize],
                attempts: edges_u32[(rnd() % 10) as usize],
            };
        }
        w.put_bytes(&alice, r.encode());
        w.clock.set(edges_u64[(rnd() % 10) as usize]);
        let now = w.now();
        // A corrupt record (a T0 other than 0) is refused everywhere; nothing panics.
        if w.mfa.status(&alice).is_err() {
            assert!(matches!(
                w.mfa.start_login(&alice),
                Err(Error::CorruptRecord(_))
            ));
            continue;
        }
        let _ = w.mfa.resume_enrollment(&alice);
        let ticket = match w.mfa.start_login(&alice).unwrap() {
            LoginStart::Challenge(c) => Some(c.ticket().to_owned()),
            LoginStart::NoMfa => None,
        };
        if let Some(t) = &ticket {
            let code = phone.app.code_at(now).unwrap();
            let r1 = w.mfa.complete_login(&alice, t, SecondFactor::Totp(&code));
            // The phone's secret was replaced by a random one: a success would be a
            // one-in-a-million collision, not a bypass; but last_step must be honoured.
            if let Ok(a) = &r1 {
                assert_eq!(a.user(), &alice);
            }
            let _ = w
                .mfa
                .complete_login(&alice, t, SecondFactor::RecoveryCode(&rc));
        }
        // (Regenerating with a step-up token hashes a new set before the token is checked:
        // with a factor instead, a wrong one stops before that work.)
        let _ = w
            .mfa
            .regenerate_recovery_codes(&alice, Reauth::Factor(SecondFactor::Totp("123456")));
        let _ = w.mfa.disable(
            &alice,
            Reauth::StepUp("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        );
        let _ = w.mfa.confirm_enrollment(&alice, "123456");
        let _ = w
            .mfa
            .disable(&alice, Reauth::Factor(SecondFactor::Totp("123456")));
        let _ = w.mfa.begin_enrollment(&alice, "alice");
        let _ = w.mfa.unlock(&alice);
        if let Err(e) = w.mfa.status(&alice) {
            panic!("a record written by the crate failed to decode: {e:?}");
        }
    }
}

// =========================================================================================
// SECRETS (withstood)
// =========================================================================================

/// SEC-10, SEC-08, SEC-31: error messages and `Debug` output across the flows never contain
/// the secret, a submitted code, a recovery code or a ticket.
#[test]
fn withstood_errors_and_debug_never_echo_secrets() {
    let w = world();
    let alice = uid("alice");
    let e = w.mfa.begin_enrollment(&alice, "alice").unwrap();
    let phone = Phone::from_uri(e.uri().as_str());
    let key = phone.base32.clone();
    let mut texts = vec![format!("{e:?}"), format!("{:?}", e.uri())];
    // Wrong confirmation codes with a clock-offset hint.
    for off in [-600i64, 600, 0] {
        let code = phone.at(w.now().checked_add_signed(off).unwrap());
        if off == 0 {
            break;
        }
        let err = w.mfa.confirm_enrollment(&alice, &code).unwrap_err();
        texts.push(format!("{err} {err:?}"));
    }
    let codes = w
        .mfa
        .confirm_enrollment(&alice, &phone.at(w.now()))
        .unwrap();
    let rc = codes.iter().next().unwrap().as_str().to_owned();
    texts.push(format!("{codes:?} {:?}", codes.iter().next().unwrap()));
    let t = w.ticket(&alice);
    for f in [
        SecondFactor::Totp("12a456"),
        SecondFactor::Totp("9876543"),
        SecondFactor::RecoveryCode(&rc[..17]),
        SecondFactor::RecoveryCode(&format!("{}U", &rc[..18])),
    ] {
        let err = w.mfa.complete_login(&alice, &t, f).unwrap_err();
        texts.push(format!("{err} {err:?}"));
    }
    texts.push(format!("{:?}", w.mfa.store()));
    texts.push(format!("{:?}", w.store.load(&alice).unwrap()));
    texts.push(format!("{:?}", OtpAuth::parse(e.uri().as_str()).unwrap()));
    texts.push(format!("{:?}", Secret::from_base32(&key).unwrap()));
    texts.push(format!(
        "{}",
        Secret::from_base32(&format!("{key}!")).unwrap_err()
    ));
    texts.push(format!(
        "{}",
        OtpAuth::parse(&format!("otpauth://totp/x?secret={key}&digits=x")).unwrap_err()
    ));
    let all = texts.join("\n");
    for needle in [&key[..12], &rc[..9], &t[..12], "9876", "12a4"] {
        assert!(!all.contains(needle), "{needle} leaked:\n{all}");
    }
}

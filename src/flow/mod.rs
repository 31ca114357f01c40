//! The enrollment and login state machines, pure: each transition maps
//! `(record, input, now, rng)` to a new record to store (or none) and an outcome. No clock,
//! no store, no I/O here; [`Mfa`](crate::Mfa) drives these against a [`Store`](crate::Store).
//!
//! States are named after what they await: a record is `Disabled`, `Pending`
//! (awaiting confirmation) or `Active`; an active user's login is a challenge awaiting a
//! second factor. Values that grant something ([`Authorization`], [`RecoveryCodes`]) have
//! crate-private constructors and are built only on the code path that verified a factor.

pub(crate) mod policy;
pub(crate) mod record;

use core::fmt;

use rand_core::TryCryptoRng;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

use crate::UserId;
use crate::error::{Error, Retry, WrongCodeHint};
use crate::otp::{Code, Totp, TotpParams, Verification};
use crate::recovery::RecoveryCodes;
use crate::secret::Secret;
use crate::uri::{OtpAuth, ProvisioningUri};
use policy::Policy;
use record::{Active, Failures, MAX_CHALLENGES, Pending, Record, State, TokenHash};

/// The result of a transition: the record to write (if anything changed) and the outcome.
/// The driver writes `write` atomically before it returns `result`.
pub(crate) struct Step<T> {
    pub(crate) write: Option<Record>,
    pub(crate) result: Result<T, Error>,
}

impl<T> Step<T> {
    fn fail(e: Error) -> Self {
        Step {
            write: None,
            result: Err(e),
        }
    }

    fn fail_and_write(record: Record, e: Error) -> Self {
        Step {
            write: Some(record),
            result: Err(e),
        }
    }

    fn ok(record: Record, value: T) -> Self {
        Step {
            write: Some(record),
            result: Ok(value),
        }
    }
}

/// A random single-use token (32 bytes, base64url without padding), handed to the host and
/// stored only as a SHA-256 hash. Zeroized on drop, redacted in `Debug`.
#[derive(Clone)]
pub(crate) struct Token(Zeroizing<String>);

impl Token {
    fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<(Token, [u8; 32]), Error> {
        let mut raw = Zeroizing::new([0u8; 32]);
        rng.try_fill_bytes(raw.as_mut()).map_err(|_| Error::Rng)?;
        let text = Zeroizing::new(data_encoding::BASE64URL_NOPAD.encode(raw.as_ref()));
        let hash: [u8; 32] = Sha256::digest(raw.as_ref()).into();
        Ok((Token(text), hash))
    }

    /// The token text to hand to the browser or keep in a server-side session.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Hashes token text as received; `None` if it cannot be one of ours.
fn token_hash(text: &str) -> Option<[u8; 32]> {
    if text.len() != 43 {
        return None;
    }
    let raw = Zeroizing::new(
        data_encoding::BASE64URL_NOPAD
            .decode(text.as_bytes())
            .ok()?,
    );
    if raw.len() != 32 {
        return None;
    }
    Some(Sha256::digest(raw.as_slice()).into())
}

/// Finds `hash` among `tokens` comparing every entry in constant time.
fn find_token(tokens: &[TokenHash], hash: &[u8; 32]) -> Option<usize> {
    let mut found = None;
    for (i, t) in tokens.iter().enumerate() {
        let hit: Choice = t.hash.ct_eq(hash);
        if bool::from(hit) && found.is_none() {
            found = Some(i);
        }
    }
    found
}

/// A pending enrollment, returned once by [`Mfa::begin_enrollment`](crate::Mfa::begin_enrollment):
/// what to show the user so their authenticator app can add the account.
///
/// Show the QR code *and* the manual-entry key beside it, for when scanning fails. The URI
/// and key exist only here: once MFA is active they can never be read again (SEC-09).
pub struct Enrollment {
    uri: ProvisioningUri,
    manual_key: Zeroizing<String>,
    params: TotpParams,
    expires_at: u64,
}

impl Enrollment {
    /// The `otpauth://` URI to encode as a QR code.
    #[must_use]
    pub fn uri(&self) -> &ProvisioningUri {
        &self.uri
    }

    /// The secret in groups of four (`JBSW Y3DP ...`) for typing into an app by hand.
    #[must_use]
    pub fn manual_key(&self) -> &str {
        &self.manual_key
    }

    /// The parameters an app must use; tell the user when they are not the defaults.
    #[must_use]
    pub fn params(&self) -> &TotpParams {
        &self.params
    }

    /// False when the parameters are not SHA-1/6 digits/30 s: some apps (Google
    /// Authenticator among them) ignore them and would show codes that never verify
    /// (SEC-29). Confirmation catches that and says so.
    #[must_use]
    pub fn works_with_every_app(&self) -> bool {
        self.params.is_widely_supported()
    }

    /// When the enrollment expires unless confirmed (Unix seconds).
    #[must_use]
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// The QR code as SVG, for a web page.
    ///
    /// # Errors
    /// [`QrError`](crate::QrError) when the URI does not fit a QR code.
    #[cfg(feature = "qr")]
    pub fn qr_svg(&self) -> Result<Zeroizing<String>, crate::QrError> {
        self.uri.to_svg()
    }

    /// The QR code as Unicode text, for a terminal with the given background.
    ///
    /// # Errors
    /// [`QrError`](crate::QrError) when the URI does not fit a QR code.
    #[cfg(feature = "qr")]
    pub fn qr_terminal(
        &self,
        background: crate::TerminalBackground,
    ) -> Result<Zeroizing<String>, crate::QrError> {
        self.uri.to_terminal(background)
    }
}

impl fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enrollment")
            .field("params", &self.params)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What [`Mfa::start_login`](crate::Mfa::start_login) decided after the host checked the
/// password.
#[must_use]
#[derive(Debug)]
pub enum LoginStart {
    /// The user has no active MFA: the password alone authorizes.
    NoMfa,
    /// A second factor is required: keep the challenge (in a server-side, not-yet-logged-in
    /// session) and ask for a code.
    Challenge(Challenge),
}

/// A login challenge: random, single-use, short-lived, bound to one user (SEC-33). It holds
/// nothing secret about the user, only its own random ticket.
#[derive(Debug)]
pub struct Challenge {
    pub(crate) user: UserId,
    pub(crate) ticket: Token,
    pub(crate) expires_at: u64,
}

impl Challenge {
    /// The user it belongs to.
    #[must_use]
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// The ticket to present with the code in
    /// [`Mfa::complete_login`](crate::Mfa::complete_login).
    #[must_use]
    pub fn ticket(&self) -> &str {
        self.ticket.as_str()
    }

    /// When it expires (Unix seconds).
    #[must_use]
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }
}

/// A second factor as the user entered it.
#[derive(Debug, Clone, Copy)]
pub enum SecondFactor<'a> {
    /// A code from the authenticator app.
    Totp(&'a str),
    /// One of the recovery codes.
    RecoveryCode(&'a str),
}

/// Proof of a fresh second factor for a sensitive change (regenerate recovery codes, disable
/// or reset MFA): a code entered now, or the step-up token of a login completed moments ago.
#[derive(Debug, Clone, Copy)]
pub enum Reauth<'a> {
    /// A second factor entered for this change.
    Factor(SecondFactor<'a>),
    /// The [`Authorization::step_up_token`] of a recent login, usable once.
    StepUp(&'a str),
}

/// Which factor completed a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    /// A TOTP code.
    Totp,
    /// A recovery code (an account-recovery event: tell the user, SEC-26).
    RecoveryCode,
}

/// A completed login: the only value that says "this user passed the second factor". It is
/// built only by the code path that verified the factor (SEC-32, SEC-40).
#[must_use]
pub struct Authorization {
    user: UserId,
    factor: Factor,
    recovery_codes_left: usize,
    recovery_codes_low: bool,
    session_token: Token,
    step_up_token: Token,
    authenticated_at: u64,
}

impl Authorization {
    /// The user who logged in.
    #[must_use]
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// The factor used.
    #[must_use]
    pub fn factor(&self) -> Factor {
        self.factor
    }

    /// Unused recovery codes left.
    #[must_use]
    pub fn recovery_codes_left(&self) -> usize {
        self.recovery_codes_left
    }

    /// True when few recovery codes are left: prompt the user to regenerate them.
    #[must_use]
    pub fn recovery_codes_low(&self) -> bool {
        self.recovery_codes_low
    }

    /// A fresh random session token (256 bits). The crate does not store it: the host does.
    #[must_use]
    pub fn session_token(&self) -> &str {
        self.session_token.as_str()
    }

    /// A single-use token, valid for the policy's step-up lifetime, that proves this fresh
    /// login to [`Mfa::disable`](crate::Mfa::disable) or
    /// [`Mfa::regenerate_recovery_codes`](crate::Mfa::regenerate_recovery_codes) (for a
    /// user who lost the phone and just used a recovery code).
    #[must_use]
    pub fn step_up_token(&self) -> &str {
        self.step_up_token.as_str()
    }

    /// When (Unix seconds).
    #[must_use]
    pub fn authenticated_at(&self) -> u64 {
        self.authenticated_at
    }
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorization")
            .field("user", &self.user)
            .field("factor", &self.factor)
            .field("recovery_codes_left", &self.recovery_codes_left)
            .field("authenticated_at", &self.authenticated_at)
            .finish_non_exhaustive()
    }
}

/// A user's MFA status, for a settings page.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MfaStatus {
    /// MFA is off.
    Disabled,
    /// An enrollment awaits confirmation until `expires_at`.
    Pending {
        /// Unix seconds.
        expires_at: u64,
    },
    /// MFA is on.
    Active {
        /// Unused recovery codes.
        recovery_codes_left: usize,
        /// Consecutive failed attempts.
        failures: u32,
        /// True when the second factor is locked.
        locked: bool,
        /// When the next attempt is allowed, if a delay applies now.
        retry_at: Option<u64>,
    },
}

// ---------------------------------------------------------------------------------------
// Transitions
// ---------------------------------------------------------------------------------------

pub(crate) fn status(rec: &Record, policy: &Policy, now: u64) -> MfaStatus {
    match &rec.state {
        State::Disabled => MfaStatus::Disabled,
        State::Pending(p) if p.expires_at <= now => MfaStatus::Disabled,
        State::Pending(p) => MfaStatus::Pending {
            expires_at: p.expires_at,
        },
        State::Active(a) => MfaStatus::Active {
            recovery_codes_left: a.recovery.remaining(),
            failures: rec.failures.count,
            locked: rec.failures.count >= policy.throttle.lock_after,
            retry_at: retry_at(&rec.failures, policy, now),
        },
    }
}

/// Starts (or restarts) enrollment: a new secret, pending until confirmed. Never replaces an
/// active credential (SEC-35).
pub(crate) fn begin_enrollment<R: TryCryptoRng + ?Sized>(
    rec: &Record,
    policy: &Policy,
    account: &str,
    now: u64,
    rng: &mut R,
) -> Step<Enrollment> {
    if matches!(rec.state, State::Active(_)) {
        return Step::fail(Error::AlreadyEnabled);
    }
    let len = policy.params.algorithm().output_len();
    let secret = match Secret::generate_with_len(rng, len) {
        Ok(s) => s,
        Err(e) => return Step::fail(e.into()),
    };
    let auth = match OtpAuth::totp(Some(&policy.issuer), account, secret.clone(), policy.params) {
        Ok(a) => a,
        Err(e) => return Step::fail(e.into()),
    };
    let expires_at = now.saturating_add(policy.pending_ttl);
    let enrollment = Enrollment {
        uri: auth.to_uri(),
        manual_key: secret.to_base32_grouped(),
        params: policy.params,
        expires_at,
    };
    let mut next = rec.clone();
    next.challenges.clear();
    next.step_up = None;
    next.state = State::Pending(Pending {
        secret,
        params: policy.params,
        account: auth.account().to_owned(),
        issued_at: now,
        expires_at,
        attempts: 0,
    });
    Step::ok(next, enrollment)
}

/// Shows a pending enrollment again (same secret), e.g. after the setup page was reloaded.
/// Reads only.
pub(crate) fn resume_enrollment(rec: &Record, policy: &Policy, now: u64) -> Step<Enrollment> {
    let pending = match &rec.state {
        State::Disabled => return Step::fail(Error::NoPendingEnrollment),
        State::Active(_) => return Step::fail(Error::AlreadyEnabled),
        State::Pending(p) => p,
    };
    if now >= pending.expires_at {
        return Step::fail(Error::EnrollmentExpired);
    }
    let auth = match OtpAuth::totp(
        Some(&policy.issuer),
        &pending.account,
        pending.secret.clone(),
        pending.params,
    ) {
        Ok(a) => a,
        Err(e) => return Step::fail(e.into()),
    };
    Step {
        write: None,
        result: Ok(Enrollment {
            uri: auth.to_uri(),
            manual_key: pending.secret.to_base32_grouped(),
            params: pending.params,
            expires_at: pending.expires_at,
        }),
    }
}

/// Confirms enrollment with a current code: the credential becomes active, its time step
/// counts as used (so the code cannot be replayed to log in), and recovery codes are issued.
pub(crate) fn confirm_enrollment<R: TryCryptoRng + ?Sized>(
    rec: &Record,
    policy: &Policy,
    code: &str,
    now: u64,
    rng: &mut R,
) -> Step<RecoveryCodes> {
    let pending = match &rec.state {
        State::Disabled => return Step::fail(Error::NoPendingEnrollment),
        State::Active(_) => return Step::fail(Error::AlreadyEnabled),
        State::Pending(p) => p,
    };
    if now >= pending.expires_at {
        return Step::fail(Error::EnrollmentExpired);
    }
    if pending.attempts >= policy.confirm_attempts {
        return Step::fail(Error::EnrollmentAttemptsExhausted);
    }
    let code = match Code::parse(code, pending.params.digits()) {
        Ok(c) => c,
        Err(e) => return Step::fail(e.into()),
    };
    let totp = match Totp::new(&pending.secret, pending.params) {
        Ok(t) => t,
        Err(e) => return Step::fail(e.into()),
    };
    let verdict = match totp.verify(&code, now, policy.window, None) {
        Ok(v) => v,
        Err(e) => return Step::fail(e.into()),
    };
    match verdict {
        Verification::Accepted { time_step } => {
            let (codes, hashes) = match RecoveryCodes::generate_with_rounds(
                rng,
                policy.recovery_codes,
                policy.recovery_rounds,
            ) {
                Ok(x) => x,
                Err(e) => return Step::fail(e),
            };
            let mut next = rec.clone();
            next.generation = next.generation.saturating_add(1);
            next.failures = Failures::default();
            next.challenges.clear();
            next.step_up = None;
            next.state = State::Active(Active {
                secret: pending.secret.clone(),
                params: pending.params,
                last_step: time_step,
                activated_at: now,
                recovery: hashes,
            });
            Step::ok(next, codes)
        }
        Verification::Replayed { .. } | Verification::Rejected => {
            let hint = enrollment_hint(&totp, pending, &code, policy, now);
            let mut next = rec.clone();
            let attempts = pending.attempts.saturating_add(1);
            if let State::Pending(p) = &mut next.state {
                p.attempts = attempts;
            }
            Step::fail_and_write(
                next,
                Error::WrongSetupCode {
                    attempts_left: policy.confirm_attempts.saturating_sub(attempts),
                    hint,
                },
            )
        }
    }
}

/// Diagnoses a wrong confirmation code: a match far from now means the device clock is off;
/// a match with default parameters means the app ignored ours.
fn enrollment_hint(
    totp: &Totp,
    pending: &Pending,
    code: &Code,
    policy: &Policy,
    now: u64,
) -> WrongCodeHint {
    let period = pending.params.period().seconds();
    let search = (policy.clock_search_seconds / period).min(200) as u32;
    if let Ok(Some(offset)) = totp.locate(code, now, search) {
        return WrongCodeHint::ClockOffBy {
            seconds: offset.saturating_mul(period as i64),
        };
    }
    if !pending.params.is_widely_supported() {
        for digits in [crate::otp::Digits::SIX, pending.params.digits()] {
            let Ok(fallback) =
                Totp::new(&pending.secret, TotpParams::default().with_digits(digits))
            else {
                continue;
            };
            if let Ok(c) = Code::parse(code.as_str(), digits) {
                if let Ok(Some(_)) = fallback.locate(&c, now, search) {
                    return WrongCodeHint::AppIgnoresParameters;
                }
            }
        }
    }
    WrongCodeHint::CheckDeviceClock
}

/// After the host verified the password: a challenge if MFA is active. Never touches the
/// failure count (SEC-34).
pub(crate) fn start_login<R: TryCryptoRng + ?Sized>(
    rec: &Record,
    policy: &Policy,
    user: &UserId,
    now: u64,
    rng: &mut R,
) -> Step<LoginStart> {
    if !matches!(rec.state, State::Active(_)) {
        return Step {
            write: None,
            result: Ok(LoginStart::NoMfa),
        };
    }
    let (ticket, hash) = match Token::generate(rng) {
        Ok(t) => t,
        Err(e) => return Step::fail(e),
    };
    let expires_at = now.saturating_add(policy.challenge_ttl);
    let mut next = rec.clone();
    next.challenges.retain(|c| c.expires_at > now);
    while next.challenges.len() >= MAX_CHALLENGES {
        next.challenges.remove(0);
    }
    next.challenges.push(TokenHash { hash, expires_at });
    Step::ok(
        next,
        LoginStart::Challenge(Challenge {
            user: user.clone(),
            ticket,
            expires_at,
        }),
    )
}

/// When the next attempt is allowed, if a delay applies now. None once locked: a lock has
/// no end but the host's unlock.
fn retry_at(f: &Failures, policy: &Policy, now: u64) -> Option<u64> {
    if f.count >= policy.throttle.lock_after {
        return None;
    }
    let delay = policy.throttle.delay_after(f.count);
    let at = f.last_at.saturating_add(delay);
    (delay > 0 && at > now).then_some(at)
}

fn retry(f: &Failures, policy: &Policy, now: u64) -> Option<Retry> {
    retry_at(f, policy, now).map(|at| Retry {
        at,
        wait_seconds: at.saturating_sub(now),
    })
}

/// Refuses before any check when locked or inside a delay (SEC-15).
fn throttle_gate(rec: &Record, policy: &Policy, now: u64) -> Result<(), Error> {
    if rec.failures.count >= policy.throttle.lock_after {
        return Err(Error::Locked);
    }
    match retry(&rec.failures, policy, now) {
        Some(retry) => Err(Error::Throttled { retry }),
        None => Ok(()),
    }
}

/// A refused factor: the record to write (the failure counted), if any, and the error.
type Refusal = Box<(Option<Record>, Error)>;

fn refusal(write: Option<Record>, error: Error) -> Refusal {
    Box::new((write, error))
}

/// What a verified factor changes in an active record.
struct Verified {
    active: Active,
    factor: Factor,
}

/// Checks one second factor against an active credential. On success returns the updated
/// credential (step or recovery code consumed); on a refusal returns the record with the
/// failure counted, and the error.
fn check_factor(
    rec: &Record,
    active: &Active,
    policy: &Policy,
    factor: SecondFactor<'_>,
    now: u64,
) -> Result<Verified, Refusal> {
    throttle_gate(rec, policy, now).map_err(|e| refusal(None, e))?;
    let refused = |make: fn(u32, Option<Retry>) -> Error| {
        let mut next = rec.clone();
        next.failures = Failures {
            count: rec.failures.count.saturating_add(1),
            last_at: now,
        };
        let left = policy
            .throttle
            .lock_after
            .saturating_sub(next.failures.count);
        let retry = retry(&next.failures, policy, now);
        let e = make(left, retry);
        refusal(Some(next), e)
    };
    match factor {
        SecondFactor::Totp(text) => {
            let code = Code::parse(text, active.params.digits()).map_err(|e| {
                if crate::recovery::normalize(text).is_ok() {
                    refusal(
                        None,
                        Error::WrongField {
                            entered: Factor::RecoveryCode,
                        },
                    )
                } else {
                    refusal(None, e.into())
                }
            })?;
            let totp =
                Totp::new(&active.secret, active.params).map_err(|e| refusal(None, e.into()))?;
            match totp
                .verify(&code, now, policy.window, Some(active.last_step))
                .map_err(|e| refusal(None, e.into()))?
            {
                Verification::Accepted { time_step } => {
                    let mut a = active.clone();
                    a.last_step = time_step;
                    Ok(Verified {
                        active: a,
                        factor: Factor::Totp,
                    })
                }
                Verification::Replayed { .. } => {
                    Err(refused(|attempts_left, retry| Error::CodeAlreadyUsed {
                        attempts_left,
                        retry,
                    }))
                }
                Verification::Rejected => Err(refused(|attempts_left, retry| Error::WrongCode {
                    attempts_left,
                    retry,
                    hint: WrongCodeHint::CheckDeviceClock,
                })),
            }
        }
        SecondFactor::RecoveryCode(text) => {
            let found = active.recovery.find(text).map_err(|e| {
                if Code::parse(text, active.params.digits()).is_ok() {
                    refusal(
                        None,
                        Error::WrongField {
                            entered: Factor::Totp,
                        },
                    )
                } else {
                    refusal(None, e.into())
                }
            })?;
            match found {
                Some(index) => {
                    let mut a = active.clone();
                    a.recovery = a.recovery.without(index);
                    Ok(Verified {
                        active: a,
                        factor: Factor::RecoveryCode,
                    })
                }
                None => Err(refused(|attempts_left, retry| Error::WrongRecoveryCode {
                    attempts_left,
                    retry,
                })),
            }
        }
    }
}

/// Answers a challenge. Success consumes the ticket and the factor, resets the failure
/// count, and returns the [`Authorization`] with fresh tokens.
pub(crate) fn complete_login<R: TryCryptoRng + ?Sized>(
    rec: &Record,
    policy: &Policy,
    user: &UserId,
    ticket: &str,
    factor: SecondFactor<'_>,
    now: u64,
    rng: &mut R,
) -> Step<Authorization> {
    let State::Active(active) = &rec.state else {
        return Step::fail(Error::ChallengeInvalid);
    };
    let Some(hash) = token_hash(ticket) else {
        return Step::fail(Error::ChallengeInvalid);
    };
    let Some(index) = find_token(&rec.challenges, &hash) else {
        return Step::fail(Error::ChallengeInvalid);
    };
    if rec.challenges[index].expires_at <= now {
        return Step::fail(Error::ChallengeExpired);
    }
    let verified = match check_factor(rec, active, policy, factor, now) {
        Ok(v) => v,
        Err(refused) => {
            let (write, e) = *refused;
            return Step {
                write,
                result: Err(e),
            };
        }
    };
    let (session_token, _) = match Token::generate(rng) {
        Ok(t) => t,
        Err(e) => return Step::fail(e),
    };
    let (step_up_token, step_up_hash) = match Token::generate(rng) {
        Ok(t) => t,
        Err(e) => return Step::fail(e),
    };
    let left = verified.active.recovery.remaining();
    let mut next = rec.clone();
    next.challenges.remove(index);
    next.failures = Failures::default();
    next.step_up = Some(TokenHash {
        hash: step_up_hash,
        expires_at: now.saturating_add(policy.step_up_ttl),
    });
    next.state = State::Active(verified.active);
    Step::ok(
        next,
        Authorization {
            user: user.clone(),
            factor: verified.factor,
            recovery_codes_left: left,
            recovery_codes_low: left <= policy.low_recovery_codes,
            session_token,
            step_up_token,
            authenticated_at: now,
        },
    )
}

/// Verifies a fresh factor for a sensitive change; returns the record with the factor
/// consumed (and the count reset), or the refusal to write.
fn reauthenticate(
    rec: &Record,
    policy: &Policy,
    reauth: Reauth<'_>,
    now: u64,
) -> Result<Record, Refusal> {
    let State::Active(active) = &rec.state else {
        return Err(refusal(None, Error::NotEnabled));
    };
    match reauth {
        Reauth::StepUp(text) => {
            let valid = match (&rec.step_up, token_hash(text)) {
                (Some(grant), Some(hash)) => {
                    bool::from(grant.hash.ct_eq(&hash)) && grant.expires_at > now
                }
                _ => false,
            };
            if !valid {
                return Err(refusal(None, Error::StepUpInvalid));
            }
            let mut next = rec.clone();
            next.step_up = None;
            Ok(next)
        }
        Reauth::Factor(factor) => {
            let verified = check_factor(rec, active, policy, factor, now)?;
            let mut next = rec.clone();
            next.failures = Failures::default();
            next.state = State::Active(verified.active);
            Ok(next)
        }
    }
}

/// Replaces all recovery codes after a fresh second factor (SEC-25).
pub(crate) fn regenerate_recovery_codes<R: TryCryptoRng + ?Sized>(
    rec: &Record,
    policy: &Policy,
    reauth: Reauth<'_>,
    now: u64,
    rng: &mut R,
) -> Step<RecoveryCodes> {
    let mut next = match reauthenticate(rec, policy, reauth, now) {
        Ok(n) => n,
        Err(refused) => {
            let (write, e) = *refused;
            return Step {
                write,
                result: Err(e),
            };
        }
    };
    let (codes, hashes) = match RecoveryCodes::generate_with_rounds(
        rng,
        policy.recovery_codes,
        policy.recovery_rounds,
    ) {
        Ok(x) => x,
        Err(e) => return Step::fail(e),
    };
    if let State::Active(a) = &mut next.state {
        a.recovery = hashes;
    }
    Step::ok(next, codes)
}

/// Turns MFA off (also the "reset" after a lost device) after a fresh second factor
/// (SEC-37). The secret and recovery codes are dropped; challenges are revoked (SEC-38).
pub(crate) fn disable(rec: &Record, policy: &Policy, reauth: Reauth<'_>, now: u64) -> Step<()> {
    let mut next = match reauthenticate(rec, policy, reauth, now) {
        Ok(n) => n,
        Err(refused) => {
            let (write, e) = *refused;
            return Step {
                write,
                result: Err(e),
            };
        }
    };
    next.state = State::Disabled;
    next.challenges.clear();
    next.step_up = None;
    next.failures = Failures::default();
    Step::ok(next, ())
}

/// The host's administrative unlock after out-of-band identity proofing: clears the count.
pub(crate) fn unlock(rec: &Record) -> Step<()> {
    if rec.failures == Failures::default() {
        return Step {
            write: None,
            result: Ok(()),
        };
    }
    let mut next = rec.clone();
    next.failures = Failures::default();
    Step::ok(next, ())
}

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

use hmac::{Hmac, KeyInit, Mac};
use rand_core::TryCryptoRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::UserId;
use crate::error::{Error, Retry, WrongCodeHint};
use crate::otp::{Code, Totp, TotpParams, Verification};
use crate::recovery::{CODE_CHARS, HashedRecoveryCodes, RecoveryCodes, SALT_LEN};
use crate::secret::Secret;
use crate::uri::{OtpAuth, ProvisioningUri};
use policy::Policy;
use record::{Active, Failures, Key32, Pending, Record, State, TokenHash};

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

/// A second factor as the user entered it. `Debug` does not show the text (SEC-10).
#[derive(Clone, Copy)]
pub enum SecondFactor<'a> {
    /// A code from the authenticator app.
    Totp(&'a str),
    /// One of the recovery codes.
    RecoveryCode(&'a str),
}

impl<'a> SecondFactor<'a> {
    /// Reads one field that takes either: a recovery code when `text` has a recovery code's
    /// shape (16 characters of its alphabet, with any dashes, spaces and case), otherwise an
    /// app code. The two cannot be confused: an app code is 6 to 8 digits. Separate fields
    /// (or a "use a recovery code" link) are clearer for most people; this is for the
    /// single prompt, a command line, or an API.
    ///
    /// ```
    /// use totp_mfa::SecondFactor;
    /// assert!(matches!(SecondFactor::detect("287 082"), SecondFactor::Totp("287 082")));
    /// assert!(matches!(
    ///     SecondFactor::detect("7k2m-9qpx-4hwr-c3td"),
    ///     SecondFactor::RecoveryCode(_)
    /// ));
    /// // Neither shape: checked as an app code, which refuses it as malformed.
    /// assert!(matches!(SecondFactor::detect("hello"), SecondFactor::Totp(_)));
    /// ```
    #[must_use]
    pub fn detect(text: &'a str) -> Self {
        if crate::recovery::normalize(text).is_ok() {
            SecondFactor::RecoveryCode(text)
        } else {
            SecondFactor::Totp(text)
        }
    }
}

/// Proof of a fresh second factor for a sensitive change (regenerate recovery codes, disable
/// or reset MFA): a code entered now, or the step-up token of a login completed moments ago.
/// `Debug` does not show the text (SEC-10).
#[derive(Clone, Copy)]
pub enum Reauth<'a> {
    /// A second factor entered for this change.
    Factor(SecondFactor<'a>),
    /// The [`Authorization::step_up_token`] of a recent login, usable once.
    StepUp(&'a str),
}

impl fmt::Debug for SecondFactor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecondFactor::Totp(_) => f.write_str("Totp(<redacted>)"),
            SecondFactor::RecoveryCode(_) => f.write_str("RecoveryCode(<redacted>)"),
        }
    }
}

impl fmt::Debug for Reauth<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reauth::Factor(factor) => f.debug_tuple("Factor").field(factor).finish(),
            Reauth::StepUp(_) => f.write_str("StepUp(<redacted>)"),
        }
    }
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
    generation: u64,
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

    /// The generation of the credential that was used: it grows each time MFA is activated.
    /// Keep it with the session; when [`MfaStatus::Active`] later reports another generation
    /// (MFA was reset and enrolled again), end the session (SEC-38).
    #[must_use]
    pub fn credential_generation(&self) -> u64 {
        self.generation
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
        /// The credential's generation (see [`Authorization::credential_generation`]).
        generation: u64,
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
//
// Checking a second factor takes three steps, so that every attempt is charged before any
// expensive work and no expensive work is repeated when a write loses a race (SEC-15):
//   1. charge: a cheap transition that checks the ticket and the throttle, parses the input
//      and writes the failure count plus one;
//   2. evaluate: the HMAC or PBKDF2 work, once, on a snapshot, with no write;
//   3. commit: a cheap transition that re-checks what may have changed meanwhile (the step
//      or recovery code still unused, the ticket still live), consumes the factor and
//      refunds the charge by resetting the count.
// A wrong factor needs no commit: its failure was written in step 1.
// ---------------------------------------------------------------------------------------

pub(crate) fn status(rec: &Record, policy: &Policy, now: u64) -> MfaStatus {
    match &rec.state {
        State::Disabled => MfaStatus::Disabled,
        State::Pending(p) if p.expires_at <= now => MfaStatus::Disabled,
        State::Pending(p) => MfaStatus::Pending {
            expires_at: p.expires_at,
        },
        State::Active(a) => MfaStatus::Active {
            generation: rec.generation,
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

/// A confirmation attempt, charged against the pending enrollment's attempts.
pub(crate) struct ChargedSetup {
    code: Code,
    pending: Pending,
    now: u64,
}

/// Step 1 of confirming an enrollment: checks the pending state and the code's shape, and
/// counts the attempt.
pub(crate) fn charge_confirmation(
    rec: &Record,
    policy: &Policy,
    code: &str,
    now: u64,
) -> Step<ChargedSetup> {
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
    let mut next = rec.clone();
    let mut charged = pending.clone();
    charged.attempts = pending.attempts.saturating_add(1);
    next.state = State::Pending(charged.clone());
    Step::ok(
        next,
        ChargedSetup {
            code,
            pending: charged,
            now,
        },
    )
}

/// Step 2 of confirming an enrollment: the time step the code matches, or the refusal with a
/// diagnosis (device clock off, or an app that ignores the parameters).
pub(crate) fn evaluate_confirmation(charged: &ChargedSetup, policy: &Policy) -> Result<u64, Error> {
    let pending = &charged.pending;
    let totp = Totp::new(&pending.secret, pending.params)?;
    match totp.verify(&charged.code, charged.now, policy.window, None)? {
        Verification::Accepted { time_step } => Ok(time_step),
        Verification::Replayed { .. } | Verification::Rejected => Err(Error::WrongSetupCode {
            attempts_left: policy.confirm_attempts.saturating_sub(pending.attempts),
            hint: enrollment_hint(&totp, pending, &charged.code, policy, charged.now),
        }),
    }
}

/// What activation needs that is expensive or random, made once before the commit.
pub(crate) struct Activation {
    pub(crate) codes: RecoveryCodes,
    pub(crate) hashes: HashedRecoveryCodes,
    pub(crate) ticket_key: Key32,
}

impl Activation {
    pub(crate) fn generate<R: TryCryptoRng + ?Sized>(
        policy: &Policy,
        rng: &mut R,
    ) -> Result<Self, Error> {
        let (codes, hashes) = RecoveryCodes::generate_with_rounds(
            rng,
            policy.recovery_codes,
            policy.recovery_rounds,
        )?;
        let mut key = [0u8; 32];
        rng.try_fill_bytes(&mut key).map_err(|_| Error::Rng)?;
        let ticket_key = Key32(key);
        zeroize::Zeroize::zeroize(&mut key);
        Ok(Activation {
            codes,
            hashes,
            ticket_key,
        })
    }
}

/// Step 3 of confirming an enrollment: the same pending secret becomes active, with the
/// confirmation code's step counted as used and the prepared recovery codes.
pub(crate) fn commit_activation(
    rec: &Record,
    charged: &ChargedSetup,
    time_step: u64,
    activation: &Activation,
    now: u64,
) -> Step<RecoveryCodes> {
    let pending = match &rec.state {
        State::Active(_) => return Step::fail(Error::AlreadyEnabled),
        State::Pending(p) if p.secret == charged.pending.secret => p,
        // Replaced or disabled meanwhile.
        _ => return Step::fail(Error::NoPendingEnrollment),
    };
    let mut next = rec.clone();
    next.generation = next.generation.saturating_add(1);
    next.failures = Failures::default();
    next.step_up = None;
    next.state = State::Active(Active {
        secret: pending.secret.clone(),
        params: pending.params,
        last_step: time_step,
        activated_at: now,
        recovery: activation.hashes.clone(),
        ticket_key: activation.ticket_key.clone(),
        epoch: 0,
    });
    Step::ok(next, activation.codes.clone())
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

// ------------------------------------------------------------------------ login tickets

const TICKET_NONCE: usize = 16;
const TICKET_TAG: usize = 32;
const TICKET_LEN: usize = TICKET_NONCE + 8 + TICKET_TAG;

/// HMAC-SHA256 over everything a ticket is bound to: the user, the credential's generation,
/// the login epoch (so a successful login spends every open ticket), a random nonce and the
/// expiry.
fn ticket_tag(
    active: &Active,
    generation: u64,
    user: &UserId,
    nonce: &[u8],
    expires_at: u64,
) -> Result<[u8; TICKET_TAG], Error> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&active.ticket_key.0)
        .map_err(|_| Error::Otp(crate::otp::OtpError::InvalidKey))?;
    mac.update(b"totp-mfa/login-ticket/v1");
    mac.update(&(user.as_str().len() as u64).to_be_bytes());
    mac.update(user.as_str().as_bytes());
    mac.update(&generation.to_be_bytes());
    mac.update(&active.epoch.to_be_bytes());
    mac.update(nonce);
    mac.update(&expires_at.to_be_bytes());
    Ok(mac.finalize().into_bytes().into())
}

/// Checks a ticket's MAC (in constant time) and then its expiry.
fn check_ticket(
    rec: &Record,
    active: &Active,
    user: &UserId,
    ticket: &str,
    now: u64,
) -> Result<(), Error> {
    // 56 bytes are 75 base64url characters; anything else is not one of ours.
    if ticket.len() != 75 {
        return Err(Error::ChallengeInvalid);
    }
    let raw = Zeroizing::new(
        data_encoding::BASE64URL_NOPAD
            .decode(ticket.as_bytes())
            .map_err(|_| Error::ChallengeInvalid)?,
    );
    if raw.len() != TICKET_LEN {
        return Err(Error::ChallengeInvalid);
    }
    let (nonce, rest) = raw.split_at(TICKET_NONCE);
    let (expiry, tag) = rest.split_at(8);
    let mut e = [0u8; 8];
    e.copy_from_slice(expiry);
    let expires_at = u64::from_be_bytes(e);
    let expected = ticket_tag(active, rec.generation, user, nonce, expires_at)?;
    if !bool::from(expected.as_slice().ct_eq(tag)) {
        return Err(Error::ChallengeInvalid);
    }
    if expires_at <= now {
        return Err(Error::ChallengeExpired);
    }
    Ok(())
}

/// After the host verified the password: a challenge if MFA is active. Writes nothing, so a
/// flood of logins cannot evict anyone's challenge or contend with real attempts, and never
/// touches the failure count (SEC-34).
pub(crate) fn start_login<R: TryCryptoRng + ?Sized>(
    rec: &Record,
    policy: &Policy,
    user: &UserId,
    now: u64,
    rng: &mut R,
) -> Step<LoginStart> {
    let State::Active(active) = &rec.state else {
        return Step {
            write: None,
            result: Ok(LoginStart::NoMfa),
        };
    };
    let expires_at = now.saturating_add(policy.challenge_ttl);
    let mut raw = Zeroizing::new([0u8; TICKET_LEN]);
    if rng.try_fill_bytes(&mut raw[..TICKET_NONCE]).is_err() {
        return Step::fail(Error::Rng);
    }
    raw[TICKET_NONCE..TICKET_NONCE + 8].copy_from_slice(&expires_at.to_be_bytes());
    let tag = match ticket_tag(
        active,
        rec.generation,
        user,
        &raw[..TICKET_NONCE],
        expires_at,
    ) {
        Ok(t) => t,
        Err(e) => return Step::fail(e),
    };
    raw[TICKET_NONCE + 8..].copy_from_slice(&tag);
    let ticket = Token(Zeroizing::new(
        data_encoding::BASE64URL_NOPAD.encode(raw.as_ref()),
    ));
    Step {
        write: None,
        result: Ok(LoginStart::Challenge(Challenge {
            user: user.clone(),
            ticket,
            expires_at,
        })),
    }
}

// --------------------------------------------------------------------------- throttling

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

// ------------------------------------------------------------------ checking a factor

/// A second factor in canonical form.
enum Parsed {
    Totp(Code),
    Recovery(Zeroizing<[u8; CODE_CHARS]>),
}

/// A factor whose attempt has been charged: what step 2 needs, as a snapshot.
pub(crate) struct Charged {
    parsed: Parsed,
    credential: Active,
    generation: u64,
    failures: Failures,
    now: u64,
}

impl Charged {
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }
}

/// What step 2 found.
pub(crate) enum Verdict {
    /// The code matches this time step (the latest in the window that matches).
    Step(u64),
    /// The recovery code with this salt matches.
    Recovery([u8; SALT_LEN]),
}

impl Verdict {
    fn factor(&self) -> Factor {
        match self {
            Verdict::Step(_) => Factor::Totp,
            Verdict::Recovery(_) => Factor::RecoveryCode,
        }
    }
}

fn parse_factor(active: &Active, factor: SecondFactor<'_>) -> Result<Parsed, Error> {
    match factor {
        SecondFactor::Totp(text) => match Code::parse(text, active.params.digits()) {
            Ok(code) => Ok(Parsed::Totp(code)),
            Err(_) if crate::recovery::normalize(text).is_ok() => Err(Error::WrongField {
                entered: Factor::RecoveryCode,
            }),
            Err(e) => Err(e.into()),
        },
        SecondFactor::RecoveryCode(text) => match crate::recovery::normalize(text) {
            Ok(chars) => Ok(Parsed::Recovery(chars)),
            Err(_) if Code::parse(text, active.params.digits()).is_ok() => Err(Error::WrongField {
                entered: Factor::Totp,
            }),
            Err(e) => Err(e.into()),
        },
    }
}

/// Step 1 for any factor check: throttle, parse, charge.
fn charge(
    rec: &Record,
    active: &Active,
    policy: &Policy,
    factor: SecondFactor<'_>,
    now: u64,
) -> Step<Charged> {
    if let Err(e) = throttle_gate(rec, policy, now) {
        return Step::fail(e);
    }
    let parsed = match parse_factor(active, factor) {
        Ok(p) => p,
        Err(e) => return Step::fail(e),
    };
    let mut next = rec.clone();
    next.failures = Failures {
        count: rec.failures.count.saturating_add(1),
        last_at: now,
    };
    let failures = next.failures;
    Step::ok(
        next,
        Charged {
            parsed,
            credential: active.clone(),
            generation: rec.generation,
            failures,
            now,
        },
    )
}

/// Step 1 of a login: the ticket must be live and bound to this user, then the attempt is
/// charged.
pub(crate) fn charge_login(
    rec: &Record,
    policy: &Policy,
    user: &UserId,
    ticket: &str,
    factor: SecondFactor<'_>,
    now: u64,
) -> Step<Charged> {
    let State::Active(active) = &rec.state else {
        return Step::fail(Error::ChallengeInvalid);
    };
    if let Err(e) = check_ticket(rec, active, user, ticket, now) {
        return Step::fail(e);
    }
    charge(rec, active, policy, factor, now)
}

/// Step 1 of a sensitive change with a fresh factor.
pub(crate) fn charge_reauth(
    rec: &Record,
    policy: &Policy,
    factor: SecondFactor<'_>,
    now: u64,
) -> Step<Charged> {
    let State::Active(active) = &rec.state else {
        return Step::fail(Error::NotEnabled);
    };
    charge(rec, active, policy, factor, now)
}

/// Step 2: the expensive check, once, on the snapshot. A wrong factor becomes its error here
/// (its failure is already stored); so does a code whose step was already used.
pub(crate) fn evaluate(charged: &Charged, policy: &Policy) -> Result<Verdict, Error> {
    let left = policy
        .throttle
        .lock_after
        .saturating_sub(charged.failures.count);
    let retry = retry(&charged.failures, policy, charged.now);
    let active = &charged.credential;
    match &charged.parsed {
        Parsed::Totp(code) => {
            let totp = Totp::new(&active.secret, active.params)?;
            match totp.verify(code, charged.now, policy.window, None)? {
                Verification::Accepted { time_step } if time_step > active.last_step => {
                    Ok(Verdict::Step(time_step))
                }
                Verification::Accepted { .. } | Verification::Replayed { .. } => {
                    Err(Error::CodeAlreadyUsed {
                        attempts_left: left,
                        retry,
                    })
                }
                Verification::Rejected => Err(Error::WrongCode {
                    attempts_left: left,
                    retry,
                    hint: WrongCodeHint::CheckDeviceClock,
                }),
            }
        }
        Parsed::Recovery(chars) => match active.recovery.find_normalized(chars) {
            Some(i) => Ok(Verdict::Recovery(active.recovery.codes[i].salt)),
            None => Err(Error::WrongRecoveryCode {
                attempts_left: left,
                retry,
            }),
        },
    }
}

/// Step 3, common part: the credential must be the one checked, and the factor still
/// unused; returns the credential with the factor consumed.
fn consume(
    rec: &Record,
    policy: &Policy,
    generation: u64,
    verdict: &Verdict,
    now: u64,
    gone: Error,
) -> Result<Active, Error> {
    let State::Active(active) = &rec.state else {
        return Err(gone);
    };
    if rec.generation != generation {
        return Err(gone);
    }
    let left = policy
        .throttle
        .lock_after
        .saturating_sub(rec.failures.count);
    let retry = retry(&rec.failures, policy, now);
    let mut a = active.clone();
    match verdict {
        Verdict::Step(step) => {
            // A concurrent request may have used this step (or a later one) meanwhile.
            if *step <= active.last_step {
                return Err(Error::CodeAlreadyUsed {
                    attempts_left: left,
                    retry,
                });
            }
            a.last_step = *step;
        }
        Verdict::Recovery(salt) => match active.recovery.position_of_salt(salt) {
            Some(i) => a.recovery = active.recovery.without(i),
            None => {
                return Err(Error::WrongRecoveryCode {
                    attempts_left: left,
                    retry,
                });
            }
        },
    }
    Ok(a)
}

/// Fresh tokens for an authorization, made once before the commit.
pub(crate) struct LoginTokens {
    session: Token,
    step_up: Token,
    step_up_hash: [u8; 32],
}

impl LoginTokens {
    pub(crate) fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self, Error> {
        let (session, _) = Token::generate(rng)?;
        let (step_up, step_up_hash) = Token::generate(rng)?;
        Ok(LoginTokens {
            session,
            step_up,
            step_up_hash,
        })
    }
}

/// Step 3 of a login: consume the factor and the ticket (every open ticket: the epoch moves
/// on), reset the count, issue the authorization.
#[allow(clippy::too_many_arguments)]
pub(crate) fn commit_login(
    rec: &Record,
    policy: &Policy,
    user: &UserId,
    ticket: &str,
    generation: u64,
    verdict: &Verdict,
    tokens: &LoginTokens,
    now: u64,
) -> Step<Authorization> {
    let mut a = match consume(
        rec,
        policy,
        generation,
        verdict,
        now,
        Error::ChallengeInvalid,
    ) {
        Ok(a) => a,
        Err(e) => return Step::fail(e),
    };
    // Another login may have succeeded meanwhile and spent this ticket.
    if let Err(e) = check_ticket(rec, &a, user, ticket, now) {
        return Step::fail(e);
    }
    // Wrapping, so the epoch always changes: a success must spend every open ticket.
    a.epoch = a.epoch.wrapping_add(1);
    let left = a.recovery.remaining();
    let mut next = rec.clone();
    next.failures = Failures::default();
    next.step_up = Some(TokenHash {
        hash: tokens.step_up_hash,
        expires_at: now.saturating_add(policy.step_up_ttl),
    });
    next.state = State::Active(a);
    Step::ok(
        next,
        Authorization {
            user: user.clone(),
            factor: verdict.factor(),
            recovery_codes_left: left,
            recovery_codes_low: left <= policy.low_recovery_codes,
            session_token: tokens.session.clone(),
            step_up_token: tokens.step_up.clone(),
            authenticated_at: now,
            generation: rec.generation,
        },
    )
}

/// What a sensitive change was proven with.
pub(crate) enum Proof<'a> {
    /// A factor checked in steps 1 and 2, consumed now.
    Factor {
        generation: u64,
        verdict: &'a Verdict,
    },
    /// A step-up token, checked and consumed now (256 random bits: nothing to throttle).
    StepUp(&'a str),
}

impl Proof<'_> {
    /// The record with the proof consumed (and, for a factor, the count reset).
    fn apply(&self, rec: &Record, policy: &Policy, now: u64) -> Result<Record, Error> {
        let State::Active(_) = &rec.state else {
            return Err(Error::NotEnabled);
        };
        let mut next = rec.clone();
        match self {
            Proof::Factor {
                generation,
                verdict,
            } => {
                let a = consume(rec, policy, *generation, verdict, now, Error::NotEnabled)?;
                next.failures = Failures::default();
                next.state = State::Active(a);
            }
            Proof::StepUp(text) => {
                check_step_up(rec, text, now)?;
                next.step_up = None;
            }
        }
        Ok(next)
    }
}

/// A step-up token is valid when MFA is active and it matches the live grant.
fn check_step_up(rec: &Record, text: &str, now: u64) -> Result<(), Error> {
    let State::Active(_) = &rec.state else {
        return Err(Error::NotEnabled);
    };
    let valid = match (&rec.step_up, token_hash(text)) {
        (Some(grant), Some(hash)) => bool::from(grant.hash.ct_eq(&hash)) && grant.expires_at > now,
        _ => false,
    };
    if valid {
        Ok(())
    } else {
        Err(Error::StepUpInvalid)
    }
}

/// Checks a step-up token without consuming it, so that a bogus token costs no work (the
/// commit checks it again and consumes it).
pub(crate) fn peek_step_up(rec: &Record, text: &str, now: u64) -> Step<()> {
    Step {
        write: None,
        result: check_step_up(rec, text, now),
    }
}

/// Replaces all recovery codes, after a fresh second factor (SEC-25).
pub(crate) fn commit_regenerate(
    rec: &Record,
    policy: &Policy,
    proof: &Proof<'_>,
    codes: &RecoveryCodes,
    hashes: &HashedRecoveryCodes,
    now: u64,
) -> Step<RecoveryCodes> {
    let mut next = match proof.apply(rec, policy, now) {
        Ok(n) => n,
        Err(e) => return Step::fail(e),
    };
    if let State::Active(a) = &mut next.state {
        a.recovery = hashes.clone();
    }
    Step::ok(next, codes.clone())
}

/// Turns MFA off (also the "reset" after a lost device) after a fresh second factor
/// (SEC-37). The secret, recovery codes and ticket key are dropped, so every open challenge
/// dies with them (SEC-38).
pub(crate) fn commit_disable(
    rec: &Record,
    policy: &Policy,
    proof: &Proof<'_>,
    now: u64,
) -> Step<()> {
    let mut next = match proof.apply(rec, policy, now) {
        Ok(n) => n,
        Err(e) => return Step::fail(e),
    };
    next.state = State::Disabled;
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

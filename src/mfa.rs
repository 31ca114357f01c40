//! The driver: load a user's record, run a pure transition, compare-and-swap it back.

use std::sync::{Arc, Mutex};

use getrandom::SysRng;
use rand_core::{TryCryptoRng, TryRng};
use thiserror::Error as ThisError;

use crate::UserId;
use crate::audit::{AuditEvent, AuditKind, EventSink, NoEvents};
use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::flow::policy::Policy;
use crate::flow::record::Record;
use crate::flow::{
    self, Authorization, Enrollment, Factor, LoginStart, MfaStatus, Reauth, SecondFactor, Step,
};
use crate::recovery::RecoveryCodes;
use crate::seal::{Sealer, SealingKeys};
use crate::store::{CasOutcome, Store, StoredRecord};

/// How many times one operation re-runs after losing a compare-and-swap race before it gives
/// up with [`Error::Contention`].
const MAX_ATTEMPTS: usize = 1_000;

/// The MFA service: enrollment, login and recovery flows for every user of a [`Store`].
///
/// `Mfa` is `Send + Sync` when its parts are: share one across threads (in an `Arc`). Every
/// method is one atomic read-transition-write on one user's record, re-run on conflict, so
/// the rules hold under any concurrency (see [`Store`]). The clock and random generator are
/// injected: the system clock and the OS CSPRNG by default, a [`ManualClock`](crate::ManualClock)
/// in tests.
///
/// Every method blocks on the store; recovery-code checks also spend ~20 ms of CPU hashing.
/// From an async runtime, call them inside `tokio::task::spawn_blocking` (or your runtime's
/// equivalent).
///
/// ```
/// use totp_mfa::{Mfa, MemoryStore, Policy, UserId, LoginStart, SecondFactor, ManualClock};
/// use totp_mfa::testing::Authenticator;
///
/// let mfa = Mfa::new(MemoryStore::new(), Policy::new("Example"))?
///     .with_clock(ManualClock::new(1_800_000_000));
/// let alice = UserId::new("alice@example.com")?;
///
/// // Settings page: "Enable MFA".
/// let enrollment = mfa.begin_enrollment(&alice, "alice@example.com")?;
/// let phone = Authenticator::from_uri(enrollment.uri().as_str())?; // the user scans the QR
/// let recovery_codes = mfa.confirm_enrollment(&alice, &phone.code_at(1_800_000_000)?)?;
/// assert_eq!(recovery_codes.len(), 10);
///
/// // Later, after the host checked the password:
/// let LoginStart::Challenge(challenge) = mfa.start_login(&alice)? else { unreachable!() };
/// // The confirmation code's time step is spent; the next step's code works.
/// let auth = mfa.complete_login(&alice, challenge.ticket(),
///     SecondFactor::Totp(&phone.code_at(1_800_000_030)?))?;
/// assert_eq!(auth.user(), &alice);
/// assert_eq!(auth.recovery_codes_left(), 10);
/// # Ok::<(), totp_mfa::Error>(())
/// ```
pub struct Mfa<S, C = SystemClock, R = SysRng> {
    store: S,
    clock: C,
    rng: Mutex<R>,
    policy: Policy,
    keys: Option<SealingKeys>,
    events: Arc<dyn EventSink>,
}

impl<S: Store> Mfa<S> {
    /// A service over `store` with `policy`, the system clock and the OS CSPRNG.
    ///
    /// # Errors
    /// [`Error::Config`] when the policy is out of bounds ([`Policy::validate`]).
    pub fn new(store: S, policy: Policy) -> Result<Self, Error> {
        policy.validate()?;
        Ok(Mfa {
            store,
            clock: SystemClock,
            rng: Mutex::new(SysRng),
            policy,
            keys: None,
            events: Arc::new(NoEvents),
        })
    }
}

impl<S: Store, C: Clock, R: TryCryptoRng + Send> Mfa<S, C, R> {
    /// Replaces the clock (a [`ManualClock`](crate::ManualClock) in tests).
    #[must_use]
    pub fn with_clock<C2: Clock>(self, clock: C2) -> Mfa<S, C2, R> {
        Mfa {
            store: self.store,
            clock,
            rng: self.rng,
            policy: self.policy,
            keys: self.keys,
            events: self.events,
        }
    }

    /// Replaces the random generator; it must be a CSPRNG (the bound enforces the marker).
    #[must_use]
    pub fn with_rng<R2: TryCryptoRng + Send>(self, rng: R2) -> Mfa<S, C, R2> {
        Mfa {
            store: self.store,
            clock: self.clock,
            rng: Mutex::new(rng),
            policy: self.policy,
            keys: self.keys,
            events: self.events,
        }
    }

    /// Seals every TOTP secret and ticket key with these keys before it reaches the store
    /// (SEC-08). Records that do not open fail closed with [`Error::Sealing`]. Needs the
    /// `encryption` feature.
    ///
    /// ```
    /// use totp_mfa::{MemoryStore, Mfa, Policy, SealingKey, SealingKeys};
    /// let key = [42u8; 32]; // from your secrets manager
    /// let mfa = Mfa::new(MemoryStore::new(), Policy::new("Example"))?
    ///     .with_sealing_keys(SealingKeys::new(SealingKey::new(1, key)));
    /// # Ok::<(), totp_mfa::Error>(())
    /// ```
    #[cfg(feature = "encryption")]
    #[must_use]
    pub fn with_sealing_keys(mut self, keys: SealingKeys) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Sends audit events (enrollments, logins, refusals, locks, recovery-code use...) to
    /// `sink`, after the change each reports was stored. Events never carry secrets.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use totp_mfa::{AuditEvent, AuditKind, EventSink, MemoryStore, Mfa, Policy, UserId};
    ///
    /// #[derive(Default)]
    /// struct Log(Mutex<Vec<AuditKind>>);
    /// impl EventSink for Log {
    ///     fn record(&self, e: &AuditEvent) {
    ///         if let Ok(mut l) = self.0.lock() { l.push(e.kind.clone()); }
    ///     }
    /// }
    ///
    /// let log = Arc::new(Log::default());
    /// let mfa = Mfa::new(MemoryStore::new(), Policy::new("Example"))?.with_events(log.clone());
    /// let _ = mfa.begin_enrollment(&UserId::new("bob")?, "bob")?;
    /// assert_eq!(log.0.lock().unwrap().as_slice(), &[AuditKind::EnrollmentStarted]);
    /// # Ok::<(), totp_mfa::Error>(())
    /// ```
    #[must_use]
    pub fn with_events(mut self, sink: impl EventSink + 'static) -> Self {
        self.events = Arc::new(sink);
        self
    }

    /// The policy.
    #[must_use]
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The clock.
    #[must_use]
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The user's MFA status, for a settings page. Reads only.
    ///
    /// # Errors
    /// Store, clock or decoding failures.
    pub fn status(&self, user: &UserId) -> Result<MfaStatus, Error> {
        let now = self.clock.now()?;
        let (_, record) = self.load(user)?;
        Ok(flow::status(&record, &self.policy, now))
    }

    /// Starts enabling MFA: a new secret, pending until [`Mfa::confirm_enrollment`]. Show the
    /// returned QR code and manual key. Calling it again replaces a pending enrollment (with
    /// a new secret), never an active one.
    ///
    /// `account_name` is what the authenticator app shows under the issuer, typically the
    /// user's e-mail address; it must not contain `:`.
    ///
    /// # Errors
    /// [`Error::AlreadyEnabled`] when MFA is active (disable it first, with a fresh factor);
    /// [`Error::Uri`] for an account name the URI cannot carry; infrastructure errors.
    pub fn begin_enrollment(&self, user: &UserId, account_name: &str) -> Result<Enrollment, Error> {
        let result = self.run(user, |rec, now, rng| {
            flow::begin_enrollment(rec, &self.policy, account_name, now, rng)
        });
        if result.is_ok() {
            self.emit(user, AuditKind::EnrollmentStarted);
        }
        result
    }

    /// Shows the pending enrollment again, with the same secret: for a setup page that is
    /// reloaded or shown again after a wrong code. (Calling [`Mfa::begin_enrollment`] again
    /// would issue a new secret, and the account the user already scanned would stop
    /// matching.) Reads only.
    ///
    /// # Errors
    /// [`Error::NoPendingEnrollment`], [`Error::EnrollmentExpired`],
    /// [`Error::AlreadyEnabled`]; infrastructure errors.
    ///
    /// ```
    /// use totp_mfa::{Mfa, MemoryStore, Policy, UserId};
    /// let mfa = Mfa::new(MemoryStore::new(), Policy::new("Example"))?;
    /// let bob = UserId::new("bob")?;
    /// let first = mfa.begin_enrollment(&bob, "bob@example.com")?;
    /// let again = mfa.resume_enrollment(&bob)?;
    /// assert_eq!(again.uri(), first.uri());
    /// # Ok::<(), totp_mfa::Error>(())
    /// ```
    pub fn resume_enrollment(&self, user: &UserId) -> Result<Enrollment, Error> {
        self.run(user, |rec, now, _| {
            flow::resume_enrollment(rec, &self.policy, now)
        })
    }

    /// Confirms enrollment with the code the app shows now. On success MFA is active and the
    /// recovery codes are returned: show them once. The code's time step counts as used.
    ///
    /// # Errors
    /// [`Error::WrongSetupCode`] (with a hint about the device clock or an app that ignores
    /// the parameters), [`Error::CodeFormat`], [`Error::NoPendingEnrollment`],
    /// [`Error::EnrollmentExpired`], [`Error::EnrollmentAttemptsExhausted`],
    /// [`Error::AlreadyEnabled`]; infrastructure errors.
    pub fn confirm_enrollment(&self, user: &UserId, code: &str) -> Result<RecoveryCodes, Error> {
        let result = (|| {
            let charged = self.run(user, |rec, now, _| {
                flow::charge_confirmation(rec, &self.policy, code, now)
            })?;
            let time_step = flow::evaluate_confirmation(&charged, &self.policy)?;
            let activation = flow::Activation::generate(&self.policy, &mut SharedRng(&self.rng))?;
            self.run(user, |rec, now, _| {
                flow::commit_activation(rec, &charged, time_step, &activation, now)
            })
        })();
        match &result {
            Ok(_) => {
                if let Ok((_, rec)) = self.load(user) {
                    self.emit(
                        user,
                        AuditKind::MfaActivated {
                            generation: rec.generation,
                        },
                    );
                }
            }
            Err(Error::WrongSetupCode { attempts_left, .. }) => self.emit(
                user,
                AuditKind::SetupCodeRefused {
                    attempts_left: *attempts_left,
                },
            ),
            Err(_) => {}
        }
        result
    }

    /// Call after the host verified the user's password: returns [`LoginStart::NoMfa`] or a
    /// [`Challenge`](crate::Challenge) to answer with [`Mfa::complete_login`]. A correct
    /// password never resets the failure count (SEC-34).
    ///
    /// # Errors
    /// Infrastructure errors only.
    pub fn start_login(&self, user: &UserId) -> Result<LoginStart, Error> {
        self.run(user, |rec, now, rng| {
            flow::start_login(rec, &self.policy, user, now, rng)
        })
    }

    /// Answers a login challenge with a TOTP code or a recovery code. On success the ticket,
    /// the code's time step or the recovery code are consumed, the failure count is reset,
    /// and an [`Authorization`] with a fresh session token is returned.
    ///
    /// # Errors
    /// [`Error::WrongCode`], [`Error::CodeAlreadyUsed`], [`Error::WrongRecoveryCode`] (each
    /// counted), [`Error::Throttled`], [`Error::Locked`], [`Error::ChallengeInvalid`],
    /// [`Error::ChallengeExpired`], format errors (not counted); infrastructure errors.
    pub fn complete_login(
        &self,
        user: &UserId,
        ticket: &str,
        factor: SecondFactor<'_>,
    ) -> Result<Authorization, Error> {
        let result = (|| {
            let charged = self.run(user, |rec, now, _| {
                flow::charge_login(rec, &self.policy, user, ticket, factor, now)
            })?;
            let verdict = flow::evaluate(&charged, &self.policy)?;
            let tokens = flow::LoginTokens::generate(&mut SharedRng(&self.rng))?;
            let generation = charged.generation();
            self.run(user, |rec, now, _| {
                flow::commit_login(
                    rec,
                    &self.policy,
                    user,
                    ticket,
                    generation,
                    &verdict,
                    &tokens,
                    now,
                )
            })
        })();
        match &result {
            Ok(auth) => {
                self.emit(
                    user,
                    AuditKind::LoginSucceeded {
                        factor: auth.factor(),
                    },
                );
                if auth.factor() == Factor::RecoveryCode {
                    self.emit(
                        user,
                        AuditKind::RecoveryCodeUsed {
                            remaining: auth.recovery_codes_left(),
                            running_low: auth.recovery_codes_low(),
                        },
                    );
                }
            }
            Err(e) => self.emit_refusal(user, e),
        }
        result
    }

    /// Replaces every recovery code, after a fresh second factor (SEC-25). The old codes stop
    /// working at once.
    ///
    /// # Errors
    /// As [`Mfa::complete_login`] for the factor, [`Error::StepUpInvalid`] for a bad step-up
    /// token, [`Error::NotEnabled`]; infrastructure errors.
    pub fn regenerate_recovery_codes(
        &self,
        user: &UserId,
        reauth: Reauth<'_>,
    ) -> Result<RecoveryCodes, Error> {
        let result = (|| {
            let checked = self.check_reauth(user, reauth)?;
            let (codes, hashes) = RecoveryCodes::generate_with_rounds(
                &mut SharedRng(&self.rng),
                self.policy.recovery_codes,
                self.policy.recovery_rounds,
            )?;
            let proof = checked.proof();
            self.run(user, |rec, now, _| {
                flow::commit_regenerate(rec, &self.policy, &proof, &codes, &hashes, now)
            })
        })();
        match &result {
            Ok(_) => {
                self.emit_reauth_factor(user, reauth);
                self.emit(user, AuditKind::RecoveryCodesRegenerated);
            }
            Err(e) => self.emit_refusal(user, e),
        }
        result
    }

    /// Turns MFA off after a fresh second factor (SEC-37): the secret and recovery codes are
    /// deleted and open challenges revoked. This is also the "reset" for a user who lost the
    /// device: log in with a recovery code, pass the authorization's step-up token here,
    /// then enroll again.
    ///
    /// # Errors
    /// As [`Mfa::regenerate_recovery_codes`].
    pub fn disable(&self, user: &UserId, reauth: Reauth<'_>) -> Result<(), Error> {
        let result = (|| {
            let checked = self.check_reauth(user, reauth)?;
            let proof = checked.proof();
            self.run(user, |rec, now, _| {
                flow::commit_disable(rec, &self.policy, &proof, now)
            })
        })();
        match &result {
            Ok(()) => {
                self.emit_reauth_factor(user, reauth);
                self.emit(user, AuditKind::MfaDisabled);
            }
            Err(e) => self.emit_refusal(user, e),
        }
        result
    }

    /// Steps 1 and 2 of a factor given for a sensitive change; a step-up token is checked
    /// when it is consumed.
    fn check_reauth<'a>(
        &self,
        user: &UserId,
        reauth: Reauth<'a>,
    ) -> Result<CheckedReauth<'a>, Error> {
        match reauth {
            Reauth::StepUp(token) => {
                // A bogus token must not cost a new set of recovery codes.
                self.run(user, |rec, now, _| flow::peek_step_up(rec, token, now))?;
                Ok(CheckedReauth::StepUp(token))
            }
            Reauth::Factor(factor) => {
                let charged = self.run(user, |rec, now, _| {
                    flow::charge_reauth(rec, &self.policy, factor, now)
                })?;
                let verdict = flow::evaluate(&charged, &self.policy)?;
                Ok(CheckedReauth::Factor {
                    generation: charged.generation(),
                    verdict,
                })
            }
        }
    }

    /// Clears a lock or delay. For the host's support process, **after** verifying the user's
    /// identity out of band (NIST SP 800-63B section 5.2.2): never expose it to the user.
    ///
    /// # Errors
    /// Infrastructure errors only.
    pub fn unlock(&self, user: &UserId) -> Result<(), Error> {
        let result = self.run(user, |rec, _, _| flow::unlock(rec));
        if result.is_ok() {
            self.emit(user, AuditKind::Unlocked);
        }
        result
    }

    fn emit(&self, user: &UserId, kind: AuditKind) {
        self.events.record(&AuditEvent {
            user: user.clone(),
            at: self.clock.now().unwrap_or(0),
            kind,
        });
    }

    /// A recovery code spent on a sensitive change is an account-recovery event too.
    fn emit_reauth_factor(&self, user: &UserId, reauth: Reauth<'_>) {
        if let Reauth::Factor(SecondFactor::RecoveryCode(_)) = reauth {
            if let Ok((_, rec)) = self.load(user) {
                if let Some(remaining) = rec.recovery_codes_left() {
                    self.emit(
                        user,
                        AuditKind::RecoveryCodeUsed {
                            remaining,
                            running_low: remaining <= self.policy.low_recovery_codes,
                        },
                    );
                }
            }
        }
    }

    fn emit_refusal(&self, user: &UserId, error: &Error) {
        let (kind, attempts_left) = match error {
            Error::WrongCode { attempts_left, .. } => (
                AuditKind::SecondFactorRefused {
                    factor: Factor::Totp,
                    attempts_left: *attempts_left,
                },
                *attempts_left,
            ),
            Error::WrongRecoveryCode { attempts_left, .. } => (
                AuditKind::SecondFactorRefused {
                    factor: Factor::RecoveryCode,
                    attempts_left: *attempts_left,
                },
                *attempts_left,
            ),
            Error::CodeAlreadyUsed { attempts_left, .. } => (
                AuditKind::ReplayRefused {
                    attempts_left: *attempts_left,
                },
                *attempts_left,
            ),
            Error::Throttled { retry } => {
                self.emit(user, AuditKind::Throttled { retry_at: retry.at });
                return;
            }
            Error::Locked => {
                self.emit(user, AuditKind::RefusedWhileLocked);
                return;
            }
            _ => return,
        };
        self.emit(user, kind);
        if attempts_left == 0 {
            self.emit(user, AuditKind::Locked);
        }
    }

    fn sealer<'a>(&'a self, user: &'a UserId) -> Sealer<'a> {
        Sealer {
            user,
            keys: self.keys.as_ref(),
        }
    }

    fn load(&self, user: &UserId) -> Result<(Option<u64>, Record), Error> {
        match self
            .store
            .load(user)
            .map_err(|e| Error::Storage(Box::new(e)))?
        {
            None => Ok((None, Record::default())),
            Some(stored) => Ok((
                Some(stored.version()),
                Record::decode(stored.data(), &self.sealer(user))?,
            )),
        }
    }

    /// Load, transition, compare-and-swap; re-run on conflict. The outcome is returned only
    /// after its record change is stored, so nothing is granted, and no failure is
    /// forgotten, on a path where the write did not happen (SEC-44).
    fn run<T>(
        &self,
        user: &UserId,
        mut transition: impl FnMut(&Record, u64, &mut SharedRng<'_, R>) -> Step<T>,
    ) -> Result<T, Error> {
        let mut rng = SharedRng(&self.rng);
        for _ in 0..MAX_ATTEMPTS {
            let now = self.clock.now()?;
            let (expected, record) = self.load(user)?;
            let step = transition(&record, now, &mut rng);
            let Some(next) = step.write else {
                return step.result;
            };
            let version = match expected {
                None => 1,
                Some(v) => v
                    .checked_add(1)
                    .ok_or(Error::CorruptRecord("version overflow"))?,
            };
            let mut nonces = [[0u8; 24]; 2];
            if self.keys.is_some() {
                for n in &mut nonces {
                    rng.try_fill_bytes(n).map_err(|_| Error::Rng)?;
                }
            }
            let mut bytes = next.encode(&self.sealer(user), &nonces)?;
            let stored = StoredRecord::new(version, core::mem::take(&mut *bytes));
            match self
                .store
                .compare_and_swap(user, expected, stored)
                .map_err(|e| Error::Storage(Box::new(e)))?
            {
                CasOutcome::Saved => return step.result,
                CasOutcome::Conflict => std::thread::yield_now(),
            }
        }
        Err(Error::Contention)
    }
}

/// A reauthentication checked as far as it can be before its commit.
enum CheckedReauth<'a> {
    StepUp(&'a str),
    Factor {
        generation: u64,
        verdict: flow::Verdict,
    },
}

impl CheckedReauth<'_> {
    fn proof(&self) -> flow::Proof<'_> {
        match self {
            CheckedReauth::Factor {
                generation,
                verdict,
            } => flow::Proof::Factor {
                generation: *generation,
                verdict,
            },
            CheckedReauth::StepUp(token) => flow::Proof::StepUp(token),
        }
    }
}

impl<S, C, R> core::fmt::Debug for Mfa<S, C, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Mfa")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The random generator failed, or its lock was poisoned.
#[derive(Debug, ThisError)]
#[error("random number generator failure")]
struct RngFailure;

/// Lends the shared generator to a transition, locking it only for each fill.
struct SharedRng<'a, R>(&'a Mutex<R>);

impl<R: TryRng> TryRng for SharedRng<'_, R> {
    type Error = RngFailure;

    fn try_next_u32(&mut self) -> Result<u32, RngFailure> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, RngFailure> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), RngFailure> {
        let mut rng = self.0.lock().map_err(|_| RngFailure)?;
        rng.try_fill_bytes(dst).map_err(|_| RngFailure)
    }
}

impl<R: TryCryptoRng> TryCryptoRng for SharedRng<'_, R> {}

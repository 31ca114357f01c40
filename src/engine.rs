//! The one orchestration of the flows, shared by the blocking [`Mfa`](crate::Mfa) and the
//! async [`AsyncMfa`](crate::AsyncMfa): load a user's record, run a pure transition from
//! [`flow`], compare-and-swap it back; and, for the checks of a second factor, charge the
//! attempt, evaluate once, commit.
//!
//! It is written once, as `async` code over [`Io`]. The blocking face runs it with a store
//! whose futures are always ready and drives them to completion on the calling thread
//! ([`block_on`]); the async face awaits a real [`AsyncStore`](crate::AsyncStore) and moves
//! the expensive hashing to tokio's blocking pool. Only the I/O differs; every rule lives in
//! [`flow`].

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use rand_core::{TryCryptoRng, TryRng};
use thiserror::Error as ThisError;

use crate::UserId;
use crate::audit::{AuditEvent, AuditKind, EventSink, NoEvents};
use crate::clock::Clock;
use crate::error::Error;
use crate::flow::policy::Policy;
use crate::flow::record::Record;
use crate::flow::{
    self, Authorization, Enrollment, Factor, LoginStart, MfaStatus, Reauth, SecondFactor, Step,
};
use crate::recovery::RecoveryCodes;
use crate::seal::{Sealer, SealingKeys};
use crate::store::{CasOutcome, StoredRecord};

/// How many times one operation re-runs after losing a compare-and-swap race before it gives
/// up with [`Error::Contention`].
const MAX_ATTEMPTS: usize = 1_000;

/// What differs between the two faces: the store's I/O, where expensive work runs, and how
/// a loser of a race yields.
pub(crate) trait Io: Send + Sync {
    fn load(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Option<StoredRecord>, Error>> + Send;

    fn compare_and_swap(
        &self,
        user: &UserId,
        expected: Option<u64>,
        new: StoredRecord,
    ) -> impl Future<Output = Result<CasOutcome, Error>> + Send;

    /// Runs CPU-heavy work (recovery-code hashing) where it cannot stall an async runtime.
    fn offload<T, F>(&self, work: F) -> impl Future<Output = Result<T, Error>> + Send
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static;

    /// Lets the winner of a compare-and-swap race go on.
    fn pause(&self) -> impl Future<Output = ()> + Send;
}

/// Runs a future to completion on this thread. The blocking face's futures are ready at
/// their first poll; the parking waker is there so that this stays correct for any future.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return output,
            Poll::Pending => std::thread::park(),
        }
    }
}

/// Everything but the store: clock, random generator, policy, sealing keys, event sink.
pub(crate) struct Core<C, R> {
    pub(crate) clock: C,
    pub(crate) rng: Arc<Mutex<R>>,
    pub(crate) policy: Arc<Policy>,
    pub(crate) keys: Option<SealingKeys>,
    pub(crate) events: Arc<dyn EventSink>,
}

impl<C, R> Core<C, R> {
    pub(crate) fn new(policy: Policy, clock: C, rng: R) -> Result<Self, Error> {
        policy.validate()?;
        Ok(Core {
            clock,
            rng: Arc::new(Mutex::new(rng)),
            policy: Arc::new(policy),
            keys: None,
            events: Arc::new(NoEvents),
        })
    }

    pub(crate) fn with_clock<C2>(self, clock: C2) -> Core<C2, R> {
        Core {
            clock,
            rng: self.rng,
            policy: self.policy,
            keys: self.keys,
            events: self.events,
        }
    }

    pub(crate) fn with_rng<R2>(self, rng: R2) -> Core<C, R2> {
        Core {
            clock: self.clock,
            rng: Arc::new(Mutex::new(rng)),
            policy: self.policy,
            keys: self.keys,
            events: self.events,
        }
    }
}

impl<C: Clock, R: TryCryptoRng + Send + 'static> Core<C, R> {
    pub(crate) async fn status(&self, io: &impl Io, user: &UserId) -> Result<MfaStatus, Error> {
        let now = self.clock.now()?;
        let (_, record) = self.load(io, user).await?;
        Ok(flow::status(&record, &self.policy, now))
    }

    pub(crate) async fn begin_enrollment(
        &self,
        io: &impl Io,
        user: &UserId,
        account_name: &str,
    ) -> Result<Enrollment, Error> {
        let result = self
            .run(io, user, |rec, now, rng| {
                flow::begin_enrollment(rec, &self.policy, account_name, now, rng)
            })
            .await;
        if result.is_ok() {
            self.emit(user, AuditKind::EnrollmentStarted);
        }
        result
    }

    pub(crate) async fn resume_enrollment(
        &self,
        io: &impl Io,
        user: &UserId,
    ) -> Result<Enrollment, Error> {
        self.run(io, user, |rec, now, _| {
            flow::resume_enrollment(rec, &self.policy, now)
        })
        .await
    }

    pub(crate) async fn confirm_enrollment(
        &self,
        io: &impl Io,
        user: &UserId,
        code: &str,
    ) -> Result<RecoveryCodes, Error> {
        let result = self.confirm_enrollment_inner(io, user, code).await;
        match &result {
            Ok((_, rec)) => self.emit(
                user,
                AuditKind::MfaActivated {
                    generation: rec.generation,
                },
            ),
            Err(Error::WrongSetupCode { attempts_left, .. }) => self.emit(
                user,
                AuditKind::SetupCodeRefused {
                    attempts_left: *attempts_left,
                },
            ),
            Err(_) => {}
        }
        result.map(|(codes, _)| codes)
    }

    async fn confirm_enrollment_inner(
        &self,
        io: &impl Io,
        user: &UserId,
        code: &str,
    ) -> Result<(RecoveryCodes, Record), Error> {
        let charged = self
            .run(io, user, |rec, now, _| {
                flow::charge_confirmation(rec, &self.policy, code, now)
            })
            .await?;
        let time_step = flow::evaluate_confirmation(&charged, &self.policy)?;
        let (policy, rng) = (Arc::clone(&self.policy), Arc::clone(&self.rng));
        let activation = io
            .offload(move || flow::Activation::generate(&policy, &mut SharedRng(&rng)))
            .await??;
        self.run_committed(io, user, |rec, now, _| {
            flow::commit_activation(rec, &charged, time_step, &activation, now)
        })
        .await
    }

    pub(crate) async fn start_login(
        &self,
        io: &impl Io,
        user: &UserId,
    ) -> Result<LoginStart, Error> {
        self.run(io, user, |rec, now, rng| {
            flow::start_login(rec, &self.policy, user, now, rng)
        })
        .await
    }

    pub(crate) async fn complete_login(
        &self,
        io: &impl Io,
        user: &UserId,
        ticket: &str,
        factor: SecondFactor<'_>,
    ) -> Result<Authorization, Error> {
        let result = self.complete_login_inner(io, user, ticket, factor).await;
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

    async fn complete_login_inner(
        &self,
        io: &impl Io,
        user: &UserId,
        ticket: &str,
        factor: SecondFactor<'_>,
    ) -> Result<Authorization, Error> {
        let charged = self
            .run(io, user, |rec, now, _| {
                flow::charge_login(rec, &self.policy, user, ticket, factor, now)
            })
            .await?;
        let generation = charged.generation();
        let verdict = self.evaluate(io, charged).await?;
        let tokens = flow::LoginTokens::generate(&mut SharedRng(&self.rng))?;
        self.run(io, user, |rec, now, _| {
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
        .await
    }

    pub(crate) async fn regenerate_recovery_codes(
        &self,
        io: &impl Io,
        user: &UserId,
        reauth: Reauth<'_>,
    ) -> Result<RecoveryCodes, Error> {
        let result = self.regenerate_inner(io, user, reauth).await;
        match &result {
            Ok((_, rec)) => {
                self.emit_reauth_factor(user, reauth, rec);
                self.emit(user, AuditKind::RecoveryCodesRegenerated);
            }
            Err(e) => self.emit_refusal(user, e),
        }
        result.map(|(codes, _)| codes)
    }

    async fn regenerate_inner(
        &self,
        io: &impl Io,
        user: &UserId,
        reauth: Reauth<'_>,
    ) -> Result<(RecoveryCodes, Record), Error> {
        let checked = self.check_reauth(io, user, reauth).await?;
        let (policy, rng) = (Arc::clone(&self.policy), Arc::clone(&self.rng));
        let (codes, hashes) = io
            .offload(move || {
                RecoveryCodes::generate_with_rounds(
                    &mut SharedRng(&rng),
                    policy.recovery_codes,
                    policy.recovery_rounds,
                )
            })
            .await??;
        let proof = checked.proof();
        self.run_committed(io, user, |rec, now, _| {
            flow::commit_regenerate(rec, &self.policy, &proof, &codes, &hashes, now)
        })
        .await
    }

    pub(crate) async fn disable(
        &self,
        io: &impl Io,
        user: &UserId,
        reauth: Reauth<'_>,
    ) -> Result<(), Error> {
        let result = self.disable_inner(io, user, reauth).await;
        match &result {
            Ok(rec) => {
                self.emit_reauth_factor(user, reauth, rec);
                self.emit(user, AuditKind::MfaDisabled);
            }
            Err(e) => self.emit_refusal(user, e),
        }
        result.map(|_| ())
    }

    async fn disable_inner(
        &self,
        io: &impl Io,
        user: &UserId,
        reauth: Reauth<'_>,
    ) -> Result<Record, Error> {
        let checked = self.check_reauth(io, user, reauth).await?;
        let proof = checked.proof();
        Ok(self
            .run_committed(io, user, |rec, now, _| {
                flow::commit_disable(rec, &self.policy, &proof, now)
            })
            .await?
            .1)
    }

    pub(crate) async fn unlock(&self, io: &impl Io, user: &UserId) -> Result<(), Error> {
        let result = self.run(io, user, |rec, _, _| flow::unlock(rec)).await;
        if result.is_ok() {
            self.emit(user, AuditKind::Unlocked);
        }
        result
    }

    /// Step 2 of a factor check, the expensive one (a recovery code is hashed with PBKDF2
    /// against every stored code), run where it cannot stall an async runtime.
    async fn evaluate(&self, io: &impl Io, charged: flow::Charged) -> Result<flow::Verdict, Error> {
        let policy = Arc::clone(&self.policy);
        io.offload(move || flow::evaluate(&charged, &policy))
            .await?
    }

    /// Steps 1 and 2 of a factor given for a sensitive change; a step-up token is checked
    /// when it is consumed.
    async fn check_reauth<'a>(
        &self,
        io: &impl Io,
        user: &UserId,
        reauth: Reauth<'a>,
    ) -> Result<CheckedReauth<'a>, Error> {
        match reauth {
            Reauth::StepUp(token) => {
                // A bogus token must not cost a new set of recovery codes.
                self.run(io, user, |rec, now, _| flow::peek_step_up(rec, token, now))
                    .await?;
                Ok(CheckedReauth::StepUp(token))
            }
            Reauth::Factor(factor) => {
                let charged = self
                    .run(io, user, |rec, now, _| {
                        flow::charge_reauth(rec, &self.policy, factor, now)
                    })
                    .await?;
                let generation = charged.generation();
                let verdict = self.evaluate(io, charged).await?;
                Ok(CheckedReauth::Factor {
                    generation,
                    verdict,
                })
            }
        }
    }

    fn emit(&self, user: &UserId, kind: AuditKind) {
        self.events.record(&AuditEvent {
            user: user.clone(),
            at: self.clock.now().unwrap_or(0),
            kind,
        });
    }

    /// A recovery code spent on a sensitive change is an account-recovery event too.
    /// `rec` is the record the change stored.
    fn emit_reauth_factor(&self, user: &UserId, reauth: Reauth<'_>, rec: &Record) {
        if let Reauth::Factor(SecondFactor::RecoveryCode(_)) = reauth {
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

    async fn load(&self, io: &impl Io, user: &UserId) -> Result<(Option<u64>, Record), Error> {
        match io.load(user).await? {
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
    async fn run<T: Send>(
        &self,
        io: &impl Io,
        user: &UserId,
        transition: impl FnMut(&Record, u64, &mut SharedRng<'_, R>) -> Step<T> + Send,
    ) -> Result<T, Error> {
        Ok(self.run_committed(io, user, transition).await?.0)
    }

    /// [`Core::run`], also returning the record as it stands after the call (the one written,
    /// or the one read when the transition wrote nothing). Audit events read it instead of
    /// loading the record again: a call must not await the store after its commit, or a
    /// failure or a dropped future there would lose an outcome that is already stored
    /// (recovery codes shown only once, an audit event).
    async fn run_committed<T: Send>(
        &self,
        io: &impl Io,
        user: &UserId,
        mut transition: impl FnMut(&Record, u64, &mut SharedRng<'_, R>) -> Step<T> + Send,
    ) -> Result<(T, Record), Error> {
        for _ in 0..MAX_ATTEMPTS {
            let now = self.clock.now()?;
            let (expected, record) = self.load(io, user).await?;
            let step = transition(&record, now, &mut SharedRng(&self.rng));
            let Some(next) = step.write else {
                return step.result.map(|t| (t, record));
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
                    SharedRng(&self.rng)
                        .try_fill_bytes(n)
                        .map_err(|_| Error::Rng)?;
                }
            }
            let mut bytes = next.encode(&self.sealer(user), &nonces)?;
            let stored = StoredRecord::new(version, core::mem::take(&mut *bytes));
            match io.compare_and_swap(user, expected, stored).await? {
                CasOutcome::Saved => return step.result.map(|t| (t, next)),
                CasOutcome::Conflict => io.pause().await,
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

/// The random generator failed, or its lock was poisoned.
#[derive(Debug, ThisError)]
#[error("random number generator failure")]
pub(crate) struct RngFailure;

/// Lends the shared generator to a transition, locking it only for each fill.
pub(crate) struct SharedRng<'a, R>(pub(crate) &'a Mutex<R>);

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

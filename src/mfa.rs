//! The blocking face: [`Mfa`] runs the shared [`engine`](crate::engine) over a [`Store`] on
//! the calling thread.

use std::future::{Future, ready};
use std::sync::Arc;

use getrandom::SysRng;
use rand_core::TryCryptoRng;

use crate::UserId;
use crate::audit::EventSink;
use crate::clock::{Clock, SystemClock};
use crate::engine::{Core, Io, block_on};
use crate::error::Error;
use crate::flow::policy::Policy;
use crate::flow::{Authorization, Enrollment, LoginStart, MfaStatus, Reauth, SecondFactor};
use crate::recovery::RecoveryCodes;
#[cfg(feature = "encryption")]
use crate::seal::SealingKeys;
use crate::store::{CasOutcome, Store, StoredRecord};

/// The MFA service: enrollment, login and recovery flows for every user of a [`Store`].
///
/// `Mfa` is `Send + Sync` when its parts are: share one across threads (in an `Arc`). Every
/// method is one atomic read-transition-write on one user's record, re-run on conflict, so
/// the rules hold under any concurrency (see [`Store`]). The clock and random generator are
/// injected: the system clock and the OS CSPRNG by default, a [`ManualClock`](crate::ManualClock)
/// in tests.
///
/// Every method blocks on the store; recovery-code checks also spend ~20 ms of CPU hashing.
/// For a tokio service, use `AsyncMfa` (feature `async`): the same flows, the same rules,
/// with the store awaited and the hashing moved off the runtime.
///
/// ```
/// use totp_mfa::{Mfa, MemoryStore, Policy, UserId, LoginStart, SecondFactor, ManualClock};
/// use totp_mfa::testing::Authenticator;
///
/// let mfa = Mfa::new(MemoryStore::new(), Policy::new("Example"))?
///     .with_clock(ManualClock::new(1_800_000_000));
/// let alice = UserId::new("42")?; // your user table's primary key, not the login name
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
    core: Core<C, R>,
}

impl<S: Store> Mfa<S> {
    /// A service over `store` with `policy`, the system clock and the OS CSPRNG.
    ///
    /// # Errors
    /// [`Error::Config`] when the policy is out of bounds ([`Policy::validate`]).
    pub fn new(store: S, policy: Policy) -> Result<Self, Error> {
        Ok(Mfa {
            store,
            core: Core::new(policy, SystemClock, SysRng)?,
        })
    }
}

impl<S: Store, C: Clock, R: TryCryptoRng + Send + 'static> Mfa<S, C, R> {
    /// Replaces the clock (a [`ManualClock`](crate::ManualClock) in tests).
    #[must_use]
    pub fn with_clock<C2: Clock>(self, clock: C2) -> Mfa<S, C2, R> {
        Mfa {
            store: self.store,
            core: self.core.with_clock(clock),
        }
    }

    /// Replaces the random generator; it must be a CSPRNG (the bound enforces the marker).
    #[must_use]
    pub fn with_rng<R2: TryCryptoRng + Send + 'static>(self, rng: R2) -> Mfa<S, C, R2> {
        Mfa {
            store: self.store,
            core: self.core.with_rng(rng),
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
        self.core.keys = Some(keys);
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
        self.core.events = Arc::new(sink);
        self
    }

    /// The policy.
    #[must_use]
    pub fn policy(&self) -> &Policy {
        &self.core.policy
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The clock.
    #[must_use]
    pub fn clock(&self) -> &C {
        &self.core.clock
    }

    /// The user's MFA status, for a settings page. Reads only.
    ///
    /// # Errors
    /// Store, clock or decoding failures.
    pub fn status(&self, user: &UserId) -> Result<MfaStatus, Error> {
        block_on(self.core.status(&Blocking(&self.store), user))
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
        block_on(
            self.core
                .begin_enrollment(&Blocking(&self.store), user, account_name),
        )
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
        block_on(self.core.resume_enrollment(&Blocking(&self.store), user))
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
        block_on(
            self.core
                .confirm_enrollment(&Blocking(&self.store), user, code),
        )
    }

    /// Call after the host verified the user's password: returns [`LoginStart::NoMfa`] or a
    /// [`Challenge`](crate::Challenge) to answer with [`Mfa::complete_login`]. A correct
    /// password never resets the failure count (SEC-34).
    ///
    /// # Errors
    /// Infrastructure errors only.
    pub fn start_login(&self, user: &UserId) -> Result<LoginStart, Error> {
        block_on(self.core.start_login(&Blocking(&self.store), user))
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
        block_on(
            self.core
                .complete_login(&Blocking(&self.store), user, ticket, factor),
        )
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
        block_on(
            self.core
                .regenerate_recovery_codes(&Blocking(&self.store), user, reauth),
        )
    }

    /// Turns MFA off after a fresh second factor (SEC-37): the secret and recovery codes are
    /// deleted and open challenges revoked. This is also the "reset" for a user who lost the
    /// device: log in with a recovery code, pass the authorization's step-up token here,
    /// then enroll again.
    ///
    /// # Errors
    /// As [`Mfa::regenerate_recovery_codes`].
    pub fn disable(&self, user: &UserId, reauth: Reauth<'_>) -> Result<(), Error> {
        block_on(self.core.disable(&Blocking(&self.store), user, reauth))
    }

    /// Clears a lock or delay. For the host's support process, **after** verifying the user's
    /// identity out of band (NIST SP 800-63B section 5.2.2): never expose it to the user.
    ///
    /// # Errors
    /// Infrastructure errors only.
    pub fn unlock(&self, user: &UserId) -> Result<(), Error> {
        block_on(self.core.unlock(&Blocking(&self.store), user))
    }
}

impl<S, C, R> core::fmt::Debug for Mfa<S, C, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Mfa")
            .field("policy", &self.core.policy)
            .finish_non_exhaustive()
    }
}

/// A blocking store seen through [`Io`]: each call runs at once and its future is ready.
struct Blocking<'a, S>(&'a S);

impl<S: Store> Io for Blocking<'_, S> {
    fn load(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Option<StoredRecord>, Error>> + Send {
        ready(self.0.load(user).map_err(|e| Error::Storage(Box::new(e))))
    }

    fn compare_and_swap(
        &self,
        user: &UserId,
        expected: Option<u64>,
        new: StoredRecord,
    ) -> impl Future<Output = Result<CasOutcome, Error>> + Send {
        ready(
            self.0
                .compare_and_swap(user, expected, new)
                .map_err(|e| Error::Storage(Box::new(e))),
        )
    }

    fn offload<T, F>(&self, work: F) -> impl Future<Output = Result<T, Error>> + Send
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        ready(Ok(work()))
    }

    fn pause(&self) -> impl Future<Output = ()> + Send {
        std::thread::yield_now();
        ready(())
    }
}

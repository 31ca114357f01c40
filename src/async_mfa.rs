//! The async face: [`AsyncMfa`] runs the shared [`engine`](crate::engine) over an
//! [`AsyncStore`] on tokio.

use std::future::Future;
use std::sync::Arc;

use getrandom::SysRng;
use rand_core::TryCryptoRng;

use crate::UserId;
use crate::audit::EventSink;
use crate::clock::{Clock, SystemClock};
use crate::engine::{Core, Io};
use crate::error::Error;
use crate::flow::policy::Policy;
use crate::flow::{Authorization, Enrollment, LoginStart, MfaStatus, Reauth, SecondFactor};
use crate::recovery::RecoveryCodes;
#[cfg(feature = "encryption")]
use crate::seal::SealingKeys;
use crate::store::{AsyncStore, CasOutcome, StoredRecord};

/// The MFA service for async (tokio) hosts: the same flows and rules as [`Mfa`](crate::Mfa),
/// with `async` methods.
///
/// Both faces run one shared orchestration over the same pure transitions; only the I/O
/// differs. Here the store is awaited, and the work that costs CPU time (hashing recovery
/// codes with PBKDF2, ~1–2 ms per stored code) runs on tokio's blocking pool
/// (`spawn_blocking`), so no method blocks the runtime. The returned futures are `Send`.
/// Needs a tokio runtime and the `async` feature. For a blocking store such as
/// `SqliteStore` (feature `sqlite`), wrap it in [`BlockingStore`](crate::BlockingStore).
///
/// The [`EventSink`] is called inline: a sink that does I/O should hand its events to a
/// channel or task rather than block.
///
/// Each method's contract and errors are those of the [`Mfa`](crate::Mfa) method of the same
/// name; dropping a future part-way is safe (every write is one compare-and-swap, and
/// nothing is granted before its write is stored). A future dropped while its last write
/// is in flight may still have stored it: a login may have been spent without a session
/// being issued, and `confirm_enrollment` or `regenerate_recovery_codes` may have stored
/// new recovery codes that were never shown. Avoid a timeout around those two calls; if
/// one is dropped anyway, [`status`](Self::status) shows MFA's real state and the user
/// generates new codes with a fresh app code.
///
/// ```
/// use totp_mfa::{AsyncMfa, LoginStart, ManualClock, MemoryStore, Policy, SecondFactor, UserId};
/// use totp_mfa::testing::Authenticator;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), totp_mfa::Error> {
/// let mfa = AsyncMfa::new(MemoryStore::new(), Policy::new("Example"))?
///     .with_clock(ManualClock::new(1_800_000_000));
/// let alice = UserId::new("42")?; // your user table's primary key, not the login name
///
/// let enrollment = mfa.begin_enrollment(&alice, "alice@example.com").await?;
/// let phone = Authenticator::from_uri(enrollment.uri().as_str())?;
/// let recovery_codes = mfa.confirm_enrollment(&alice, &phone.code_at(1_800_000_000)?).await?;
/// assert_eq!(recovery_codes.len(), 10);
///
/// let LoginStart::Challenge(challenge) = mfa.start_login(&alice).await? else { unreachable!() };
/// let code = phone.code_at(1_800_000_030)?;
/// let auth = mfa.complete_login(&alice, challenge.ticket(), SecondFactor::Totp(&code)).await?;
/// assert_eq!(auth.user(), &alice);
/// # Ok(()) }
/// ```
pub struct AsyncMfa<S, C = SystemClock, R = SysRng> {
    store: S,
    core: Core<C, R>,
}

impl<S: AsyncStore> AsyncMfa<S> {
    /// A service over `store` with `policy`, the system clock and the OS CSPRNG.
    ///
    /// # Errors
    /// [`Error::Config`] when the policy is out of bounds ([`Policy::validate`]).
    pub fn new(store: S, policy: Policy) -> Result<Self, Error> {
        Ok(AsyncMfa {
            store,
            core: Core::new(policy, SystemClock, SysRng)?,
        })
    }
}

impl<S: AsyncStore, C: Clock, R: TryCryptoRng + Send + 'static> AsyncMfa<S, C, R> {
    /// Replaces the clock (a [`ManualClock`](crate::ManualClock) in tests).
    #[must_use]
    pub fn with_clock<C2: Clock>(self, clock: C2) -> AsyncMfa<S, C2, R> {
        AsyncMfa {
            store: self.store,
            core: self.core.with_clock(clock),
        }
    }

    /// Replaces the random generator; it must be a CSPRNG (the bound enforces the marker).
    #[must_use]
    pub fn with_rng<R2: TryCryptoRng + Send + 'static>(self, rng: R2) -> AsyncMfa<S, C, R2> {
        AsyncMfa {
            store: self.store,
            core: self.core.with_rng(rng),
        }
    }

    /// Seals every TOTP secret and ticket key before it reaches the store, as
    /// [`Mfa::with_sealing_keys`](crate::Mfa::with_sealing_keys). Needs the `encryption`
    /// feature.
    #[cfg(feature = "encryption")]
    #[must_use]
    pub fn with_sealing_keys(mut self, keys: SealingKeys) -> Self {
        self.core.keys = Some(keys);
        self
    }

    /// Sends audit events to `sink`, as [`Mfa::with_events`](crate::Mfa::with_events).
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

    /// The user's MFA status. See [`Mfa::status`](crate::Mfa::status).
    ///
    /// # Errors
    /// Store, clock or decoding failures.
    pub async fn status(&self, user: &UserId) -> Result<MfaStatus, Error> {
        self.core.status(&Awaiting(&self.store), user).await
    }

    /// Starts enabling MFA. See [`Mfa::begin_enrollment`](crate::Mfa::begin_enrollment).
    ///
    /// # Errors
    /// As [`Mfa::begin_enrollment`](crate::Mfa::begin_enrollment).
    pub async fn begin_enrollment(
        &self,
        user: &UserId,
        account_name: &str,
    ) -> Result<Enrollment, Error> {
        self.core
            .begin_enrollment(&Awaiting(&self.store), user, account_name)
            .await
    }

    /// Shows the pending enrollment again, with the same secret. See
    /// [`Mfa::resume_enrollment`](crate::Mfa::resume_enrollment).
    ///
    /// # Errors
    /// As [`Mfa::resume_enrollment`](crate::Mfa::resume_enrollment).
    pub async fn resume_enrollment(&self, user: &UserId) -> Result<Enrollment, Error> {
        self.core
            .resume_enrollment(&Awaiting(&self.store), user)
            .await
    }

    /// Confirms enrollment with the app's current code; returns the recovery codes to show
    /// once. See [`Mfa::confirm_enrollment`](crate::Mfa::confirm_enrollment).
    ///
    /// # Errors
    /// As [`Mfa::confirm_enrollment`](crate::Mfa::confirm_enrollment), and
    /// [`Error::Background`] if the runtime shuts down during the hashing.
    pub async fn confirm_enrollment(
        &self,
        user: &UserId,
        code: &str,
    ) -> Result<RecoveryCodes, Error> {
        self.core
            .confirm_enrollment(&Awaiting(&self.store), user, code)
            .await
    }

    /// Call after the host verified the password. See
    /// [`Mfa::start_login`](crate::Mfa::start_login).
    ///
    /// # Errors
    /// Infrastructure errors only.
    pub async fn start_login(&self, user: &UserId) -> Result<LoginStart, Error> {
        self.core.start_login(&Awaiting(&self.store), user).await
    }

    /// Answers a login challenge with a TOTP code or a recovery code. See
    /// [`Mfa::complete_login`](crate::Mfa::complete_login).
    ///
    /// # Errors
    /// As [`Mfa::complete_login`](crate::Mfa::complete_login), and [`Error::Background`].
    pub async fn complete_login(
        &self,
        user: &UserId,
        ticket: &str,
        factor: SecondFactor<'_>,
    ) -> Result<Authorization, Error> {
        self.core
            .complete_login(&Awaiting(&self.store), user, ticket, factor)
            .await
    }

    /// Replaces every recovery code after a fresh second factor. See
    /// [`Mfa::regenerate_recovery_codes`](crate::Mfa::regenerate_recovery_codes).
    ///
    /// # Errors
    /// As [`Mfa::regenerate_recovery_codes`](crate::Mfa::regenerate_recovery_codes), and
    /// [`Error::Background`].
    pub async fn regenerate_recovery_codes(
        &self,
        user: &UserId,
        reauth: Reauth<'_>,
    ) -> Result<RecoveryCodes, Error> {
        self.core
            .regenerate_recovery_codes(&Awaiting(&self.store), user, reauth)
            .await
    }

    /// Turns MFA off (or resets it for a user who lost the device) after a fresh second
    /// factor. See [`Mfa::disable`](crate::Mfa::disable).
    ///
    /// # Errors
    /// As [`Mfa::disable`](crate::Mfa::disable), and [`Error::Background`].
    pub async fn disable(&self, user: &UserId, reauth: Reauth<'_>) -> Result<(), Error> {
        self.core
            .disable(&Awaiting(&self.store), user, reauth)
            .await
    }

    /// Clears a lock or delay, for the host's support process. See
    /// [`Mfa::unlock`](crate::Mfa::unlock).
    ///
    /// # Errors
    /// Infrastructure errors only.
    pub async fn unlock(&self, user: &UserId) -> Result<(), Error> {
        self.core.unlock(&Awaiting(&self.store), user).await
    }
}

impl<S, C, R> core::fmt::Debug for AsyncMfa<S, C, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AsyncMfa")
            .field("policy", &self.core.policy)
            .finish_non_exhaustive()
    }
}

/// An async store seen through [`Io`], with CPU-heavy work on tokio's blocking pool.
struct Awaiting<'a, S>(&'a S);

impl<S: AsyncStore> Io for Awaiting<'_, S> {
    async fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, Error> {
        self.0
            .load(user)
            .await
            .map_err(|e| Error::Storage(Box::new(e)))
    }

    async fn compare_and_swap(
        &self,
        user: &UserId,
        expected: Option<u64>,
        new: StoredRecord,
    ) -> Result<CasOutcome, Error> {
        self.0
            .compare_and_swap(user, expected, new)
            .await
            .map_err(|e| Error::Storage(Box::new(e)))
    }

    async fn offload<T, F>(&self, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        // Outside a tokio runtime (another executor, a plain `block_on`) there is no blocking
        // pool: that is an error to report, not a panic.
        let handle =
            tokio::runtime::Handle::try_current().map_err(|e| Error::Background(Box::new(e)))?;
        handle
            .spawn_blocking(work)
            .await
            .map_err(|e| Error::Background(Box::new(e)))
    }

    fn pause(&self) -> impl Future<Output = ()> + Send {
        tokio::task::yield_now()
    }
}

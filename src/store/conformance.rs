//! A conformance kit for [`Store`] implementations: run it from your store's own tests to
//! prove the contract the flows rely on (SEC-43), including the races.
//!
//! ```
//! use totp_mfa::{MemoryStore, conformance};
//! let report = conformance::run(MemoryStore::new).expect("the store conforms");
//! assert!(report.checks.len() >= 8);
//! ```
//!
//! Every check uses fresh user ids (with a random part: most start with `conformance-`, and
//! a few are random 15-digit numbers, written with and without a leading `0`, `+`, spaces
//! or `.0`), so a persistent store can be reused across runs; the kit never deletes
//! anything. Run it on a test database, not beside real users.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::testing::Authenticator;
use crate::{
    CasOutcome, Error, LoginStart, ManualClock, Mfa, MfaStatus, Policy, SecondFactor, Store,
    StoredRecord, Throttle, UserId,
};

/// Which check failed, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The check's name.
    pub check: &'static str,
    /// What went wrong.
    pub message: String,
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "store conformance check `{}` failed: {}",
            self.check, self.message
        )
    }
}

impl std::error::Error for Failure {}

/// The checks that passed, with how long each took.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// `(check name, duration)` in the order run.
    pub checks: Vec<(&'static str, Duration)>,
}

impl Report {
    /// The total time.
    #[must_use]
    pub fn total(&self) -> Duration {
        self.checks.iter().map(|(_, d)| *d).sum()
    }
}

type Check<S> = fn(&Arc<S>, &str) -> Result<(), String>;

/// Runs every check against stores made by `make_store` (one per check).
///
/// # Errors
/// The first [`Failure`].
pub fn run<S, F>(make_store: F) -> Result<Report, Failure>
where
    S: Store + 'static,
    F: Fn() -> S,
{
    let checks: [(&'static str, Check<S>); 10] = [
        ("create, read, update", crud),
        ("versions and conflicts", conflicts),
        ("opaque bytes survive exactly", opaque_bytes),
        ("isolation between users", isolation),
        ("user ids compared byte for byte", exact_ids),
        ("concurrent compare-and-swap: one winner", cas_race),
        ("expiry of enrollments and login tickets", expiry),
        ("32 requests with one TOTP code: one success", totp_race),
        (
            "32 requests with one recovery code: one success",
            recovery_race,
        ),
        (
            "200 concurrent wrong guesses: all counted, then locked",
            guess_race,
        ),
    ];
    let run_id = random_suffix();
    let mut report = Report::default();
    for (name, check) in checks {
        let store = Arc::new(make_store());
        let started = Instant::now();
        check(&store, &run_id).map_err(|message| Failure {
            check: name,
            message,
        })?;
        report.checks.push((name, started.elapsed()));
    }
    Ok(report)
}

fn random_suffix() -> String {
    let mut b = [0u8; 8];
    if rand_core::TryRng::try_fill_bytes(&mut getrandom::SysRng, &mut b).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b = (nanos as u64).to_le_bytes();
    }
    data_encoding::HEXLOWER.encode(&b)
}

fn uid(run: &str, name: &str) -> Result<UserId, String> {
    UserId::new(format!("conformance-{run}-{name}")).map_err(|e| e.to_string())
}

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(msg()) }
}

fn load<S: Store>(s: &S, u: &UserId) -> Result<Option<StoredRecord>, String> {
    s.load(u).map_err(|e| format!("load failed: {e}"))
}

fn cas<S: Store>(
    s: &S,
    u: &UserId,
    expected: Option<u64>,
    version: u64,
    data: &[u8],
) -> Result<CasOutcome, String> {
    s.compare_and_swap(u, expected, StoredRecord::new(version, data.to_vec()))
        .map_err(|e| format!("compare_and_swap failed: {e}"))
}

fn crud<S: Store>(s: &Arc<S>, run: &str) -> Result<(), String> {
    let u = uid(run, "crud")?;
    ensure(load(&**s, &u)?.is_none(), || {
        "a new user has a record".into()
    })?;
    ensure(cas(&**s, &u, None, 1, b"one")? == CasOutcome::Saved, || {
        "creating a record did not save".into()
    })?;
    let r = load(&**s, &u)?.ok_or("the created record is missing")?;
    ensure(r.version() == 1 && r.data() == b"one", || {
        format!(
            "read back version {} and {} bytes",
            r.version(),
            r.data().len()
        )
    })?;
    ensure(
        cas(&**s, &u, Some(1), 2, b"two")? == CasOutcome::Saved,
        || "updating at the current version did not save".into(),
    )?;
    let r = load(&**s, &u)?.ok_or("the updated record is missing")?;
    ensure(r.version() == 2 && r.data() == b"two", || {
        "the update was not read back".into()
    })
}

fn conflicts<S: Store>(s: &Arc<S>, run: &str) -> Result<(), String> {
    let u = uid(run, "conflicts")?;
    let _ = cas(&**s, &u, None, 1, b"a")?;
    ensure(
        cas(&**s, &u, None, 1, b"b")? == CasOutcome::Conflict,
        || "creating over an existing record saved".into(),
    )?;
    ensure(
        cas(&**s, &u, Some(7), 8, b"b")? == CasOutcome::Conflict,
        || "an update at a wrong version saved".into(),
    )?;
    let _ = cas(&**s, &u, Some(1), 2, b"c")?;
    ensure(
        cas(&**s, &u, Some(1), 2, b"d")? == CasOutcome::Conflict,
        || "an update at a stale version saved (lost update)".into(),
    )?;
    let r = load(&**s, &u)?.ok_or("record missing")?;
    ensure(r.data() == b"c" && r.version() == 2, || {
        "a refused write changed the record".into()
    })
}

fn opaque_bytes<S: Store>(s: &Arc<S>, run: &str) -> Result<(), String> {
    let u = uid(run, "bytes")?;
    let data: Vec<u8> = (0..8192u32).map(|i| (i * 31 % 256) as u8).collect();
    let _ = cas(&**s, &u, None, 1, &data)?;
    let r = load(&**s, &u)?.ok_or("record missing")?;
    ensure(r.data() == data.as_slice(), || {
        "8 KiB of binary data did not read back byte for byte".into()
    })?;
    let big = u64::MAX - 1;
    let _ = cas(&**s, &u, Some(1), big, b"")?;
    let r = load(&**s, &u)?.ok_or("record missing")?;
    ensure(r.version() == big && r.data().is_empty(), || {
        "a version near u64::MAX or empty data did not survive".into()
    })
}

fn isolation<S: Store>(s: &Arc<S>, run: &str) -> Result<(), String> {
    let a = uid(run, "iso-a")?;
    let b = uid(run, "iso-b")?;
    let _ = cas(&**s, &a, None, 1, b"alice")?;
    ensure(load(&**s, &b)?.is_none(), || {
        "bob sees alice's record".into()
    })?;
    let _ = cas(&**s, &b, None, 1, b"bob")?;
    let _ = cas(&**s, &a, Some(1), 2, b"alice2")?;
    let rb = load(&**s, &b)?.ok_or("bob's record missing")?;
    ensure(rb.data() == b"bob" && rb.version() == 1, || {
        "a write to alice changed bob".into()
    })
}

/// Ids that a case-insensitive, accent-insensitive, normalizing or space-padding collation
/// (MySQL's defaults, SQL Server's `_CI_AS`, `citext`, SQLite's `NOCASE`), or a numeric
/// key column (`"42"`, `"042"` and `"4.2e1"` are one number), takes for one:
/// each must be its own user, or one person's failures lock another and one person's
/// enrollment lands in another's record. Also the longest id, and non-ASCII ones, which a
/// narrow or single-byte column would cut or refuse.
fn exact_ids<S: Store>(s: &Arc<S>, run: &str) -> Result<(), String> {
    let base = format!("conformance-{run}-id-");
    // Numeric-looking ids, which a numeric key column (or an engine that compares text to
    // numbers) folds into one number. A 15-digit number from the run id keeps runs apart
    // and is exact as a 64-bit integer and as a double.
    let n = u64::from_str_radix(run.get(..12).unwrap_or(run), 16).unwrap_or(0)
        % 900_000_000_000_000
        + 100_000_000_000_000;
    let variants = [
        format!("{n}"),
        format!("0{n}"),
        format!("+{n}"),
        format!("{n}.0"),
        format!("{n}e0"),
        format!(" {n}"),
        format!("{n} "),
        format!("{base}alice"),
        format!("{base}Alice"),
        format!("{base}ALICE"),
        format!("{base}alice "),
        format!("{base} alice"),
        format!("{base}caf\u{e9}"),   // é, precomposed (NFC)
        format!("{base}cafe\u{301}"), // e + combining acute (NFD)
        format!("{base}cafe"),
        format!("{base}\u{ff41}lice"), // fullwidth a
        format!("{base}stra\u{df}e"),  // ß
        format!("{base}strasse"),
        format!("{base}\u{1F511}"), // a 4-byte character
        format!("{base}{}", "x".repeat(UserId::MAX_LEN - base.len())),
    ];
    let mut ids = Vec::with_capacity(variants.len());
    for v in &variants {
        ids.push(UserId::new(v.as_str()).map_err(|e| format!("{v:?}: {e}"))?);
    }
    for (i, u) in ids.iter().enumerate() {
        let payload = [i as u8; 3];
        let saved = cas(&**s, u, None, 1, &payload)?;
        ensure(saved == CasOutcome::Saved, || {
            format!(
                "the first write of {u:?} conflicted: the store took it for an id written before"
            )
        })?;
    }
    for (i, u) in ids.iter().enumerate() {
        let r = load(&**s, u)?.ok_or_else(|| format!("{u:?} has no record after its write"))?;
        ensure(r.data() == [i as u8; 3], || {
            format!("{u:?} reads another id's record: ids must compare byte for byte")
        })?;
    }
    Ok(())
}

fn race<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(n));
    let f = Arc::new(f);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (barrier, f) = (barrier.clone(), f.clone());
            thread::spawn(move || {
                barrier.wait();
                f(i)
            })
        })
        .collect();
    handles.into_iter().filter_map(|h| h.join().ok()).collect()
}

fn cas_race<S: Store + 'static>(s: &Arc<S>, run: &str) -> Result<(), String> {
    let u = uid(run, "cas-race")?;
    let _ = cas(&**s, &u, None, 1, b"start")?;
    let store = s.clone();
    let results = race(32, move |i| {
        cas(&*store, &u, Some(1), 2, format!("w{i}").as_bytes())
    });
    let saved = results
        .iter()
        .filter(|r| matches!(r, Ok(CasOutcome::Saved)))
        .count();
    ensure(results.len() == 32 && saved == 1, || {
        format!("{saved} of 32 concurrent writes at the same version saved")
    })
}

const T: u64 = 1_800_000_000;

/// The service the flow checks drive, on the store under test.
type Service<S> = Arc<Mfa<Arc<S>, Arc<ManualClock>>>;

fn service<S: Store + 'static>(
    s: &Arc<S>,
    throttle: Throttle,
) -> Result<(Service<S>, Arc<ManualClock>), String> {
    let clock = Arc::new(ManualClock::new(T));
    let policy = Policy::new("Conformance")
        .with_recovery_hash_rounds(1_000)
        .with_throttle(throttle);
    let mfa = Mfa::new(s.clone(), policy)
        .map_err(|e| e.to_string())?
        .with_clock(clock.clone());
    Ok((Arc::new(mfa), clock))
}

fn no_delays() -> Throttle {
    Throttle {
        free_failures: 100,
        lock_after: 100,
        ..Throttle::default()
    }
}

fn enroll<S: Store + 'static>(
    mfa: &Mfa<Arc<S>, Arc<ManualClock>>,
    u: &UserId,
) -> Result<(Authenticator, crate::RecoveryCodes), String> {
    let e = mfa
        .begin_enrollment(u, "conformance")
        .map_err(|e| e.to_string())?;
    let phone = Authenticator::from_uri(e.uri().as_str()).map_err(|e| e.to_string())?;
    let code = phone.code_at(T).map_err(|e| e.to_string())?;
    let codes = mfa
        .confirm_enrollment(u, &code)
        .map_err(|e| e.to_string())?;
    Ok((phone, codes))
}

fn ticket<S: Store + 'static>(
    mfa: &Mfa<Arc<S>, Arc<ManualClock>>,
    u: &UserId,
) -> Result<String, String> {
    match mfa.start_login(u).map_err(|e| e.to_string())? {
        LoginStart::Challenge(c) => Ok(c.ticket().to_owned()),
        LoginStart::NoMfa => Err("an enrolled user needs no second factor".into()),
    }
}

fn expiry<S: Store + 'static>(s: &Arc<S>, run: &str) -> Result<(), String> {
    let (mfa, clock) = service(s, Throttle::default())?;
    let u = uid(run, "expiry")?;
    let e = mfa.begin_enrollment(&u, "x").map_err(|e| e.to_string())?;
    clock.set(e.expires_at());
    ensure(matches!(mfa.status(&u), Ok(MfaStatus::Disabled)), || {
        "an expired enrollment still shows as pending".into()
    })?;
    ensure(
        matches!(
            mfa.confirm_enrollment(&u, "123456"),
            Err(Error::EnrollmentExpired)
        ),
        || "an expired enrollment was confirmable".into(),
    )?;
    clock.set(T);
    let (phone, _) = enroll(&*mfa, &u)?;
    let t = ticket(&*mfa, &u)?;
    clock.set(T + mfa.policy().challenge_ttl);
    let code = phone
        .code_at(T + mfa.policy().challenge_ttl)
        .map_err(|e| e.to_string())?;
    ensure(
        matches!(
            mfa.complete_login(&u, &t, SecondFactor::Totp(&code)),
            Err(Error::ChallengeExpired)
        ),
        || "an expired login ticket was accepted".into(),
    )
}

fn totp_race<S: Store + 'static>(s: &Arc<S>, run: &str) -> Result<(), String> {
    let (mfa, clock) = service(s, no_delays())?;
    let u = uid(run, "totp-race")?;
    let (phone, _) = enroll(&*mfa, &u)?;
    clock.advance(30);
    let code = phone.code_at(T + 30).map_err(|e| e.to_string())?;
    let tickets = (0..8)
        .map(|_| ticket(&*mfa, &u))
        .collect::<Result<Vec<_>, _>>()?;
    let (m, user) = (mfa.clone(), u.clone());
    let results = race(32, move |i| {
        m.complete_login(&user, &tickets[i % 8], SecondFactor::Totp(&code))
            .map(|_| ())
    });
    let ok = results.iter().filter(|r| r.is_ok()).count();
    ensure(ok == 1, || {
        format!("{ok} of 32 requests with one TOTP code succeeded")
    })
}

fn recovery_race<S: Store + 'static>(s: &Arc<S>, run: &str) -> Result<(), String> {
    let (mfa, _) = service(s, no_delays())?;
    let u = uid(run, "recovery-race")?;
    let (_, codes) = enroll(&*mfa, &u)?;
    let code = codes
        .iter()
        .next()
        .map(|c| c.as_str().to_owned())
        .ok_or("no recovery codes")?;
    let tickets = (0..8)
        .map(|_| ticket(&*mfa, &u))
        .collect::<Result<Vec<_>, _>>()?;
    let (m, user) = (mfa.clone(), u.clone());
    let results = race(32, move |i| {
        m.complete_login(&user, &tickets[i % 8], SecondFactor::RecoveryCode(&code))
            .map(|_| ())
    });
    let ok = results.iter().filter(|r| r.is_ok()).count();
    ensure(ok == 1, || {
        format!("{ok} of 32 requests with one recovery code succeeded")
    })?;
    match mfa.status(&u) {
        Ok(MfaStatus::Active {
            recovery_codes_left: 9,
            ..
        }) => Ok(()),
        other => Err(format!("after the race the status is {other:?}")),
    }
}

fn guess_race<S: Store + 'static>(s: &Arc<S>, run: &str) -> Result<(), String> {
    let (mfa, _) = service(s, no_delays())?;
    let u = uid(run, "guess-race")?;
    let _ = enroll(&*mfa, &u)?;
    let t = ticket(&*mfa, &u)?;
    let (m, user) = (mfa.clone(), u.clone());
    let results = race(200, move |i| {
        m.complete_login(
            &user,
            &t,
            SecondFactor::Totp(&format!("{:06}", 300_000 + i)),
        )
        .map(|_| ())
    });
    if results.iter().any(|r| r.is_ok()) {
        // A guess was right by chance (3 in 10^6 each): nothing to conclude.
        return Ok(());
    }
    let counted = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.is_refused_factor()))
        .count();
    let locked = results
        .iter()
        .filter(|r| matches!(r, Err(Error::Locked)))
        .count();
    ensure(counted == 100 && locked == 100, || {
        format!("{counted} guesses checked and {locked} refused as locked (expected 100 and 100)")
    })?;
    match mfa.status(&u) {
        Ok(MfaStatus::Active {
            failures: 100,
            locked: true,
            ..
        }) => Ok(()),
        other => Err(format!("after 200 guesses the status is {other:?}")),
    }
}

/// Runs every check against async stores made by `make_store` (one per check), driving each
/// call to completion on `runtime` with [`Handle::block_on`](tokio::runtime::Handle::block_on).
/// Needs the `async` feature.
///
/// The kit's concurrent requests come from its own OS threads, each blocking on `runtime`
/// for its call, so the store's futures run concurrently as a service's would. Two rules
/// follow from `block_on`:
///
/// * Call this from a plain thread, such as a `#[test]` function, never from inside an async
///   context (a `#[tokio::test]` or a task): `block_on` panics there.
/// * Give it the handle of a multi-threaded runtime (or of a runtime another thread keeps
///   running with `Runtime::block_on`), so that tasks the store spawned, such as a database
///   connection, make progress.
///
/// ```
/// use totp_mfa::{MemoryStore, conformance};
/// let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
/// let report = conformance::run_async(runtime.handle(), MemoryStore::new).expect("conforms");
/// assert_eq!(report.checks.len(), 10);
/// ```
///
/// A store that connects asynchronously is made with the same handle:
///
/// ```no_run
/// # use totp_mfa::{MemoryStore, conformance};
/// # async fn connect(_: &str) -> Result<MemoryStore, std::io::Error> { Ok(MemoryStore::new()) }
/// # let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
/// let handle = runtime.handle().clone();
/// let report = conformance::run_async(runtime.handle(), || {
///     // Say, PostgresStore::connect("host=... dbname=test").
///     handle.block_on(connect("host=... dbname=test")).unwrap()
/// })?;
/// # Ok::<(), conformance::Failure>(())
/// ```
///
/// # Errors
/// The first [`Failure`].
#[cfg(feature = "async")]
pub fn run_async<S, F>(runtime: &tokio::runtime::Handle, make_store: F) -> Result<Report, Failure>
where
    S: crate::AsyncStore + 'static,
    F: Fn() -> S,
{
    run(|| BlockOn {
        store: make_store(),
        runtime: runtime.clone(),
    })
}

/// An [`AsyncStore`](crate::AsyncStore) seen as a [`Store`]: every call blocks the calling
/// thread on the runtime until the store's future completes.
#[cfg(feature = "async")]
struct BlockOn<S> {
    store: S,
    runtime: tokio::runtime::Handle,
}

#[cfg(feature = "async")]
impl<S: crate::AsyncStore> Store for BlockOn<S> {
    type Error = S::Error;

    fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, Self::Error> {
        self.runtime.block_on(self.store.load(user))
    }

    fn compare_and_swap(
        &self,
        user: &UserId,
        expected: Option<u64>,
        new: StoredRecord,
    ) -> Result<CasOutcome, Self::Error> {
        self.runtime
            .block_on(self.store.compare_and_swap(user, expected, new))
    }
}

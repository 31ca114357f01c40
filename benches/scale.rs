//! Throughput of complete logins under concurrency, per store: 1, 8 and 64 client threads
//! logging in to one user (every login contends for one record) and to many users (each
//! client owns its own users; only the store itself is shared).
//!
//! `cargo bench --bench scale` prints a Markdown table. Each configuration runs for
//! `TOTP_MFA_SCALE_SECS` seconds (default 5), so the whole run is bounded: 6 configurations
//! per store plus the enrollments.
//!
//! A login is what a server does after the password: `start_login`, then `complete_login`
//! with the code the user's app shows. Each login is given its own time step, so every code
//! is fresh when it is made; on one user a login can still be refused because another one
//! won the race meanwhile (its ticket is spent, or a later step was used first). Those
//! refusals are complete transitions too (the failure is stored) and are counted apart.
//! Compare-and-swap retries are counted by a store wrapper: every `compare_and_swap` that
//! returned `Conflict` made `Mfa` re-run its transition once.
//!
//! The time is per thread (a thread-local clock): each client moves its own clock to the
//! step it is logging in with, so no client's code expires because another moved time on.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use totp_mfa::testing::Authenticator;
use totp_mfa::{
    CasOutcome, Clock, ClockError, Error, LoginStart, MemoryStore, Mfa, Policy, SecondFactor,
    Store, StoredRecord, Throttle, UserId,
};

const PERIOD: u64 = 30;
/// Users in the "many users" configurations.
const MANY_USERS: usize = 512;
const CLIENTS: [usize; 3] = [1, 8, 64];

/// The stores measured. SQLite and PostgreSQL join here, one line each, when they exist.
fn main() {
    let secs = std::env::var("TOTP_MFA_SCALE_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0 && *s <= 600.0)
        .unwrap_or(5.0);
    let per_config = Duration::from_secs_f64(secs);
    println!(
        "Complete logins (start_login + complete_login, valid TOTP code), {secs} s per \
         configuration, {} hardware threads.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("{}", Report::HEADER);
    scale("memory", MemoryStore::new, per_config);
    #[cfg(feature = "sqlite")]
    {
        // A file database, as a deployment would use (WAL, one connection behind a mutex).
        let dir = std::env::temp_dir().join(format!("totp-mfa-scale-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let counter = std::sync::atomic::AtomicU32::new(0);
        scale(
            "sqlite (file)",
            || {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                totp_mfa::SqliteStore::open(dir.join(format!("scale-{n}.db")))
                    .expect("open the SQLite benchmark database")
            },
            per_config,
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Runs every configuration against a fresh `make()` store per user layout.
fn scale<S: Store>(name: &str, make: impl Fn() -> S, per_config: Duration) {
    for layout in [Layout::OneUser, Layout::ManyUsers] {
        let world = World::new(make(), layout.users());
        for clients in CLIENTS {
            let report = world.run(layout, clients, per_config);
            println!("{}", report.row(name, layout, clients));
        }
    }
}

#[derive(Clone, Copy)]
enum Layout {
    OneUser,
    ManyUsers,
}

impl Layout {
    fn users(self) -> usize {
        match self {
            Layout::OneUser => 1,
            Layout::ManyUsers => MANY_USERS,
        }
    }
}

thread_local! {
    static NOW: Cell<u64> = const { Cell::new(0) };
}

/// Each thread's own time, set before each login.
struct ThreadClock;

impl Clock for ThreadClock {
    fn now(&self) -> Result<u64, ClockError> {
        Ok(NOW.with(Cell::get))
    }
}

/// A store that counts compare-and-swap calls and the conflicts among them.
struct Counting<S> {
    inner: S,
    cas: AtomicU64,
    conflicts: AtomicU64,
}

impl<S: Store> Store for Counting<S> {
    type Error = S::Error;

    fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, Self::Error> {
        self.inner.load(user)
    }

    fn compare_and_swap(
        &self,
        user: &UserId,
        expected: Option<u64>,
        new: StoredRecord,
    ) -> Result<CasOutcome, Self::Error> {
        let outcome = self.inner.compare_and_swap(user, expected, new)?;
        self.cas.fetch_add(1, Ordering::Relaxed);
        if outcome == CasOutcome::Conflict {
            self.conflicts.fetch_add(1, Ordering::Relaxed);
        }
        Ok(outcome)
    }
}

struct World<S> {
    mfa: Mfa<Counting<S>, ThreadClock>,
    users: Vec<(UserId, Authenticator)>,
    /// The next unused time step (all clients of all configurations draw from it).
    next_step: AtomicU64,
}

impl<S: Store> World<S> {
    fn new(store: S, users: usize) -> Self {
        let store = Counting {
            inner: store,
            cas: AtomicU64::new(0),
            conflicts: AtomicU64::new(0),
        };
        // Logins never touch the recovery hashes: the cheapest rounds make enrolling fast.
        let policy = Policy::new("Example")
            .with_recovery_hash_rounds(1_000)
            .with_throttle(Throttle {
                free_failures: 100,
                lock_after: 100,
                ..Throttle::default()
            });
        let mfa = Mfa::new(store, policy).unwrap().with_clock(ThreadClock);
        let start = 1_800_000_000 / PERIOD;
        NOW.with(|n| n.set(start * PERIOD));
        let users = (0..users)
            .map(|i| {
                let user = UserId::new(format!("user-{i}")).unwrap();
                let e = mfa.begin_enrollment(&user, "someone@example.com").unwrap();
                let phone = Authenticator::from_uri(e.uri().as_str()).unwrap();
                let code = phone.code_at(start * PERIOD).unwrap();
                mfa.confirm_enrollment(&user, &code).unwrap();
                (user, phone)
            })
            .collect();
        World {
            mfa,
            users,
            next_step: AtomicU64::new(start + 1),
        }
    }

    fn run(&self, layout: Layout, clients: usize, duration: Duration) -> Report {
        let cas_before = self.mfa.store().cas.load(Ordering::Relaxed);
        let conflicts_before = self.mfa.store().conflicts.load(Ordering::Relaxed);
        let started = Instant::now();
        let deadline = started + duration;
        let tallies: Vec<Tally> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..clients)
                .map(|client| scope.spawn(move || self.client(layout, client, clients, deadline)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let elapsed = started.elapsed();
        let mut total = Tally::default();
        for t in tallies {
            total.merge(t);
        }
        total.latencies.sort_unstable();
        Report {
            elapsed,
            cas: self.mfa.store().cas.load(Ordering::Relaxed) - cas_before,
            conflicts: self.mfa.store().conflicts.load(Ordering::Relaxed) - conflicts_before,
            tally: total,
        }
    }

    /// One client: logs in again and again until the deadline.
    fn client(&self, layout: Layout, client: usize, clients: usize, deadline: Instant) -> Tally {
        let mut tally = Tally::default();
        // The users this client logs in to: all clients share the one user, or each owns a
        // disjoint slice of the many.
        let mine: Vec<&(UserId, Authenticator)> = match layout {
            Layout::OneUser => self.users.iter().collect(),
            Layout::ManyUsers => self.users.iter().skip(client).step_by(clients).collect(),
        };
        if mine.is_empty() {
            return tally;
        }
        let mut i = 0usize;
        while Instant::now() < deadline {
            let (user, phone) = mine[i % mine.len()];
            i += 1;
            // A step no other login uses, later than every step this client used before.
            let step = self.next_step.fetch_add(1, Ordering::Relaxed);
            NOW.with(|n| n.set(step * PERIOD + 1));
            let code = phone.totp().generate_at_step(step);
            let start = Instant::now();
            let outcome = match self.mfa.start_login(user) {
                Ok(LoginStart::Challenge(c)) => {
                    self.mfa
                        .complete_login(user, c.ticket(), SecondFactor::Totp(code.as_str()))
                }
                Ok(LoginStart::NoMfa) => panic!("{user:?} is enrolled"),
                Err(e) => Err(e),
            };
            let nanos = start.elapsed().as_nanos();
            tally
                .latencies
                .push(u64::try_from(nanos).unwrap_or(u64::MAX));
            match outcome {
                Ok(_) => tally.ok += 1,
                Err(Error::ChallengeInvalid) => tally.ticket_spent += 1,
                Err(Error::CodeAlreadyUsed { .. }) => tally.step_used += 1,
                Err(Error::Throttled { .. } | Error::Locked) => {
                    tally.throttled += 1;
                    self.mfa.unlock(user).unwrap();
                }
                Err(Error::Contention) => tally.contention += 1,
                Err(e) => panic!("unexpected login outcome: {e}"),
            }
        }
        tally
    }
}

#[derive(Default)]
struct Tally {
    latencies: Vec<u64>,
    ok: u64,
    ticket_spent: u64,
    step_used: u64,
    throttled: u64,
    contention: u64,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.ok += other.ok;
        self.ticket_spent += other.ticket_spent;
        self.step_used += other.step_used;
        self.throttled += other.throttled;
        self.contention += other.contention;
    }
}

struct Report {
    elapsed: Duration,
    cas: u64,
    conflicts: u64,
    tally: Tally,
}

impl Report {
    const HEADER: &'static str = "| store | users | clients | logins/s | accepted/s | \
        p50 µs | p99 µs | logins | accepted | refused: ticket spent / step used / throttled / \
        contention | CAS calls | CAS retries (conflicts) | retries per login |\n\
        |---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|";

    fn row(&self, store: &str, layout: Layout, clients: usize) -> String {
        let t = &self.tally;
        let n = t.latencies.len() as u64;
        let secs = self.elapsed.as_secs_f64();
        let pct = |p: f64| -> f64 {
            if t.latencies.is_empty() {
                return 0.0;
            }
            let i = ((t.latencies.len() as f64 - 1.0) * p).round() as usize;
            t.latencies[i] as f64 / 1_000.0
        };
        format!(
            "| {store} | {} | {clients} | {:.0} | {:.0} | {:.1} | {:.1} | {n} | {} | {} / {} / {} / {} | {} | {} | {:.3} |",
            layout.users(),
            n as f64 / secs,
            t.ok as f64 / secs,
            pct(0.50),
            pct(0.99),
            t.ok,
            t.ticket_spent,
            t.step_used,
            t.throttled,
            t.contention,
            self.cas,
            self.conflicts,
            if n == 0 {
                0.0
            } else {
                self.conflicts as f64 / n as f64
            },
        )
    }
}

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
//!
//! With the `async` feature the same configurations also run through `AsyncMfa` on a
//! multi-thread tokio runtime (one worker per hardware thread), clients being tasks with a
//! task-local clock: on `MemoryStore` (what the async face itself costs: every
//! `complete_login` checks the factor on the blocking pool), and with the `postgres`
//! feature on `PostgresStore`, against a throwaway server started for the run
//! (`tests/support/pg_server.rs`) with `initdb`'s default, durable settings (fsync and
//! synchronous commit on). The clients share a pool of `TOTP_MFA_SCALE_PG_CONNECTIONS`
//! (default 4) stores, one connection each, each call going to the next: one connection
//! pipelines the requests of every task but its server process runs them one at a time,
//! so a single connection would measure one backend, not the server. Without PostgreSQL
//! installed (`initdb`, `pg_ctl`) its rows are skipped with a note under the table.
//! `TOTP_MFA_SCALE_PG_SETTINGS` adds server settings (`-c fsync=off ...`).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use totp_mfa::testing::Authenticator;
use totp_mfa::{
    Authorization, CasOutcome, Clock, ClockError, Error, LoginStart, MemoryStore, Mfa, Policy,
    SecondFactor, Store, StoredRecord, Throttle, UserId,
};

const PERIOD: u64 = 30;
/// Users in the "many users" configurations.
const MANY_USERS: usize = 512;
const CLIENTS: [usize; 3] = [1, 8, 64];

#[cfg(feature = "postgres")]
#[path = "../tests/support/pg_server.rs"]
mod pg_server;

/// The stores measured: memory and SQLite through `Mfa` on threads, then memory and
/// PostgreSQL through `AsyncMfa` on tokio tasks.
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
    #[cfg(feature = "async")]
    let notes = on_tokio::scale_all(per_config);
    #[cfg(not(feature = "async"))]
    let notes = ["AsyncMfa and postgres: not built (features `async`, `postgres`)".to_owned()];
    println!();
    for note in notes {
        println!("{note}");
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
        self.count(outcome);
        Ok(outcome)
    }
}

impl<S> Counting<S> {
    fn new(inner: S) -> Self {
        Counting {
            inner,
            cas: AtomicU64::new(0),
            conflicts: AtomicU64::new(0),
        }
    }

    fn count(&self, outcome: CasOutcome) {
        self.cas.fetch_add(1, Ordering::Relaxed);
        if outcome == CasOutcome::Conflict {
            self.conflicts.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// (CAS calls, conflicts) so far.
    fn counts(&self) -> (u64, u64) {
        (
            self.cas.load(Ordering::Relaxed),
            self.conflicts.load(Ordering::Relaxed),
        )
    }
}

/// The policy of every configuration. Logins never touch the recovery hashes: the cheapest
/// rounds make enrolling fast. The throttle never delays within a run.
fn policy() -> Policy {
    Policy::new("Example")
        .with_recovery_hash_rounds(1_000)
        .with_throttle(Throttle {
            free_failures: 100,
            lock_after: 100,
            ..Throttle::default()
        })
}

/// The users client `client` of `clients` logs in to: all clients share the one user, or
/// each owns a disjoint slice of the many.
fn users_of(
    users: &[(UserId, Authenticator)],
    layout: Layout,
    client: usize,
    clients: usize,
) -> Vec<&(UserId, Authenticator)> {
    match layout {
        Layout::OneUser => users.iter().collect(),
        Layout::ManyUsers => users.iter().skip(client).step_by(clients).collect(),
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
        let store = Counting::new(store);
        let mfa = Mfa::new(store, policy()).unwrap().with_clock(ThreadClock);
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
        let before = self.mfa.store().counts();
        let started = Instant::now();
        let deadline = started + duration;
        let tallies: Vec<Tally> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..clients)
                .map(|client| scope.spawn(move || self.client(layout, client, clients, deadline)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        Report::new(
            started.elapsed(),
            before,
            self.mfa.store().counts(),
            tallies,
        )
    }

    /// One client: logs in again and again until the deadline.
    fn client(&self, layout: Layout, client: usize, clients: usize, deadline: Instant) -> Tally {
        let mut tally = Tally::default();
        let mine = users_of(&self.users, layout, client, clients);
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
            if tally.record(start.elapsed(), outcome) {
                self.mfa.unlock(user).unwrap();
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
    /// Counts one login that took `took`; true when the user must be unlocked.
    fn record(&mut self, took: Duration, outcome: Result<Authorization, Error>) -> bool {
        self.latencies
            .push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
        match outcome {
            Ok(_) => self.ok += 1,
            Err(Error::ChallengeInvalid) => self.ticket_spent += 1,
            Err(Error::CodeAlreadyUsed { .. }) => self.step_used += 1,
            Err(Error::Throttled { .. } | Error::Locked) => {
                self.throttled += 1;
                return true;
            }
            Err(Error::Contention) => self.contention += 1,
            Err(e) => panic!("unexpected login outcome: {e}"),
        }
        false
    }

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
    /// The report of a configuration: the clients' tallies and the store's counts
    /// (CAS calls, conflicts) before and after.
    fn new(elapsed: Duration, before: (u64, u64), after: (u64, u64), tallies: Vec<Tally>) -> Self {
        let mut total = Tally::default();
        for t in tallies {
            total.merge(t);
        }
        total.latencies.sort_unstable();
        Report {
            elapsed,
            cas: after.0 - before.0,
            conflicts: after.1 - before.1,
            tally: total,
        }
    }

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

/// The same configurations through `AsyncMfa`, clients being tokio tasks.
#[cfg(feature = "async")]
mod on_tokio {
    use std::cell::Cell;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use tokio::runtime::Runtime;
    use totp_mfa::testing::Authenticator;
    use totp_mfa::{
        AsyncMfa, AsyncStore, CasOutcome, Clock, ClockError, LoginStart, MemoryStore, SecondFactor,
        StoredRecord, UserId,
    };

    use super::{CLIENTS, Counting, Layout, PERIOD, Report, Tally, policy, users_of};

    tokio::task_local! {
        static NOW: Cell<u64>;
    }

    /// Each task's own time: tasks move between worker threads at every `await`, so a
    /// thread-local clock cannot serve them.
    struct TaskClock;

    impl Clock for TaskClock {
        fn now(&self) -> Result<u64, ClockError> {
            Ok(NOW
                .try_with(Cell::get)
                .expect("the clock is read inside a task with its own time"))
        }
    }

    impl<S: AsyncStore> AsyncStore for Counting<S> {
        type Error = S::Error;

        async fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, Self::Error> {
            self.inner.load(user).await
        }

        async fn compare_and_swap(
            &self,
            user: &UserId,
            expected: Option<u64>,
            new: StoredRecord,
        ) -> Result<CasOutcome, Self::Error> {
            let outcome = self.inner.compare_and_swap(user, expected, new).await?;
            self.count(outcome);
            Ok(outcome)
        }
    }

    /// Runs the async configurations; returns the notes to print under the table.
    pub(super) fn scale_all(per_config: Duration) -> Vec<String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let mut notes = vec![format!(
            "AsyncMfa rows: a multi-thread tokio runtime with {} worker threads, one task per \
             client.",
            rt.metrics().num_workers()
        )];
        scale(&rt, "memory (AsyncMfa)", MemoryStore::new, per_config);
        #[cfg(feature = "postgres")]
        notes.push(postgres::scale(&rt, per_config));
        #[cfg(not(feature = "postgres"))]
        notes.push("postgres: not built (feature `postgres`)".to_owned());
        notes
    }

    fn scale<S: AsyncStore + 'static>(
        rt: &Runtime,
        name: &str,
        mut make: impl FnMut() -> S,
        per_config: Duration,
    ) {
        for layout in [Layout::OneUser, Layout::ManyUsers] {
            let store = make();
            let world = rt.block_on(World::new(store, layout.users()));
            for clients in CLIENTS {
                let report = rt.block_on(world.run(layout, clients, per_config));
                println!("{}", report.row(name, layout, clients));
            }
        }
    }

    struct World<S> {
        mfa: AsyncMfa<Counting<S>, TaskClock>,
        users: Vec<(UserId, Authenticator)>,
        /// The next unused time step (all clients of all configurations draw from it).
        next_step: AtomicU64,
    }

    impl<S: AsyncStore + 'static> World<S> {
        async fn new(store: S, users: usize) -> Arc<Self> {
            let mfa = AsyncMfa::new(Counting::new(store), policy())
                .unwrap()
                .with_clock(TaskClock);
            let start = 1_800_000_000 / PERIOD;
            let enroll = async {
                let mut enrolled = Vec::with_capacity(users);
                for i in 0..users {
                    let user = UserId::new(format!("user-{i}")).unwrap();
                    let e = mfa
                        .begin_enrollment(&user, "someone@example.com")
                        .await
                        .unwrap();
                    let phone = Authenticator::from_uri(e.uri().as_str()).unwrap();
                    let code = phone.code_at(start * PERIOD).unwrap();
                    mfa.confirm_enrollment(&user, &code).await.unwrap();
                    enrolled.push((user, phone));
                }
                enrolled
            };
            let users = NOW.scope(Cell::new(start * PERIOD), enroll).await;
            Arc::new(World {
                mfa,
                users,
                next_step: AtomicU64::new(start + 1),
            })
        }

        async fn run(
            self: &Arc<Self>,
            layout: Layout,
            clients: usize,
            duration: Duration,
        ) -> Report {
            let before = self.mfa.store().counts();
            let started = Instant::now();
            let deadline = started + duration;
            let tasks: Vec<_> = (0..clients)
                .map(|client| {
                    let world = Arc::clone(self);
                    tokio::spawn(NOW.scope(
                        Cell::new(0),
                        world.client(layout, client, clients, deadline),
                    ))
                })
                .collect();
            let mut tallies = Vec::with_capacity(clients);
            for task in tasks {
                tallies.push(task.await.unwrap());
            }
            Report::new(
                started.elapsed(),
                before,
                self.mfa.store().counts(),
                tallies,
            )
        }

        /// One client: logs in again and again until the deadline.
        async fn client(
            self: Arc<Self>,
            layout: Layout,
            client: usize,
            clients: usize,
            deadline: Instant,
        ) -> Tally {
            let mut tally = Tally::default();
            let mine = users_of(&self.users, layout, client, clients);
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
                let outcome = match self.mfa.start_login(user).await {
                    Ok(LoginStart::Challenge(c)) => {
                        self.mfa
                            .complete_login(user, c.ticket(), SecondFactor::Totp(code.as_str()))
                            .await
                    }
                    Ok(LoginStart::NoMfa) => panic!("{user:?} is enrolled"),
                    Err(e) => Err(e),
                };
                if tally.record(start.elapsed(), outcome) {
                    self.mfa.unlock(user).await.unwrap();
                }
            }
            tally
        }
    }

    #[cfg(feature = "postgres")]
    mod postgres {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::time::Duration;

        use tokio::runtime::Runtime;
        use totp_mfa::{
            AsyncStore, CasOutcome, PostgresError, PostgresStore, StoredRecord, UserId,
        };

        use super::super::pg_server::{PgServer, postgres_bin_dir};

        /// Connections, one store each; every call goes to the next.
        struct Pool {
            stores: Vec<PostgresStore>,
            next: AtomicUsize,
        }

        impl Pool {
            fn pick(&self) -> &PostgresStore {
                &self.stores[self.next.fetch_add(1, Ordering::Relaxed) % self.stores.len()]
            }
        }

        impl AsyncStore for Pool {
            type Error = PostgresError;

            async fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, PostgresError> {
                self.pick().load(user).await
            }

            async fn compare_and_swap(
                &self,
                user: &UserId,
                expected: Option<u64>,
                new: StoredRecord,
            ) -> Result<CasOutcome, PostgresError> {
                self.pick().compare_and_swap(user, expected, new).await
            }
        }

        /// The PostgreSQL rows, on a throwaway server; returns the note describing it (or
        /// saying why there are no rows).
        pub(in super::super) fn scale(rt: &Runtime, per_config: Duration) -> String {
            let began = std::time::Instant::now();
            let Some(bin) = postgres_bin_dir() else {
                return "postgres: SKIPPED, PostgreSQL not found (initdb and pg_ctl, on PATH \
                        or under /usr/lib/postgresql/*/bin). Install `postgresql` to measure \
                        it."
                .to_owned();
            };
            let connections = std::env::var("TOTP_MFA_SCALE_PG_CONNECTIONS")
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
                .filter(|n| (1..=64).contains(n))
                .unwrap_or(4);
            let settings = std::env::var("TOTP_MFA_SCALE_PG_SETTINGS").unwrap_or_default();
            let server = PgServer::start_with(bin, &settings);
            let name = format!("postgres ({connections} conn)");
            let mut databases = 0;
            super::scale(
                rt,
                &name,
                || {
                    databases += 1;
                    let db = format!("scale_{databases}");
                    let url = server.url(&db);
                    rt.block_on(async {
                        server.create_database(&db).await;
                        let mut stores = Vec::with_capacity(connections);
                        for _ in 0..connections {
                            stores.push(PostgresStore::connect(&url).await.unwrap());
                        }
                        Pool {
                            stores,
                            next: AtomicUsize::new(0),
                        }
                    })
                },
                per_config,
            );
            let facts = rt.block_on(async {
                let client = server.raw("postgres").await;
                let mut facts = Vec::new();
                for setting in [
                    "server_version",
                    "fsync",
                    "synchronous_commit",
                    "full_page_writes",
                    "shared_buffers",
                    "transaction_isolation",
                ] {
                    let row = client
                        .query_one(&format!("SHOW {setting}"), &[])
                        .await
                        .unwrap();
                    facts.push(format!("{setting}={}", row.get::<_, String>(0)));
                }
                facts.join(", ")
            });
            format!(
                "{name}: a throwaway local server on 127.0.0.1 (TCP), {facts}{}; \
                 {connections} connection(s), each call to the next; {:.0} s for these rows \
                 (server start, enrollments, 6 configurations).",
                if settings.is_empty() {
                    String::new()
                } else {
                    format!(" (added settings: {settings})")
                },
                began.elapsed().as_secs_f64()
            )
        }
    }
}

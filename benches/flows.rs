//! Whole transitions through `Mfa` on the in-memory store: a TOTP login, and a recovery code
//! checked against a full set.
//!
//! Run everything, repeated and summarized, with `bash benches/run.sh`; this file alone with
//! `cargo bench --bench flows`. BENCHMARKS.md explains every figure.
//!
//! * `login/start_login + complete_login (TOTP)`: the password was checked; a challenge is
//!   issued and answered with a valid code, the record is compare-and-swapped twice (charge,
//!   commit) and an authorization with fresh tokens comes back. The manual clock moves two
//!   steps before each login (a code is single-use per step); computing the phone's code is
//!   not timed.
//! * `login/complete_login (TOTP)`: the answer alone.
//! * `recovery/complete_login wrong code, full set of 10`: a well-formed wrong recovery code
//!   is checked against every stored code (PBKDF2-HMAC-SHA256, the default 10,000 rounds,
//!   constant time: a right code costs the same) and the failure is stored. The throttle
//!   never locks (100 free failures) and the user is unlocked, untimed, every 50 attempts.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use totp_mfa::testing::Authenticator;
use totp_mfa::{
    Clock, Error, LoginStart, ManualClock, MemoryStore, Mfa, Policy, SecondFactor, Throttle, UserId,
};

const T0: u64 = 1_800_000_000;
/// How far the clock moves before each login: two steps. A code is single-use per step, and
/// once in a million logins the next step's code equals the current one, so the window's
/// latest match (the next step) is the one spent; moving one step would then replay it.
const STEP_APART: u64 = 60;

type World = Mfa<MemoryStore, Arc<ManualClock>>;

/// An enrolled user on a fresh store, with the default policy apart from a throttle that
/// never gets in the way of repeated attempts.
fn world() -> (World, Arc<ManualClock>, UserId, Authenticator) {
    let clock = Arc::new(ManualClock::new(T0));
    let policy = Policy::new("Example").with_throttle(Throttle {
        free_failures: 100,
        lock_after: 100,
        ..Throttle::default()
    });
    let mfa = Mfa::new(MemoryStore::new(), policy)
        .unwrap()
        .with_clock(clock.clone());
    let user = UserId::new("alice").unwrap();
    let enrollment = mfa.begin_enrollment(&user, "alice@example.com").unwrap();
    let phone = Authenticator::from_uri(enrollment.uri().as_str()).unwrap();
    let _codes = mfa
        .confirm_enrollment(&user, &phone.code_at(T0).unwrap())
        .unwrap();
    (mfa, clock, user, phone)
}

fn ticket(mfa: &World, user: &UserId) -> String {
    match mfa.start_login(user).unwrap() {
        LoginStart::Challenge(c) => c.ticket().to_owned(),
        LoginStart::NoMfa => panic!("the user is enrolled"),
    }
}

fn login(c: &mut Criterion) {
    let mut g = c.benchmark_group("login");

    let (mfa, clock, user, phone) = world();
    g.bench_function("start_login + complete_login (TOTP)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                clock.advance(STEP_APART);
                let code = phone.code_at(clock.now().unwrap()).unwrap();
                let start = Instant::now();
                let challenge = match mfa.start_login(black_box(&user)).unwrap() {
                    LoginStart::Challenge(c) => c,
                    LoginStart::NoMfa => unreachable!(),
                };
                let auth = mfa
                    .complete_login(&user, challenge.ticket(), SecondFactor::Totp(&code))
                    .unwrap();
                total += start.elapsed();
                drop(black_box(auth));
            }
            total
        });
    });

    let (mfa, clock, user, phone) = world();
    g.bench_function("complete_login (TOTP)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                clock.advance(STEP_APART);
                let code = phone.code_at(clock.now().unwrap()).unwrap();
                let ticket = ticket(&mfa, &user);
                let start = Instant::now();
                let auth = mfa
                    .complete_login(black_box(&user), &ticket, SecondFactor::Totp(&code))
                    .unwrap();
                total += start.elapsed();
                drop(black_box(auth));
            }
            total
        });
    });
    g.finish();
}

fn recovery(c: &mut Criterion) {
    let mut g = c.benchmark_group("recovery");
    g.sample_size(10);
    let (mfa, _clock, user, _phone) = world();
    // Well-formed, and 80 random bits make a collision with a stored code impossible.
    let wrong = "0000-0000-0000-0000";
    let mut ticket = ticket(&mfa, &user);
    match mfa.complete_login(&user, &ticket, SecondFactor::RecoveryCode(wrong)) {
        Err(Error::WrongRecoveryCode { .. }) => {}
        other => panic!("expected a wrong recovery code, got {other:?}"),
    }
    let mut since_unlock = 1u32;
    g.bench_function("complete_login wrong code, full set of 10", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if since_unlock >= 50 {
                    mfa.unlock(&user).unwrap();
                    ticket = self::ticket(&mfa, &user);
                    since_unlock = 0;
                }
                let start = Instant::now();
                let outcome = mfa.complete_login(
                    black_box(&user),
                    &ticket,
                    SecondFactor::RecoveryCode(black_box(wrong)),
                );
                total += start.elapsed();
                since_unlock += 1;
                assert!(matches!(outcome, Err(Error::WrongRecoveryCode { .. })));
            }
            total
        });
    });
    g.finish();
}

/// As in benches/otp.rs: 1.5 s of warm-up, 3 s of measurement; the command line overrides it
/// (the recovery group keeps 10 samples of its ~20 ms checks).
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(1_500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = login, recovery
}
criterion_main!(benches);

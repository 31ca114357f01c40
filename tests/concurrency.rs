//! Races: each code is accepted at most once and every wrong guess is counted, however many
//! requests arrive at once (SEC-13, SEC-15, SEC-23).

mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use common::*;
use totp_mfa::{Error, MfaStatus, SecondFactor, Throttle};

/// Runs `n` threads that start together and return their results.
fn race<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(n));
    let f = Arc::new(f);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let barrier = barrier.clone();
            let f = f.clone();
            thread::spawn(move || {
                barrier.wait();
                f(i)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn thirty_two_requests_with_one_valid_totp_code_yield_one_success() {
    // No delays, so that every request is checked (replays are counted as failures).
    let w = Arc::new(world_with(policy().with_throttle(Throttle {
        free_failures: 100,
        lock_after: 100,
        ..Throttle::default()
    })));
    let alice = user("alice");
    let (phone, _) = w.enroll(&alice);
    w.clock.advance(30);
    let code = phone.code_at(w.now()).unwrap();
    // 8 open challenges, 4 requests on each.
    let tickets: Vec<String> = (0..8)
        .map(|_| w.challenge(&alice).ticket().to_owned())
        .collect();
    let tickets = Arc::new(tickets);
    let w2 = w.clone();
    let results = race(32, move |i| {
        w2.mfa
            .complete_login(&user("alice"), &tickets[i % 8], SecondFactor::Totp(&code))
    });
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        match r {
            // Checked after the winner committed: the step is spent.
            Error::CodeAlreadyUsed { .. } => {}
            // Charged after the winner committed: a successful login spends every open
            // ticket of the user.
            Error::ChallengeInvalid => {}
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn thirty_two_requests_with_one_recovery_code_yield_one_success() {
    let w = Arc::new(world());
    let alice = user("alice");
    let (_, codes) = w.enroll(&alice);
    let code = first_code(&codes);
    let tickets: Arc<Vec<String>> = Arc::new(
        (0..32)
            .map(|_| w.challenge(&alice).ticket().to_owned())
            .collect(),
    );
    let w2 = w.clone();
    let results = race(32, move |i| {
        w2.mfa.complete_login(
            &user("alice"),
            &tickets[i],
            SecondFactor::RecoveryCode(&code),
        )
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(matches!(
        w.mfa.status(&alice).unwrap(),
        MfaStatus::Active {
            recovery_codes_left: 9,
            ..
        }
    ));
}

#[test]
fn two_hundred_concurrent_wrong_guesses_are_all_counted() {
    // No delays, lock at the NIST maximum of 100: exactly 100 guesses are checked and
    // counted, the other 100 find the factor locked.
    let w = Arc::new(world_with(policy().with_throttle(Throttle {
        free_failures: 100,
        lock_after: 100,
        ..Throttle::default()
    })));
    let alice = user("alice");
    let (_, _) = w.enroll(&alice);
    let ticket = w.challenge(&alice).ticket().to_owned();
    let w2 = w.clone();
    let results = race(200, move |i| {
        let guess = format!("{:06}", 500_000 + i); // distinct guesses
        w2.mfa
            .complete_login(&user("alice"), &ticket, SecondFactor::Totp(&guess))
    });
    let counted = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.is_refused_factor()))
        .count();
    let locked = results
        .iter()
        .filter(|r| matches!(r, Err(Error::Locked)))
        .count();
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    // A guess may be right by chance (3 in 10^6 each); then the count restarts. Allow it.
    if accepted == 0 {
        assert_eq!((counted, locked), (100, 100), "{results:?}");
        assert!(matches!(
            w.mfa.status(&alice).unwrap(),
            MfaStatus::Active {
                failures: 100,
                locked: true,
                ..
            }
        ));
    }
}

#[test]
fn concurrent_guesses_cannot_overshoot_the_default_throttle() {
    // SEC-15: with the default policy only 4 guesses are ever checked: 3 free and the 4th
    // that starts the first delay. The rest are refused unchecked.
    let w = Arc::new(world());
    let alice = user("alice");
    let (_, _) = w.enroll(&alice);
    let ticket = w.challenge(&alice).ticket().to_owned();
    let w2 = w.clone();
    let results = race(64, move |_| {
        w2.mfa
            .complete_login(&user("alice"), &ticket, SecondFactor::Totp("000000"))
    });
    let counted = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.is_refused_factor()))
        .count();
    let throttled = results
        .iter()
        .filter(|r| matches!(r, Err(Error::Throttled { .. })))
        .count();
    assert_eq!((counted, throttled), (4, 60), "{results:?}");
    assert!(matches!(
        w.mfa.status(&alice).unwrap(),
        MfaStatus::Active { failures: 4, .. }
    ));
}

#[test]
fn concurrent_confirmations_activate_once() {
    // SEC-35: two concurrent confirmations produce one active credential and one set of codes.
    let w = Arc::new(world());
    let alice = user("alice");
    let e = w.mfa.begin_enrollment(&alice, "alice").unwrap();
    let phone = totp_mfa::testing::Authenticator::from_uri(e.uri().as_str()).unwrap();
    let code = phone.code_at(w.now()).unwrap();
    let w2 = w.clone();
    let results = race(16, move |_| {
        w2.mfa
            .confirm_enrollment(&user("alice"), &code)
            .map(|c| c.len())
    });
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        // Each confirmation attempt is charged before it is checked: after the 5 the
        // enrollment allows, the rest are refused unchecked.
        assert!(
            matches!(
                r,
                Error::AlreadyEnabled | Error::EnrollmentAttemptsExhausted
            ),
            "{r:?}"
        );
    }
}

/// A store that forgets to check the version: what these tests exist to catch. To make the
/// race deterministic, it plays the worst interleaving of a read-modify-write store: every
/// reader reads before any writer writes (reads come from a snapshot taken when the race
/// starts), and writes land whatever the version.
#[derive(Default)]
struct RacyStore {
    inner: totp_mfa::MemoryStore,
    snapshot: std::sync::Mutex<Option<totp_mfa::StoredRecord>>,
}

impl totp_mfa::Store for RacyStore {
    type Error = totp_mfa::PoisonedStore;

    fn load(&self, user: &totp_mfa::UserId) -> Result<Option<totp_mfa::StoredRecord>, Self::Error> {
        if let Some(frozen) = self.snapshot.lock().unwrap().clone() {
            return Ok(Some(frozen));
        }
        self.inner.load(user)
    }

    fn compare_and_swap(
        &self,
        user: &totp_mfa::UserId,
        _expected: Option<u64>,
        new: totp_mfa::StoredRecord,
    ) -> Result<totp_mfa::CasOutcome, Self::Error> {
        let current = self.inner.load(user)?.map(|r| r.version());
        self.inner.compare_and_swap(user, current, new)
    }
}

#[test]
fn the_race_tests_catch_a_store_without_compare_and_swap() {
    // SEC-43: the same race against a non-atomic store lets a recovery code through twice.
    let clock = Arc::new(totp_mfa::ManualClock::new(T0));
    let mfa = Arc::new(
        totp_mfa::Mfa::new(RacyStore::default(), policy())
            .unwrap()
            .with_clock(clock.clone()),
    );
    let alice = user("alice");
    let e = mfa.begin_enrollment(&alice, "alice").unwrap();
    let phone = totp_mfa::testing::Authenticator::from_uri(e.uri().as_str()).unwrap();
    let codes = mfa
        .confirm_enrollment(&alice, &phone.code_at(T0).unwrap())
        .unwrap();
    let code = first_code(&codes);
    let tickets: Arc<Vec<String>> = Arc::new(
        (0..8)
            .map(|_| match mfa.start_login(&alice).unwrap() {
                totp_mfa::LoginStart::Challenge(c) => c.ticket().to_owned(),
                totp_mfa::LoginStart::NoMfa => unreachable!(),
            })
            .collect(),
    );
    // The race starts: every request reads the record as it is now.
    let now = totp_mfa::Store::load(&mfa.store().inner, &alice).unwrap();
    *mfa.store().snapshot.lock().unwrap() = now;
    let m = mfa.clone();
    let results = race(8, move |i| {
        m.complete_login(
            &user("alice"),
            &tickets[i],
            SecondFactor::RecoveryCode(&code),
        )
    });
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert!(
        ok > 1,
        "a racy store should let the code through more than once: {results:?}"
    );
}

#[test]
fn a_thousand_concurrent_guesses_against_a_limit_of_five_check_at_most_five() {
    // SEC-15 (CVE-2024-4629): the attempt is charged before the code is checked, so parallel
    // requests cannot overshoot the limit.
    let w = Arc::new(world_with(policy().with_throttle(Throttle {
        free_failures: 5,
        lock_after: 5,
        ..Throttle::default()
    })));
    let alice = user("alice");
    let (_, _) = w.enroll(&alice);
    let ticket = w.challenge(&alice).ticket().to_owned();
    let w2 = w.clone();
    let results = race(1_000, move |i| {
        let guess = format!("{:06}", 100_000 + i);
        w2.mfa
            .complete_login(&user("alice"), &ticket, SecondFactor::Totp(&guess))
    });
    let checked = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.is_refused_factor()))
        .count();
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    assert!(checked + accepted <= 5, "{checked} checked");
    assert!(
        results.iter().all(|r| r.is_ok()
            || matches!(r, Err(e) if e.is_refused_factor() || matches!(e, Error::Locked)))
    );
}

#[test]
fn a_flood_of_login_starts_writes_nothing_and_evicts_no_one() {
    // Tickets are stateless: starting a login never writes, so an attacker holding only the
    // password cannot evict the user's challenge or contend with real attempts.
    let w = Arc::new(world());
    let alice = user("alice");
    let (phone, _) = w.enroll(&alice);
    let mine = w.challenge(&alice);
    let before = w.snapshot(&alice);
    let w2 = w.clone();
    let _ = race(16, move |_| {
        for _ in 0..50 {
            let _ = w2.mfa.start_login(&user("alice")).unwrap();
        }
    });
    assert_eq!(
        w.snapshot(&alice),
        before,
        "starting logins wrote to the store"
    );
    w.clock.advance(30);
    let code = phone.code_at(w.now()).unwrap();
    let _auth = w
        .mfa
        .complete_login(&alice, mine.ticket(), SecondFactor::Totp(&code))
        .unwrap();
}

//! The async face (`AsyncMfa`) on tokio: its futures are `Send` and run on a multi-threaded
//! runtime, the single-use rules hold across tasks (SEC-13, SEC-23, SEC-43), the expensive
//! hashing never blocks the runtime, a dropped future grants nothing, and a blocking store
//! (SQLite) works through `BlockingStore`.

#![cfg(feature = "async")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use totp_mfa::testing::Authenticator;
use totp_mfa::{
    AsyncMfa, AsyncStore, Error, LoginStart, ManualClock, MemoryStore, MfaStatus, Policy,
    RecoveryCodes, SecondFactor, UserId,
};

const T0: u64 = 1_800_000_000;

fn policy() -> Policy {
    Policy::new("Example").with_recovery_hash_rounds(1_000)
}

type Service<S> = AsyncMfa<S, Arc<ManualClock>>;

fn service<S: AsyncStore>(store: S, policy: Policy) -> (Service<S>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(T0));
    let mfa = AsyncMfa::new(store, policy)
        .unwrap()
        .with_clock(clock.clone());
    (mfa, clock)
}

async fn enroll<S: AsyncStore>(mfa: &Service<S>, user: &UserId) -> (Authenticator, RecoveryCodes) {
    let e = mfa
        .begin_enrollment(user, "alice@example.com")
        .await
        .unwrap();
    let phone = Authenticator::from_uri(e.uri().as_str()).unwrap();
    let codes = mfa
        .confirm_enrollment(user, &phone.code_at(T0).unwrap())
        .await
        .unwrap();
    (phone, codes)
}

async fn ticket<S: AsyncStore>(mfa: &Service<S>, user: &UserId) -> String {
    match mfa.start_login(user).await.unwrap() {
        LoginStart::Challenge(c) => c.ticket().to_owned(),
        LoginStart::NoMfa => panic!("expected a challenge"),
    }
}

fn assert_send<T: Send>(t: T) -> T {
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_tasks_with_one_code_one_success() {
    let (mfa, _) = service(MemoryStore::new(), policy());
    let mfa = Arc::new(mfa);
    let alice = UserId::new("alice").unwrap();
    let (phone, _) = enroll(&mfa, &alice).await;
    let code = phone.code_at(T0 + 30).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let ticket = ticket(&mfa, &alice).await;
        let (mfa, alice, code) = (mfa.clone(), alice.clone(), code.clone());
        // tokio::spawn needs a Send + 'static future: the face's futures are Send.
        tasks.push(tokio::spawn(async move {
            mfa.complete_login(&alice, &ticket, SecondFactor::Totp(&code))
                .await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(
                Error::CodeAlreadyUsed { .. } | Error::ChallengeInvalid | Error::Throttled { .. },
            ) => {}
            Err(e) => panic!("unexpected refusal: {e}"),
        }
    }
    assert_eq!(wins, 1, "one code, one login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_tasks_with_one_recovery_code_one_success() {
    let (mfa, _) = service(MemoryStore::new(), policy());
    let mfa = Arc::new(mfa);
    let alice = UserId::new("alice").unwrap();
    let (_, codes) = enroll(&mfa, &alice).await;
    let code = codes.iter().next().unwrap().as_str().to_owned();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let ticket = ticket(&mfa, &alice).await;
        let (mfa, alice, code) = (mfa.clone(), alice.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            mfa.complete_login(&alice, &ticket, SecondFactor::RecoveryCode(&code))
                .await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1, "one recovery code, one login");
    match mfa.status(&alice).await.unwrap() {
        MfaStatus::Active {
            recovery_codes_left,
            ..
        } => assert_eq!(recovery_codes_left, 9),
        other => panic!("{other:?}"),
    }
}

/// On a single-threaded runtime a blocking call would freeze every other task. A ticker
/// task keeps running while a recovery code is checked with 200,000 PBKDF2 rounds per
/// stored code (a large fraction of a second of CPU), so the hashing ran elsewhere.
#[tokio::test(flavor = "current_thread")]
async fn recovery_code_hashing_does_not_block_the_runtime() {
    let slow = Policy::new("Example")
        .with_recovery_codes(2)
        .with_recovery_hash_rounds(200_000);
    let (mfa, _) = service(MemoryStore::new(), slow);
    let alice = UserId::new("alice").unwrap();
    let (_, codes) = enroll(&mfa, &alice).await;
    let code = codes.iter().nth(1).unwrap().as_str().to_owned();
    let ticket = ticket(&mfa, &alice).await;

    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let login = assert_send(mfa.complete_login(&alice, &ticket, SecondFactor::RecoveryCode(&code)));
    let started = std::time::Instant::now();
    let auth = login.await.unwrap();
    let took = started.elapsed();
    ticker.abort();
    let ticked = ticks.load(Ordering::Relaxed);
    eprintln!("recovery-code login took {took:?}; the ticker ran {ticked} times meanwhile");
    assert_eq!(auth.recovery_codes_left(), 1);
    assert!(
        ticked >= 10,
        "the runtime's only thread was blocked during the hashing ({ticked} ticks in {took:?})"
    );
}

/// A future dropped part-way (a client that hung up, a timeout) grants nothing and loses
/// nothing: the charged attempt stays counted, the code stays unused.
#[tokio::test(flavor = "current_thread")]
async fn a_dropped_login_grants_nothing_and_the_code_still_works() {
    let (mfa, _) = service(MemoryStore::new(), policy());
    let alice = UserId::new("alice").unwrap();
    let (_, codes) = enroll(&mfa, &alice).await;
    let code = codes.iter().next().unwrap().as_str().to_owned();
    let t = ticket(&mfa, &alice).await;
    // The check waits on the blocking pool; a zero timeout drops it there.
    let dropped = tokio::time::timeout(
        Duration::ZERO,
        mfa.complete_login(&alice, &t, SecondFactor::RecoveryCode(&code)),
    )
    .await;
    assert!(
        dropped.is_err(),
        "the future was dropped before it finished"
    );
    match mfa.status(&alice).await.unwrap() {
        MfaStatus::Active {
            recovery_codes_left,
            ..
        } => assert_eq!(recovery_codes_left, 10, "nothing was spent"),
        other => panic!("{other:?}"),
    }
    let auth = mfa
        .complete_login(&alice, &t, SecondFactor::RecoveryCode(&code))
        .await
        .unwrap();
    assert_eq!(auth.recovery_codes_left(), 9);
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_story_on_sqlite_through_blocking_store() {
    use totp_mfa::{BlockingStore, Reauth, SqliteStore};
    let dir = std::env::temp_dir().join(format!("totp-mfa-async-{}-{}", std::process::id(), T0));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mfa.sqlite3");
    let _ = std::fs::remove_file(&path);
    let store = BlockingStore::new(SqliteStore::open(&path).unwrap());
    let (mfa, clock) = service(store, policy());
    let alice = UserId::new("alice").unwrap();
    let (phone, codes) = enroll(&mfa, &alice).await;

    clock.set(T0 + 30);
    let t = ticket(&mfa, &alice).await;
    let code = phone.code_at(T0 + 30).unwrap();
    let auth = mfa
        .complete_login(&alice, &t, SecondFactor::Totp(&code))
        .await
        .unwrap();
    assert_eq!(auth.user(), &alice);
    let t = ticket(&mfa, &alice).await;
    let replay = mfa
        .complete_login(&alice, &t, SecondFactor::Totp(&code))
        .await;
    assert!(
        matches!(replay, Err(Error::CodeAlreadyUsed { .. })),
        "{replay:?}"
    );

    // Lost phone: a recovery code, then reset with the step-up token, then enroll again.
    let t = ticket(&mfa, &alice).await;
    let rc = codes.iter().next().unwrap().as_str().to_owned();
    let auth = mfa
        .complete_login(&alice, &t, SecondFactor::RecoveryCode(&rc))
        .await
        .unwrap();
    mfa.disable(&alice, Reauth::StepUp(auth.step_up_token()))
        .await
        .unwrap();
    assert!(matches!(
        mfa.status(&alice).await.unwrap(),
        MfaStatus::Disabled
    ));
    assert!(matches!(
        mfa.start_login(&alice).await.unwrap(),
        LoginStart::NoMfa
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

//! Secrets at rest (SEC-08): with sealing keys the store never sees the TOTP secret in raw,
//! hex or base32 form; records that do not open fail closed; keys rotate.

#![cfg(feature = "encryption")]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use totp_mfa::testing::Authenticator;
use totp_mfa::{
    CasOutcome, Error, ManualClock, MemoryStore, Mfa, OtpAuth, SealError, SealingKey, SealingKeys,
    SecondFactor, Store, StoredRecord, UserId,
};

/// Records every byte string written.
#[derive(Default)]
struct RecordingStore {
    inner: MemoryStore,
    writes: Mutex<Vec<Vec<u8>>>,
}

impl Store for RecordingStore {
    type Error = totp_mfa::PoisonedStore;

    fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, Self::Error> {
        self.inner.load(user)
    }

    fn compare_and_swap(
        &self,
        user: &UserId,
        expected: Option<u64>,
        new: StoredRecord,
    ) -> Result<CasOutcome, Self::Error> {
        self.writes.lock().unwrap().push(new.data().to_vec());
        self.inner.compare_and_swap(user, expected, new)
    }
}

fn keys(id: u32, byte: u8) -> SealingKeys {
    SealingKeys::new(SealingKey::new(id, [byte; 32]))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_store_never_sees_the_secret() {
    let store = Arc::new(RecordingStore::default());
    let clock = Arc::new(ManualClock::new(T0));
    let mfa = Mfa::new(store.clone(), policy())
        .unwrap()
        .with_clock(clock.clone())
        .with_sealing_keys(keys(1, 9));
    let alice = user("alice");
    let e = mfa.begin_enrollment(&alice, "alice").unwrap();
    let secret = OtpAuth::parse(e.uri().as_str()).unwrap().secret().clone();
    let phone = Authenticator::from_uri(e.uri().as_str()).unwrap();
    let _codes = mfa
        .confirm_enrollment(&alice, &phone.code_at(T0).unwrap())
        .unwrap();
    clock.advance(30);
    let c = match mfa.start_login(&alice).unwrap() {
        totp_mfa::LoginStart::Challenge(c) => c,
        totp_mfa::LoginStart::NoMfa => unreachable!(),
    };
    let _auth = mfa
        .complete_login(
            &alice,
            c.ticket(),
            SecondFactor::Totp(&phone.code_at(T0 + 30).unwrap()),
        )
        .unwrap();
    let writes = store.writes.lock().unwrap();
    assert!(writes.len() >= 4);
    let raw = secret.expose_bytes();
    let hex = secret.to_hex();
    let b32 = secret.to_base32();
    for w in writes.iter() {
        assert!(!contains(w, &raw[..8]), "raw secret in a write");
        assert!(!contains(w, hex.as_bytes()), "hex secret in a write");
        assert!(
            !contains(w, hex.to_uppercase().as_bytes()),
            "hex secret in a write"
        );
        assert!(
            !contains(w, &b32.as_bytes()[..12]),
            "base32 secret in a write"
        );
    }
    // Without keys the same flow stores the secret as it is: the test can fail.
    let store = Arc::new(RecordingStore::default());
    let mfa = Mfa::new(store.clone(), policy())
        .unwrap()
        .with_clock(clock.clone());
    let e = mfa.begin_enrollment(&alice, "alice").unwrap();
    let secret = OtpAuth::parse(e.uri().as_str()).unwrap().secret().clone();
    assert!(
        store
            .writes
            .lock()
            .unwrap()
            .iter()
            .any(|w| contains(w, secret.expose_bytes()))
    );
}

#[test]
fn wrong_missing_or_foreign_keys_fail_closed() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(T0));
    let make = |k: Option<SealingKeys>| {
        let m = Mfa::new(store.clone(), policy())
            .unwrap()
            .with_clock(clock.clone());
        match k {
            Some(k) => m.with_sealing_keys(k),
            None => m,
        }
    };
    let alice = user("alice");
    let sealed = make(Some(keys(1, 9)));
    let e = sealed.begin_enrollment(&alice, "alice").unwrap();
    let phone = Authenticator::from_uri(e.uri().as_str()).unwrap();
    let _codes = sealed
        .confirm_enrollment(&alice, &phone.code_at(T0).unwrap())
        .unwrap();

    // The same key id with other bytes: tampering or a wrong key.
    let wrong = make(Some(keys(1, 8)));
    assert!(matches!(
        wrong.start_login(&alice),
        Err(Error::Sealing(SealError::Inauthentic))
    ));
    // A key id that is not configured.
    let other = make(Some(keys(2, 9)));
    assert!(matches!(
        other.start_login(&alice),
        Err(Error::Sealing(SealError::UnknownKey(1)))
    ));
    // No keys at all.
    let none = make(None);
    assert!(matches!(
        none.start_login(&alice),
        Err(Error::Sealing(SealError::NoKeys))
    ));

    // Alice's sealed record copied to Bob does not open: the user id is bound in.
    let bob = user("bob");
    let alice_bytes = store.load(&alice).unwrap().unwrap();
    let _ = store
        .compare_and_swap(
            &bob,
            None,
            StoredRecord::new(1, alice_bytes.data().to_vec()),
        )
        .unwrap();
    assert!(matches!(
        sealed.start_login(&bob),
        Err(Error::Sealing(SealError::Inauthentic))
    ));
    assert!(matches!(
        sealed.complete_login(&bob, &"A".repeat(75), SecondFactor::Totp("123456")),
        Err(Error::Sealing(_))
    ));
}

#[test]
fn keys_rotate_and_unsealed_records_migrate_only_when_allowed() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(T0));
    let alice = user("alice");
    // Written before encryption was enabled.
    let plain = Mfa::new(store.clone(), policy())
        .unwrap()
        .with_clock(clock.clone());
    let e = plain.begin_enrollment(&alice, "alice").unwrap();
    let phone = Authenticator::from_uri(e.uri().as_str()).unwrap();
    let _codes = plain
        .confirm_enrollment(&alice, &phone.code_at(T0).unwrap())
        .unwrap();

    let strict = Mfa::new(store.clone(), policy())
        .unwrap()
        .with_clock(clock.clone())
        .with_sealing_keys(keys(1, 1));
    assert!(matches!(
        strict.start_login(&alice),
        Err(Error::Sealing(SealError::Unsealed))
    ));

    let migrating = Mfa::new(store.clone(), policy())
        .unwrap()
        .with_clock(clock.clone())
        .with_sealing_keys(keys(1, 1).accept_unsealed_records());
    clock.advance(30);
    let log_in = |mfa: &Mfa<Arc<MemoryStore>, Arc<ManualClock>>| {
        let c = match mfa.start_login(&alice).unwrap() {
            totp_mfa::LoginStart::Challenge(c) => c,
            totp_mfa::LoginStart::NoMfa => unreachable!(),
        };
        use totp_mfa::Clock;
        let code = phone.code_at(clock.now().unwrap()).unwrap();
        mfa.complete_login(&alice, c.ticket(), SecondFactor::Totp(&code))
            .map(|_| ())
    };
    log_in(&migrating).unwrap(); // the write seals it under key 1
    assert!(strict.start_login(&alice).is_ok());

    // Rotation: key 2 is current, key 1 still opens; the next write seals under key 2.
    let rotated = Mfa::new(store.clone(), policy())
        .unwrap()
        .with_clock(clock.clone())
        .with_sealing_keys(keys(2, 2).with_previous(SealingKey::new(1, [1; 32])));
    clock.advance(30);
    log_in(&rotated).unwrap();
    let only_new = Mfa::new(store.clone(), policy())
        .unwrap()
        .with_clock(clock.clone())
        .with_sealing_keys(keys(2, 2));
    clock.advance(30);
    log_in(&only_new).unwrap();
    assert!(matches!(
        strict.start_login(&alice),
        Err(Error::Sealing(SealError::UnknownKey(2)))
    ));
}

/// A new key given the old key's id by mistake, with the old key kept as previous: the
/// records the old key sealed still open (each key with the id is tried), new writes use the
/// new key, and a key that matches neither still fails closed.
#[test]
fn a_key_id_reused_by_mistake_does_not_lock_out_old_records() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(T0));
    let alice = user("alice");
    let old = Mfa::new(store.clone(), policy())
        .unwrap()
        .with_clock(clock.clone())
        .with_sealing_keys(keys(1, 1));
    let e = old.begin_enrollment(&alice, "alice").unwrap();
    let phone = Authenticator::from_uri(e.uri().as_str()).unwrap();
    let _codes = old
        .confirm_enrollment(&alice, &phone.code_at(T0).unwrap())
        .unwrap();

    let slipped = Mfa::new(store.clone(), policy())
        .unwrap()
        .with_clock(clock.clone())
        .with_sealing_keys(keys(1, 9).with_previous(SealingKey::new(1, [1; 32])));
    assert!(slipped.start_login(&alice).is_ok());

    let wrong = Mfa::new(store.clone(), policy())
        .unwrap()
        .with_clock(clock.clone())
        .with_sealing_keys(keys(1, 9).with_previous(SealingKey::new(1, [8; 32])));
    assert!(matches!(
        wrong.start_login(&alice),
        Err(Error::Sealing(SealError::Inauthentic))
    ));
}

/// A rolling key change over several app servers, done as the docs say: first every server
/// gets the new key as an older key only (it opens, it does not seal), then one server
/// makes it current. A record that server re-seals still opens on a server not switched
/// yet; a server skipping the first step is the one that fails closed.
#[test]
fn a_two_step_rollout_keeps_every_server_working() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(T0));
    let alice = user("alice");
    let server = |k: SealingKeys| {
        Mfa::new(store.clone(), policy())
            .unwrap()
            .with_clock(clock.clone())
            .with_sealing_keys(k)
    };
    let old = server(keys(1, 1));
    let e = old.begin_enrollment(&alice, "alice").unwrap();
    let phone = Authenticator::from_uri(e.uri().as_str()).unwrap();
    let _codes = old
        .confirm_enrollment(&alice, &phone.code_at(T0).unwrap())
        .unwrap();
    let log_in = |mfa: &Mfa<Arc<MemoryStore>, Arc<ManualClock>>| {
        clock.advance(30);
        let c = match mfa.start_login(&alice).unwrap() {
            totp_mfa::LoginStart::Challenge(c) => c,
            totp_mfa::LoginStart::NoMfa => unreachable!(),
        };
        use totp_mfa::Clock;
        let code = phone.code_at(clock.now().unwrap()).unwrap();
        mfa.complete_login(&alice, c.ticket(), SecondFactor::Totp(&code))
            .map(|_| ())
    };

    // Step 1, on every server: key 2 opens, key 1 still seals.
    let step1 = server(keys(1, 1).with_previous(SealingKey::new(2, [2; 32])));
    log_in(&step1).unwrap();
    // Step 2, one server at a time: key 2 seals. The servers still at step 1 open its writes.
    let step2 = server(keys(2, 2).with_previous(SealingKey::new(1, [1; 32])));
    log_in(&step2).unwrap();
    log_in(&step1).unwrap();
    log_in(&step2).unwrap();
    // A server that skipped step 1 is locked out of what step 2 sealed: why step 1 exists.
    assert!(matches!(
        old.start_login(&alice),
        Err(Error::Sealing(SealError::UnknownKey(2)))
    ));
}

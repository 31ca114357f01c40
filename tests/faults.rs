//! A failing or corrupt store fails every flow closed (SEC-44).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use common::*;
use totp_mfa::{
    CasOutcome, Error, ManualClock, MemoryStore, Mfa, Reauth, SecondFactor, Store, StoredRecord,
    UserId,
};

const FAIL_LOAD: u8 = 1;
const FAIL_CAS: u8 = 2;
/// The write happens, but the store reports an error (a timeout after commit).
const FAIL_AFTER_CAS: u8 = 3;

#[derive(Default)]
struct FaultyStore {
    inner: MemoryStore,
    mode: AtomicU8,
}

#[derive(Debug, thiserror::Error)]
#[error("injected fault")]
struct Injected;

impl Store for FaultyStore {
    type Error = Injected;

    fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, Injected> {
        if self.mode.load(Ordering::SeqCst) == FAIL_LOAD {
            return Err(Injected);
        }
        self.inner.load(user).map_err(|_| Injected)
    }

    fn compare_and_swap(
        &self,
        user: &UserId,
        expected: Option<u64>,
        new: StoredRecord,
    ) -> Result<CasOutcome, Injected> {
        match self.mode.load(Ordering::SeqCst) {
            FAIL_CAS => Err(Injected),
            FAIL_AFTER_CAS => {
                let _ = self.inner.compare_and_swap(user, expected, new);
                Err(Injected)
            }
            _ => self
                .inner
                .compare_and_swap(user, expected, new)
                .map_err(|_| Injected),
        }
    }
}

#[test]
fn every_flow_fails_closed_on_every_store_fault() {
    for mode in [FAIL_LOAD, FAIL_CAS, FAIL_AFTER_CAS] {
        let store = Arc::new(FaultyStore::default());
        let clock = Arc::new(ManualClock::new(T0));
        let mfa = Mfa::new(store.clone(), policy())
            .unwrap()
            .with_clock(clock.clone());
        let alice = user("alice");
        let e = mfa.begin_enrollment(&alice, "alice").unwrap();
        let phone = totp_mfa::testing::Authenticator::from_uri(e.uri().as_str()).unwrap();
        let codes = mfa
            .confirm_enrollment(&alice, &phone.code_at(T0).unwrap())
            .unwrap();
        let rc = first_code(&codes);
        let ticket = match mfa.start_login(&alice).unwrap() {
            totp_mfa::LoginStart::Challenge(c) => c.ticket().to_owned(),
            totp_mfa::LoginStart::NoMfa => unreachable!(),
        };
        clock.advance(30);
        let code = phone.code_at(T0 + 30).unwrap();

        store.mode.store(mode, Ordering::SeqCst);
        // Never Ok. A failed read or write is reported as a storage error; after a write
        // that committed but reported failure, later calls may see its effect (a spent
        // ticket), but still nothing is granted.
        let storage = |r: Result<(), Error>, what: &str| {
            assert!(r.is_err(), "mode {mode} {what}: granted on a store fault");
            if mode != FAIL_AFTER_CAS || what == "totp login" {
                assert!(
                    matches!(r, Err(Error::Storage(_))),
                    "mode {mode} {what}: {r:?}"
                );
            }
        };
        storage(
            mfa.complete_login(&alice, &ticket, SecondFactor::Totp(&code))
                .map(|_| ()),
            "totp login",
        );
        storage(
            mfa.complete_login(&alice, &ticket, SecondFactor::RecoveryCode(&rc))
                .map(|_| ()),
            "recovery login",
        );
        storage(
            mfa.complete_login(&alice, &ticket, SecondFactor::Totp("000000"))
                .map(|_| ()),
            "wrong code",
        );
        if mode == FAIL_LOAD {
            storage(mfa.start_login(&alice).map(|_| ()), "start login");
        } else {
            // Starting a login writes nothing (tickets are stateless), so a failing write
            // does not affect it; it grants nothing by itself.
            assert!(matches!(
                mfa.start_login(&alice),
                Ok(totp_mfa::LoginStart::Challenge(_))
            ));
        }
        storage(
            mfa.regenerate_recovery_codes(&alice, Reauth::Factor(SecondFactor::Totp(&code)))
                .map(|_| ()),
            "regenerate",
        );
        storage(
            mfa.disable(&alice, Reauth::Factor(SecondFactor::RecoveryCode(&rc))),
            "disable",
        );
        storage(
            mfa.begin_enrollment(&user("bob"), "bob").map(|_| ()),
            "begin",
        );
        if mode == FAIL_LOAD {
            storage(mfa.status(&alice).map(|_| ()), "status");
            storage(mfa.unlock(&alice), "unlock");
        }
    }
}

#[test]
fn a_corrupt_record_fails_closed() {
    let store = Arc::new(MemoryStore::new());
    let mfa = Mfa::new(store.clone(), policy()).unwrap();
    let alice = user("alice");
    for data in [
        vec![],
        b"TMFA".to_vec(),
        b"TMFA\x01garbage".to_vec(),
        vec![0xff; 300],
    ] {
        let current = store.load(&alice).unwrap().map(|r| r.version());
        let next = current.map_or(1, |v| v + 1);
        assert_eq!(
            store
                .compare_and_swap(&alice, current, StoredRecord::new(next, data))
                .unwrap(),
            CasOutcome::Saved
        );
        assert!(matches!(
            mfa.start_login(&alice),
            Err(Error::CorruptRecord(_))
        ));
        assert!(matches!(
            mfa.complete_login(&alice, &"A".repeat(43), SecondFactor::Totp("123456")),
            Err(Error::CorruptRecord(_))
        ));
        assert!(matches!(
            mfa.begin_enrollment(&alice, "a"),
            Err(Error::CorruptRecord(_))
        ));
    }
}

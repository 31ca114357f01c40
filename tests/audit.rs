//! Audit events (SEC-20, SEC-25, SEC-26, SEC-46): every flow emits what happened, after it
//! was stored, and no event carries a secret (SEC-10).

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use totp_mfa::{AuditEvent, AuditKind, EventSink, Factor, Mfa, Reauth, SecondFactor, Throttle};

#[derive(Default)]
struct Log(Mutex<Vec<AuditEvent>>);

impl EventSink for Log {
    fn record(&self, event: &AuditEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Log {
    fn take(&self) -> Vec<AuditKind> {
        self.0.lock().unwrap().drain(..).map(|e| e.kind).collect()
    }
}

#[test]
fn every_flow_reports_what_happened_and_nothing_secret() {
    let w = world_with(policy().with_throttle(Throttle {
        free_failures: 10,
        lock_after: 3,
        ..Throttle::default()
    }));
    let log = Arc::new(Log::default());
    let mfa: Mfa<_, _> = Mfa::new(w.store.clone(), w.mfa.policy().clone())
        .unwrap()
        .with_clock(w.clock.clone())
        .with_events(log.clone());
    let alice = user("alice");

    let e = mfa.begin_enrollment(&alice, "alice").unwrap();
    let phone = totp_mfa::testing::Authenticator::from_uri(e.uri().as_str()).unwrap();
    let _ = mfa.confirm_enrollment(&alice, "000000");
    let codes = mfa
        .confirm_enrollment(&alice, &phone.code_at(T0).unwrap())
        .unwrap();
    assert_eq!(
        log.take(),
        vec![
            AuditKind::EnrollmentStarted,
            AuditKind::SetupCodeRefused { attempts_left: 4 },
            AuditKind::MfaActivated { generation: 1 },
        ]
    );

    let ticket = |mfa: &Mfa<_, _>| match mfa.start_login(&alice).unwrap() {
        totp_mfa::LoginStart::Challenge(c) => c.ticket().to_owned(),
        totp_mfa::LoginStart::NoMfa => unreachable!(),
    };
    // A replay of the confirmation code, then a wrong code: both refused and reported
    // differently (SEC-20), then the right code.
    let t = ticket(&mfa);
    let _ = mfa.complete_login(&alice, &t, SecondFactor::Totp(&phone.code_at(T0).unwrap()));
    let _ = mfa.complete_login(&alice, &t, SecondFactor::Totp("000000"));
    w.clock.advance(30);
    let _auth = mfa
        .complete_login(
            &alice,
            &t,
            SecondFactor::Totp(&phone.code_at(T0 + 30).unwrap()),
        )
        .unwrap();
    assert_eq!(
        log.take(),
        vec![
            AuditKind::ReplayRefused { attempts_left: 2 },
            AuditKind::SecondFactorRefused {
                factor: Factor::Totp,
                attempts_left: 1
            },
            AuditKind::LoginSucceeded {
                factor: Factor::Totp
            },
        ]
    );

    // A recovery-code login is an account-recovery event (SEC-26).
    let rc = first_code(&codes);
    let a = mfa
        .complete_login(&alice, &ticket(&mfa), SecondFactor::RecoveryCode(&rc))
        .unwrap();
    assert_eq!(
        log.take(),
        vec![
            AuditKind::LoginSucceeded {
                factor: Factor::RecoveryCode
            },
            AuditKind::RecoveryCodeUsed {
                remaining: 9,
                running_low: false
            },
        ]
    );
    // Regeneration is reported (SEC-25); then three wrong guesses lock (SEC-14).
    let _ = mfa
        .regenerate_recovery_codes(&alice, Reauth::StepUp(a.step_up_token()))
        .unwrap();
    assert_eq!(log.take(), vec![AuditKind::RecoveryCodesRegenerated]);
    let t = ticket(&mfa);
    for _ in 0..3 {
        let _ = mfa.complete_login(&alice, &t, SecondFactor::RecoveryCode(&rc));
    }
    let _ = mfa.complete_login(&alice, &t, SecondFactor::Totp("123456"));
    assert_eq!(
        log.take(),
        vec![
            AuditKind::SecondFactorRefused {
                factor: Factor::RecoveryCode,
                attempts_left: 2
            },
            AuditKind::SecondFactorRefused {
                factor: Factor::RecoveryCode,
                attempts_left: 1
            },
            AuditKind::SecondFactorRefused {
                factor: Factor::RecoveryCode,
                attempts_left: 0
            },
            AuditKind::Locked,
            AuditKind::RefusedWhileLocked,
        ]
    );
    mfa.unlock(&alice).unwrap();
    w.clock.advance(30);
    mfa.disable(
        &alice,
        Reauth::Factor(SecondFactor::Totp(&phone.code_at(T0 + 60).unwrap())),
    )
    .unwrap();
    assert_eq!(
        log.take(),
        vec![AuditKind::Unlocked, AuditKind::MfaDisabled]
    );

    // No event carries a secret (SEC-10): check the whole log's Debug text.
    let e = mfa.begin_enrollment(&alice, "alice").unwrap();
    let key = e.manual_key().replace(' ', "");
    let all = format!("{:?}", log.0.lock().unwrap());
    for secret in [&key[..12], &rc[..9]] {
        assert!(!all.contains(secret), "{secret} in {all}");
    }
}

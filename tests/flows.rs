//! Every flow and every illegal transition, on a manual clock, to the second (SEC-45).

// A path relative to this file, so that `flows_async.rs` can include this file as a module.
#[path = "common/mod.rs"]
pub mod common;

use common::*;
use totp_mfa::testing::Authenticator;
use totp_mfa::{
    Error, Factor, LoginStart, MfaStatus, Policy, Reauth, SecondFactor, Throttle, WrongCodeHint,
    otp::{Algorithm, TotpParams},
};

// ----------------------------------------------------------------------------- enrollment

#[test]
fn enrollment_activates_only_after_a_correct_code() {
    let w = world();
    let alice = user("alice");
    assert_eq!(w.mfa.status(&alice).unwrap(), MfaStatus::Disabled);
    let e = w.mfa.begin_enrollment(&alice, "alice@example.com").unwrap();
    assert!(
        e.uri()
            .as_str()
            .starts_with("otpauth://totp/Example:alice@example.com?secret=")
    );
    assert!(e.uri().as_str().ends_with("&issuer=Example"));
    assert_eq!(e.expires_at(), T0 + 15 * 60);
    assert!(e.works_with_every_app());
    // The manual key is the URI's secret, grouped in fours.
    let key = e.manual_key().replace(' ', "");
    assert!(e.uri().as_str().contains(&format!("secret={key}&")));
    assert!(e.manual_key().split(' ').all(|g| g.len() <= 4));
    assert_eq!(
        w.mfa.status(&alice).unwrap(),
        MfaStatus::Pending {
            expires_at: T0 + 900
        }
    );
    // Pending is not active: login needs no second factor yet.
    assert!(matches!(
        w.mfa.start_login(&alice).unwrap(),
        LoginStart::NoMfa
    ));

    let phone = Authenticator::from_uri(e.uri().as_str()).unwrap();
    let codes = w
        .mfa
        .confirm_enrollment(&alice, &phone.code_at(T0).unwrap())
        .unwrap();
    assert_eq!(codes.len(), 10);
    assert!(matches!(
        w.mfa.status(&alice).unwrap(),
        MfaStatus::Active {
            generation: 1,
            recovery_codes_left: 10,
            failures: 0,
            locked: false,
            retry_at: None
        }
    ));
}

#[test]
fn generated_secret_is_160_bits_for_sha1_and_output_length_otherwise() {
    // SEC-06.
    for (alg, bytes) in [
        (Algorithm::Sha1, 20),
        (Algorithm::Sha256, 32),
        (Algorithm::Sha512, 64),
    ] {
        let w = world_with(policy().with_params(TotpParams::default().with_algorithm(alg)));
        let e = w.mfa.begin_enrollment(&user("a"), "a").unwrap();
        let parsed = totp_mfa::OtpAuth::parse(e.uri().as_str()).unwrap();
        assert_eq!(parsed.secret().len(), bytes, "{alg}");
    }
}

#[test]
fn confirmation_code_cannot_be_replayed_to_log_in() {
    // SEC-35: the setup code cannot double as the next login's second factor.
    let w = world();
    let alice = user("alice");
    let (phone, _) = w.enroll(&alice);
    let c = w.challenge(&alice);
    let err = w
        .mfa
        .complete_login(
            &alice,
            c.ticket(),
            SecondFactor::Totp(&phone.code_at(T0).unwrap()),
        )
        .unwrap_err();
    assert!(matches!(err, Error::CodeAlreadyUsed { .. }), "{err:?}");
    // The next step's code works.
    w.clock.advance(30);
    let auth = w
        .mfa
        .complete_login(
            &alice,
            c.ticket(),
            SecondFactor::Totp(&phone.code_at(w.now()).unwrap()),
        )
        .unwrap();
    assert_eq!(auth.factor(), Factor::Totp);
}

#[test]
fn begin_again_replaces_pending_but_never_active() {
    let w = world();
    let alice = user("alice");
    let first = w.mfa.begin_enrollment(&alice, "alice").unwrap();
    let second = w.mfa.begin_enrollment(&alice, "alice").unwrap();
    assert_ne!(first.manual_key(), second.manual_key());
    let old_phone = Authenticator::from_uri(first.uri().as_str()).unwrap();
    let err = w
        .mfa
        .confirm_enrollment(&alice, &old_phone.code_at(T0).unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::WrongSetupCode { .. }), "{err:?}");
    let new_phone = Authenticator::from_uri(second.uri().as_str()).unwrap();
    w.mfa
        .confirm_enrollment(&alice, &new_phone.code_at(T0).unwrap())
        .unwrap();

    // SEC-35: an active credential is never replaced by an unconfirmed one.
    let before = w.snapshot(&alice);
    assert!(matches!(
        w.mfa.begin_enrollment(&alice, "alice"),
        Err(Error::AlreadyEnabled)
    ));
    assert_eq!(w.snapshot(&alice), before);
}

#[test]
fn confirm_with_nothing_pending_or_twice_is_refused() {
    let w = world();
    let bob = user("bob");
    assert!(matches!(
        w.mfa.confirm_enrollment(&bob, "123456"),
        Err(Error::NoPendingEnrollment)
    ));
    assert_eq!(w.snapshot(&bob), None);
    let (phone, _) = w.enroll(&bob);
    w.clock.advance(30);
    assert!(matches!(
        w.mfa
            .confirm_enrollment(&bob, &phone.code_at(w.now()).unwrap()),
        Err(Error::AlreadyEnabled)
    ));
}

#[test]
fn pending_enrollment_expires_to_the_second() {
    let w = world();
    let alice = user("alice");
    let e = w.mfa.begin_enrollment(&alice, "alice").unwrap();
    let phone = Authenticator::from_uri(e.uri().as_str()).unwrap();
    w.clock.set(e.expires_at());
    assert!(matches!(
        w.mfa
            .confirm_enrollment(&alice, &phone.code_at(w.now()).unwrap()),
        Err(Error::EnrollmentExpired)
    ));
    assert_eq!(w.mfa.status(&alice).unwrap(), MfaStatus::Disabled);
    // One second earlier it works.
    let e = w.mfa.begin_enrollment(&alice, "alice").unwrap();
    let phone = Authenticator::from_uri(e.uri().as_str()).unwrap();
    w.clock.set(e.expires_at() - 1);
    w.mfa
        .confirm_enrollment(&alice, &phone.code_at(w.now()).unwrap())
        .unwrap();
}

#[test]
fn wrong_confirmation_says_how_far_off_the_clock_is() {
    let w = world();
    let alice = user("alice");
    let e = w.mfa.begin_enrollment(&alice, "alice").unwrap();
    let phone = Authenticator::from_uri(e.uri().as_str()).unwrap();
    // Phone 5 minutes behind.
    let err = w
        .mfa
        .confirm_enrollment(&alice, &phone.code_at(T0 - 300).unwrap())
        .unwrap_err();
    match err {
        Error::WrongSetupCode {
            hint: WrongCodeHint::ClockOffBy { seconds },
            attempts_left,
            ..
        } => {
            assert_eq!(seconds, -300);
            assert_eq!(attempts_left, 4);
        }
        other => panic!("{other:?}"),
    }
    assert!(err_text(&w, &alice, T0 + 120).contains("ahead"));
    // A code from no nearby step: the generic clock hint.
    let msg = w
        .mfa
        .confirm_enrollment(&alice, "000000")
        .map(|_| ())
        .unwrap_err();
    assert!(msg.to_string().contains("clock"), "{msg}");
    // Setup wording: nothing locks, and there are no recovery codes yet.
    let text = msg.to_string();
    assert!(
        text.contains("for this setup") && !text.contains("locks") && !text.contains("recovery"),
        "{text}"
    );
}

fn err_text(w: &World, user: &totp_mfa::UserId, phone_time: u64) -> String {
    // Re-derive the phone from a fresh enrollment each time keeps attempts independent.
    let e = w.mfa.begin_enrollment(user, "x").unwrap();
    let phone = Authenticator::from_uri(e.uri().as_str()).unwrap();
    w.mfa
        .confirm_enrollment(user, &phone.code_at(phone_time).unwrap())
        .map(|_| ())
        .unwrap_err()
        .to_string()
}

#[test]
fn confirmation_attempts_are_limited_per_enrollment() {
    let w = world();
    let alice = user("alice");
    w.mfa.begin_enrollment(&alice, "alice").unwrap();
    for left in (0..5).rev() {
        match w.mfa.confirm_enrollment(&alice, "000000").map(|_| ()) {
            Err(Error::WrongSetupCode { attempts_left, .. }) => assert_eq!(attempts_left, left),
            // A 1-in-a-million chance that 000000 is right.
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        w.mfa.confirm_enrollment(&alice, "000000"),
        Err(Error::EnrollmentAttemptsExhausted)
    ));
}

#[test]
fn an_app_that_ignores_parameters_is_named() {
    // SEC-29: SHA-256 configured, the app computes SHA-1 anyway.
    let w =
        world_with(policy().with_params(TotpParams::default().with_algorithm(Algorithm::Sha256)));
    let alice = user("alice");
    let e = w.mfa.begin_enrollment(&alice, "alice").unwrap();
    assert!(!e.works_with_every_app());
    let parsed = totp_mfa::OtpAuth::parse(e.uri().as_str()).unwrap();
    let sha1_app = totp_mfa::otp::Totp::new(parsed.secret(), TotpParams::default()).unwrap();
    let code = sha1_app.generate(T0).unwrap();
    let err = w
        .mfa
        .confirm_enrollment(&alice, code.as_str())
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongSetupCode {
                hint: WrongCodeHint::AppIgnoresParameters,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("possible authenticator mismatch"));
}

#[test]
fn malformed_codes_are_typed_errors_and_change_nothing() {
    let w = world();
    let alice = user("alice");
    w.mfa.begin_enrollment(&alice, "alice").unwrap();
    let before = w.snapshot(&alice);
    for bad in [
        "",
        "12345",
        "1234567",
        "12a456",
        "١٢٣٤٥٦",
        &"9".repeat(10_000),
    ] {
        let err = w
            .mfa
            .confirm_enrollment(&alice, bad)
            .map(|_| ())
            .unwrap_err();
        assert!(err.is_bad_input(), "{bad:?}: {err:?}");
    }
    assert_eq!(w.snapshot(&alice), before);

    let (phone, _) = {
        let bob = user("bob");
        (w.enroll(&bob), bob)
    };
    let _ = phone;
    let bob = user("bob");
    let c = w.challenge(&bob);
    let before = w.snapshot(&bob);
    for bad in ["12 34", "abcdef", "ZZZZ-ZZZZ", "x"] {
        let e1 = w
            .mfa
            .complete_login(&bob, c.ticket(), SecondFactor::Totp(bad))
            .unwrap_err();
        let e2 = w
            .mfa
            .complete_login(&bob, c.ticket(), SecondFactor::RecoveryCode(bad))
            .unwrap_err();
        assert!(e1.is_bad_input() && e2.is_bad_input(), "{e1:?} {e2:?}");
    }
    assert_eq!(w.snapshot(&bob), before);
}

// ---------------------------------------------------------------------------------- login

#[test]
fn login_without_mfa_needs_no_second_factor() {
    let w = world();
    assert!(matches!(
        w.mfa.start_login(&user("nobody")).unwrap(),
        LoginStart::NoMfa
    ));
    assert_eq!(w.snapshot(&user("nobody")), None);
}

#[test]
fn login_with_totp_yields_fresh_tokens_and_consumes_the_ticket() {
    let w = world();
    let alice = user("alice");
    let (phone, _) = w.enroll(&alice);
    w.clock.advance(30);
    let c = w.challenge(&alice);
    assert_eq!(c.user(), &alice);
    assert_eq!(c.expires_at(), w.now() + 300);
    let code = phone.code_at(w.now()).unwrap();
    let a = w
        .mfa
        .complete_login(&alice, c.ticket(), SecondFactor::Totp(&code))
        .unwrap();
    assert_eq!(a.user(), &alice);
    assert_eq!(a.authenticated_at(), w.now());
    assert_eq!(a.session_token().len(), 43);
    assert_ne!(a.session_token(), a.step_up_token());
    assert_ne!(a.session_token(), c.ticket());
    // SEC-33: the ticket is single-use.
    w.clock.advance(30);
    let code = phone.code_at(w.now()).unwrap();
    assert!(matches!(
        w.mfa
            .complete_login(&alice, c.ticket(), SecondFactor::Totp(&code)),
        Err(Error::ChallengeInvalid)
    ));
    // A new challenge, a new token.
    let c2 = w.challenge(&alice);
    let b = w
        .mfa
        .complete_login(&alice, c2.ticket(), SecondFactor::Totp(&code))
        .unwrap();
    assert_ne!(a.session_token(), b.session_token());
}

#[test]
fn the_same_code_is_accepted_once_even_on_a_new_challenge() {
    // SEC-12: same code twice; T then T-1; T+1, T, T+1.
    let w = world();
    let alice = user("alice");
    let (phone, _) = w.enroll(&alice);
    w.clock.advance(60);
    let now = w.now();
    let code_t = phone.code_at(now).unwrap();
    let _auth = w
        .mfa
        .complete_login(
            &alice,
            w.challenge(&alice).ticket(),
            SecondFactor::Totp(&code_t),
        )
        .unwrap();
    let c = w.challenge(&alice);
    for replay in [code_t.clone(), phone.code_at(now - 30).unwrap()] {
        let err = w
            .mfa
            .complete_login(&alice, c.ticket(), SecondFactor::Totp(&replay))
            .unwrap_err();
        assert!(matches!(err, Error::CodeAlreadyUsed { .. }), "{err:?}");
        assert!(err.to_string().contains("already used"));
    }
    // Alternating: T+1 accepted, then T refused, then T+1 refused.
    let next = phone.code_at(now + 30).unwrap();
    let _auth = w
        .mfa
        .complete_login(&alice, c.ticket(), SecondFactor::Totp(&next))
        .unwrap();
    let c = w.challenge(&alice);
    for code in [code_t, next] {
        assert!(
            w.mfa
                .complete_login(&alice, c.ticket(), SecondFactor::Totp(&code))
                .is_err()
        );
    }
}

#[test]
fn window_is_one_step_each_way() {
    // SEC-11.
    let w = world_with(policy().with_throttle(Throttle {
        free_failures: 50,
        ..Throttle::default()
    }));
    let alice = user("alice");
    let (phone, _) = w.enroll(&alice);
    w.clock.advance(300);
    let now = w.now();
    for (offset, ok) in [
        (-60i64, false),
        (60, false),
        (-30, true),
        (0, true),
        (30, true),
    ] {
        // Each accepted code raises the last used step, so go in increasing order of step.
        let code = phone
            .code_at(now.checked_add_signed(offset).unwrap())
            .unwrap();
        let r = w.mfa.complete_login(
            &alice,
            w.challenge(&alice).ticket(),
            SecondFactor::Totp(&code),
        );
        assert_eq!(r.is_ok(), ok, "offset {offset}: {r:?}");
    }
}

#[test]
fn challenges_expire_to_the_second_and_belong_to_one_user() {
    let w = world();
    let alice = user("alice");
    let bob = user("bob");
    let (alice_phone, _) = w.enroll(&alice);
    let (bob_phone, _) = w.enroll(&bob);
    w.clock.advance(30);
    let c = w.challenge(&alice);
    // Alice's ticket with Bob's id and Bob's valid code.
    let bob_code = bob_phone.code_at(w.now()).unwrap();
    assert!(matches!(
        w.mfa
            .complete_login(&bob, c.ticket(), SecondFactor::Totp(&bob_code)),
        Err(Error::ChallengeInvalid)
    ));
    // Garbage and forged tickets.
    for t in ["", "x", &"A".repeat(43), &"A".repeat(10_000), "ü"] {
        assert!(matches!(
            w.mfa
                .complete_login(&alice, t, SecondFactor::Totp("123456")),
            Err(Error::ChallengeInvalid)
        ));
    }
    w.clock.set(c.expires_at());
    let code = alice_phone.code_at(w.now()).unwrap();
    assert!(matches!(
        w.mfa
            .complete_login(&alice, c.ticket(), SecondFactor::Totp(&code)),
        Err(Error::ChallengeExpired)
    ));
    w.clock.set(c.expires_at() - 1);
    let c2 = w.challenge(&alice);
    let code = alice_phone.code_at(w.now()).unwrap();
    let _auth = w
        .mfa
        .complete_login(&alice, c2.ticket(), SecondFactor::Totp(&code))
        .unwrap();
}

#[test]
fn a_ticket_for_a_user_without_mfa_is_invalid() {
    let w = world();
    let alice = user("alice");
    assert!(matches!(
        w.mfa
            .complete_login(&alice, &"A".repeat(43), SecondFactor::Totp("123456")),
        Err(Error::ChallengeInvalid)
    ));
}

// ------------------------------------------------------------------------------ throttling

#[test]
fn failures_grow_delays_then_lock_and_the_correct_code_is_refused() {
    // SEC-14: default policy: 3 free, then 30 s, 60 s, 120 s... lock at 10.
    let w = world();
    let alice = user("alice");
    let (phone, _) = w.enroll(&alice);
    let mut expected_delay = 0u64;
    for n in 1..=10u32 {
        // A new challenge each time: the count spans challenges (SEC-14).
        let c = w.challenge(&alice);
        let err = w
            .mfa
            .complete_login(&alice, c.ticket(), SecondFactor::Totp("000000"))
            .unwrap_err();
        let text = err.to_string();
        let Error::WrongCode {
            attempts_left,
            retry,
            ..
        } = err
        else {
            panic!("attempt {n}: {err:?}")
        };
        assert_eq!(attempts_left, 10 - n);
        expected_delay = w.mfa.policy().throttle().delay_after(n);
        if n <= 3 || n == 10 {
            // No wait before the free attempts run out, and none once locked: a lock has no
            // end but the host's unlock, and the message says so.
            assert_eq!(retry, None, "attempt {n}");
            assert_eq!(text.contains("contact support"), n == 10, "{text}");
            assert!(!text.contains("try again"), "{text}");
        } else {
            assert_eq!(
                retry,
                Some(totp_mfa::Retry {
                    at: w.now() + expected_delay,
                    wait_seconds: expected_delay
                }),
                "attempt {n}"
            );
            assert!(text.contains("you can try again in "), "{text}");
            // One second early: refused without being checked or counted.
            w.clock.advance(expected_delay - 1);
            let c = w.challenge(&alice);
            let before = w.snapshot(&alice);
            let err = w
                .mfa
                .complete_login(&alice, c.ticket(), SecondFactor::Totp("000000"));
            assert!(
                matches!(err, Err(Error::Throttled { retry }) if retry.at == w.now() + 1 && retry.wait_seconds == 1),
                "attempt {n}: {err:?}"
            );
            assert_eq!(w.snapshot(&alice), before);
            w.clock.advance(1);
        }
    }
    assert_eq!(expected_delay, 30 << 6);
    // Locked: even the correct code and a recovery code are refused.
    w.clock.advance(10_000);
    let c = w.challenge(&alice); // a correct password does not reset the count (SEC-34)
    let code = phone.code_at(w.now()).unwrap();
    assert!(matches!(
        w.mfa
            .complete_login(&alice, c.ticket(), SecondFactor::Totp(&code)),
        Err(Error::Locked)
    ));
    assert!(matches!(
        w.mfa.status(&alice).unwrap(),
        MfaStatus::Active {
            locked: true,
            failures: 10,
            retry_at: None,
            ..
        }
    ));
    // The host unlocks after identity proofing.
    w.mfa.unlock(&alice).unwrap();
    let _auth = w
        .mfa
        .complete_login(&alice, c.ticket(), SecondFactor::Totp(&code))
        .unwrap();
}

#[test]
fn recovery_codes_and_totp_share_one_failure_count() {
    // SEC-24.
    let w = world_with(policy().with_throttle(Throttle {
        free_failures: 10,
        lock_after: 6,
        ..Throttle::default()
    }));
    let alice = user("alice");
    let (_, codes) = w.enroll(&alice);
    let c = w.challenge(&alice);
    for i in 0..6 {
        let f = if i % 2 == 0 {
            SecondFactor::Totp("000000")
        } else {
            SecondFactor::RecoveryCode("AAAA-AAAA-AAAA-AAAA")
        };
        assert!(
            w.mfa
                .complete_login(&alice, c.ticket(), f)
                .unwrap_err()
                .is_refused_factor()
        );
    }
    assert!(matches!(
        w.mfa.complete_login(
            &alice,
            c.ticket(),
            SecondFactor::RecoveryCode(&first_code(&codes))
        ),
        Err(Error::Locked)
    ));
}

#[test]
fn failures_count_across_challenges_and_success_resets() {
    let w = world();
    let alice = user("alice");
    let (phone, _) = w.enroll(&alice);
    for _ in 0..3 {
        let c = w.challenge(&alice);
        assert!(
            w.mfa
                .complete_login(&alice, c.ticket(), SecondFactor::Totp("000000"))
                .is_err()
        );
    }
    let MfaStatus::Active { failures, .. } = w.mfa.status(&alice).unwrap() else {
        panic!()
    };
    assert_eq!(failures, 3);
    w.clock.advance(30);
    let c = w.challenge(&alice);
    let _auth = w
        .mfa
        .complete_login(
            &alice,
            c.ticket(),
            SecondFactor::Totp(&phone.code_at(w.now()).unwrap()),
        )
        .unwrap();
    let MfaStatus::Active { failures, .. } = w.mfa.status(&alice).unwrap() else {
        panic!()
    };
    assert_eq!(failures, 0);
}

#[test]
fn policy_refuses_more_than_100_failures_and_wide_windows() {
    // SEC-11, SEC-14.
    let bad = [
        policy().with_throttle(Throttle {
            lock_after: 101,
            ..Throttle::default()
        }),
        policy().with_throttle(Throttle {
            lock_after: 0,
            ..Throttle::default()
        }),
        policy().with_window(totp_mfa::otp::Window::symmetric(3).unwrap()),
        policy().with_params(
            TotpParams::default().with_period(totp_mfa::otp::Period::new(121).unwrap()),
        ),
        policy().with_challenge_ttl(601),
        policy().with_recovery_codes(0),
        policy().with_recovery_hash_rounds(999),
        policy().with_recovery_hash_rounds(1_000_001),
        Policy::new("Bad:Issuer"),
        Policy::new(""),
    ];
    for p in bad {
        assert!(
            matches!(
                totp_mfa::Mfa::new(totp_mfa::MemoryStore::new(), p.clone()),
                Err(Error::Config(_))
            ),
            "{p:?}"
        );
    }
    // SEC-19: the default policy's odds.
    let p = Throttle::default().guess_probability(6, 3);
    assert!((2.9e-5..3.1e-5).contains(&p), "{p}");
}

// -------------------------------------------------------------------------------- recovery

#[test]
fn recovery_code_logs_in_once_and_reports_what_is_left() {
    // SEC-23, SEC-26.
    let w = world();
    let alice = user("alice");
    let (_, codes) = w.enroll(&alice);
    let code = first_code(&codes);
    let c = w.challenge(&alice);
    let a = w
        .mfa
        .complete_login(
            &alice,
            c.ticket(),
            SecondFactor::RecoveryCode(&code.to_lowercase()),
        )
        .unwrap();
    assert_eq!(a.factor(), Factor::RecoveryCode);
    assert_eq!(a.recovery_codes_left(), 9);
    assert!(!a.recovery_codes_low());
    let c = w.challenge(&alice);
    let err = w
        .mfa
        .complete_login(&alice, c.ticket(), SecondFactor::RecoveryCode(&code))
        .unwrap_err();
    assert!(matches!(err, Error::WrongRecoveryCode { .. }), "{err:?}");
    assert!(!err.to_string().contains("Lost your device"), "{err}");
    // Running low at 3 left.
    for code in codes.iter().skip(1).take(6) {
        let c = w.challenge(&alice);
        let a = w
            .mfa
            .complete_login(
                &alice,
                c.ticket(),
                SecondFactor::RecoveryCode(code.as_str()),
            )
            .unwrap();
        assert_eq!(a.recovery_codes_low(), a.recovery_codes_left() <= 3);
    }
    assert!(matches!(
        w.mfa.status(&alice).unwrap(),
        MfaStatus::Active {
            recovery_codes_left: 3,
            ..
        }
    ));
}

#[test]
fn lost_phone_recovery_then_reset_then_re_enroll_with_a_new_secret() {
    // SEC-07, SEC-37, SEC-38.
    let w = world();
    let alice = user("alice");
    let old = w.mfa.begin_enrollment(&alice, "alice").unwrap();
    let old_key = old.manual_key().to_owned();
    let old_phone = Authenticator::from_uri(old.uri().as_str()).unwrap();
    let codes = w
        .mfa
        .confirm_enrollment(&alice, &old_phone.code_at(T0).unwrap())
        .unwrap();
    let stale = w.challenge(&alice);

    let c = w.challenge(&alice);
    let a = w
        .mfa
        .complete_login(
            &alice,
            c.ticket(),
            SecondFactor::RecoveryCode(&first_code(&codes)),
        )
        .unwrap();
    // A made-up step-up token is refused; the real one works once.
    assert!(matches!(
        w.mfa.disable(&alice, Reauth::StepUp(&"A".repeat(43))),
        Err(Error::StepUpInvalid)
    ));
    w.mfa
        .disable(&alice, Reauth::StepUp(a.step_up_token()))
        .unwrap();
    assert_eq!(w.mfa.status(&alice).unwrap(), MfaStatus::Disabled);
    assert!(matches!(
        w.mfa.disable(&alice, Reauth::StepUp(a.step_up_token())),
        Err(Error::NotEnabled)
    ));
    // Revocation is immediate: the open challenge is dead, login needs no second factor.
    w.clock.advance(30);
    assert!(matches!(
        w.mfa.complete_login(
            &alice,
            stale.ticket(),
            SecondFactor::Totp(&old_phone.code_at(w.now()).unwrap())
        ),
        Err(Error::ChallengeInvalid)
    ));
    assert!(matches!(
        w.mfa.start_login(&alice).unwrap(),
        LoginStart::NoMfa
    ));

    let new = w.mfa.begin_enrollment(&alice, "alice").unwrap();
    assert_ne!(new.manual_key(), old_key);
    let phone = Authenticator::from_uri(new.uri().as_str()).unwrap();
    w.mfa
        .confirm_enrollment(&alice, &phone.code_at(w.now()).unwrap())
        .unwrap();
    // Old recovery codes are gone with the old credential.
    let c = w.challenge(&alice);
    assert!(
        w.mfa
            .complete_login(
                &alice,
                c.ticket(),
                SecondFactor::RecoveryCode(codes.iter().nth(1).unwrap().as_str())
            )
            .is_err()
    );
}

#[test]
fn step_up_tokens_expire_and_are_single_use() {
    let w = world();
    let alice = user("alice");
    let (phone, _) = w.enroll(&alice);
    w.clock.advance(30);
    let a = w
        .mfa
        .complete_login(
            &alice,
            w.challenge(&alice).ticket(),
            SecondFactor::Totp(&phone.code_at(w.now()).unwrap()),
        )
        .unwrap();
    w.mfa
        .regenerate_recovery_codes(&alice, Reauth::StepUp(a.step_up_token()))
        .unwrap();
    assert!(matches!(
        w.mfa
            .regenerate_recovery_codes(&alice, Reauth::StepUp(a.step_up_token())),
        Err(Error::StepUpInvalid)
    ));
    w.clock.advance(30);
    let b = w
        .mfa
        .complete_login(
            &alice,
            w.challenge(&alice).ticket(),
            SecondFactor::Totp(&phone.code_at(w.now()).unwrap()),
        )
        .unwrap();
    w.clock.advance(300);
    assert!(matches!(
        w.mfa.disable(&alice, Reauth::StepUp(b.step_up_token())),
        Err(Error::StepUpInvalid)
    ));
}

#[test]
fn regenerate_needs_a_fresh_factor_and_invalidates_old_codes() {
    // SEC-25.
    let w = world();
    let alice = user("alice");
    let (phone, old) = w.enroll(&alice);
    let before = w.snapshot(&alice);
    let err = w
        .mfa
        .regenerate_recovery_codes(&alice, Reauth::Factor(SecondFactor::Totp("000000")))
        .unwrap_err();
    assert!(err.is_refused_factor());
    assert_ne!(w.snapshot(&alice), before, "the failure is counted");
    w.clock.advance(30);
    let new = w
        .mfa
        .regenerate_recovery_codes(
            &alice,
            Reauth::Factor(SecondFactor::Totp(&phone.code_at(w.now()).unwrap())),
        )
        .unwrap();
    let c = w.challenge(&alice);
    for code in old.iter() {
        assert!(
            w.mfa
                .complete_login(
                    &alice,
                    c.ticket(),
                    SecondFactor::RecoveryCode(code.as_str())
                )
                .is_err()
        );
    }
    w.mfa.unlock(&alice).unwrap();
    let _auth = w
        .mfa
        .complete_login(
            &alice,
            c.ticket(),
            SecondFactor::RecoveryCode(&first_code(&new)),
        )
        .unwrap();
    // Regenerating with a recovery code works too, and is refused when MFA is off.
    assert!(matches!(
        w.mfa.regenerate_recovery_codes(
            &user("nobody"),
            Reauth::Factor(SecondFactor::Totp("123456"))
        ),
        Err(Error::NotEnabled)
    ));
}

#[test]
fn disable_with_a_wrong_code_is_counted_and_changes_nothing_else() {
    let w = world();
    let alice = user("alice");
    let (phone, _) = w.enroll(&alice);
    assert!(
        w.mfa
            .disable(&alice, Reauth::Factor(SecondFactor::Totp("000000")))
            .unwrap_err()
            .is_refused_factor()
    );
    assert!(matches!(
        w.mfa.status(&alice).unwrap(),
        MfaStatus::Active { failures: 1, .. }
    ));
    w.clock.advance(30);
    w.mfa
        .disable(
            &alice,
            Reauth::Factor(SecondFactor::Totp(&phone.code_at(w.now()).unwrap())),
        )
        .unwrap();
    assert_eq!(w.mfa.status(&alice).unwrap(), MfaStatus::Disabled);
}

// -------------------------------------------------------------------------------- secrecy

#[test]
fn nothing_secret_in_debug_or_error_text() {
    // SEC-08, SEC-10, SEC-31.
    let w = world();
    let alice = user("alice");
    let e = w.mfa.begin_enrollment(&alice, "alice").unwrap();
    let key = e.manual_key().replace(' ', "");
    let phone = Authenticator::from_uri(e.uri().as_str()).unwrap();
    let code = phone.code_at(T0).unwrap();
    let mut texts = vec![
        format!("{e:?}"),
        format!("{:?}", e.uri()),
        format!("{:?}", w.mfa),
    ];
    let codes = w.mfa.confirm_enrollment(&alice, &code).unwrap();
    texts.push(format!("{codes:?}"));
    w.clock.advance(30);
    let c = w.challenge(&alice);
    texts.push(format!("{c:?}"));
    let a = w
        .mfa
        .complete_login(
            &alice,
            c.ticket(),
            SecondFactor::Totp(&phone.code_at(w.now()).unwrap()),
        )
        .unwrap();
    texts.push(format!("{a:?}"));
    let c = w.challenge(&alice);
    let wrong = w
        .mfa
        .complete_login(&alice, c.ticket(), SecondFactor::Totp(&code))
        .unwrap_err();
    texts.push(format!("{wrong:?} {wrong}"));
    let rc = first_code(&codes);
    let wrong = w
        .mfa
        .complete_login(&alice, c.ticket(), SecondFactor::RecoveryCode(&rc[..18]))
        .unwrap_err();
    texts.push(format!("{wrong:?} {wrong}"));
    let all = texts.join("\n");
    for secret in [
        &key[..16],
        &code,
        &rc[..9],
        c.ticket(),
        a.session_token(),
        a.step_up_token(),
    ] {
        assert!(!all.contains(secret), "{secret} leaked in:\n{all}");
    }
}

#[test]
fn a_reloaded_setup_page_shows_the_same_secret() {
    let w = world();
    let alice = user("alice");
    assert!(matches!(
        w.mfa.resume_enrollment(&alice),
        Err(Error::NoPendingEnrollment)
    ));
    let first = w.mfa.begin_enrollment(&alice, "alice@example.com").unwrap();
    let again = w.mfa.resume_enrollment(&alice).unwrap();
    assert_eq!(again.uri(), first.uri());
    assert_eq!(again.manual_key(), first.manual_key());
    assert_eq!(again.expires_at(), first.expires_at());
    // The app that scanned the first QR code confirms.
    let phone = Authenticator::from_uri(first.uri().as_str()).unwrap();
    let _codes = w
        .mfa
        .confirm_enrollment(&alice, &phone.code_at(T0).unwrap())
        .unwrap();
    // Once active, the secret can never be shown again (SEC-09).
    assert!(matches!(
        w.mfa.resume_enrollment(&alice),
        Err(Error::AlreadyEnabled)
    ));
    // An expired setup is not shown either.
    let bob = user("bob");
    let e = w.mfa.begin_enrollment(&bob, "bob").unwrap();
    w.clock.set(e.expires_at());
    assert!(matches!(
        w.mfa.resume_enrollment(&bob),
        Err(Error::EnrollmentExpired)
    ));
}

#[test]
fn a_code_in_the_wrong_field_is_pointed_out_and_not_counted() {
    let w = world();
    let alice = user("alice");
    let (phone, codes) = w.enroll(&alice);
    w.clock.advance(30);
    let c = w.challenge(&alice);
    let before = w.snapshot(&alice);
    let err = w
        .mfa
        .complete_login(&alice, c.ticket(), SecondFactor::Totp(&first_code(&codes)))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongField {
                entered: Factor::RecoveryCode
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("recovery code"), "{err}");
    let err = w
        .mfa
        .complete_login(
            &alice,
            c.ticket(),
            SecondFactor::RecoveryCode(&phone.code_at(w.now()).unwrap()),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongField {
                entered: Factor::Totp
            }
        ),
        "{err:?}"
    );
    assert!(err.is_bad_input());
    assert_eq!(w.snapshot(&alice), before);
}

#[test]
fn a_successful_login_spends_every_open_ticket() {
    // SEC-33: single use. Two tabs, one login: the other tab's ticket is dead.
    let w = world();
    let alice = user("alice");
    let (phone, _) = w.enroll(&alice);
    w.clock.advance(30);
    let tab1 = w.challenge(&alice);
    let tab2 = w.challenge(&alice);
    let code = phone.code_at(w.now()).unwrap();
    let _auth = w
        .mfa
        .complete_login(&alice, tab1.ticket(), SecondFactor::Totp(&code))
        .unwrap();
    w.clock.advance(30);
    let next = phone.code_at(w.now()).unwrap();
    for t in [tab1.ticket(), tab2.ticket()] {
        assert!(matches!(
            w.mfa.complete_login(&alice, t, SecondFactor::Totp(&next)),
            Err(Error::ChallengeInvalid)
        ));
    }
    // A wrong code does not spend tickets.
    let tab3 = w.challenge(&alice);
    assert!(
        w.mfa
            .complete_login(&alice, tab3.ticket(), SecondFactor::Totp("000000"))
            .is_err()
    );
    let _auth = w
        .mfa
        .complete_login(&alice, tab3.ticket(), SecondFactor::Totp(&next))
        .unwrap();
}

#[test]
fn a_ticket_from_before_a_reset_is_dead_after_re_enrollment() {
    // SEC-38: the ticket is bound to the credential generation.
    let w = world();
    let alice = user("alice");
    let (_, codes) = w.enroll(&alice);
    let old = w.challenge(&alice);
    let a = w
        .mfa
        .complete_login(
            &alice,
            w.challenge(&alice).ticket(),
            SecondFactor::RecoveryCode(&first_code(&codes)),
        )
        .unwrap();
    assert_eq!(a.credential_generation(), 1);
    w.mfa
        .disable(&alice, Reauth::StepUp(a.step_up_token()))
        .unwrap();
    let (phone, _) = w.enroll(&alice);
    w.clock.advance(30);
    let code = phone.code_at(w.now()).unwrap();
    assert!(matches!(
        w.mfa
            .complete_login(&alice, old.ticket(), SecondFactor::Totp(&code)),
        Err(Error::ChallengeInvalid)
    ));
    let b = w
        .mfa
        .complete_login(
            &alice,
            w.challenge(&alice).ticket(),
            SecondFactor::Totp(&code),
        )
        .unwrap();
    assert_eq!(b.credential_generation(), 2);
    assert!(matches!(
        w.mfa.status(&alice).unwrap(),
        MfaStatus::Active { generation: 2, .. }
    ));
}

#[test]
fn factors_are_redacted_in_debug() {
    // SEC-10: an instrumented handler that logs its arguments logs no code.
    let texts = [
        format!("{:?}", SecondFactor::Totp("123456")),
        format!("{:?}", SecondFactor::RecoveryCode("ABCD-EFGH-JKMN-PQRS")),
        format!("{:?}", Reauth::Factor(SecondFactor::Totp("123456"))),
        format!("{:?}", Reauth::StepUp("c2VjcmV0LXN0ZXAtdXAtdG9rZW4")),
    ];
    for t in texts {
        assert!(
            !t.contains("123456") && !t.contains("ABCD") && !t.contains("c2Vj"),
            "{t}"
        );
        assert!(t.contains("redacted"), "{t}");
    }
}

#[test]
fn full_width_recovery_codes_are_read_as_ascii() {
    // SEC-27: an input method that types full-width characters.
    let w = world();
    let alice = user("alice");
    let (_, codes) = w.enroll(&alice);
    let full_width: String = first_code(&codes)
        .chars()
        .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap())
        .collect();
    let a = w
        .mfa
        .complete_login(
            &alice,
            w.challenge(&alice).ticket(),
            SecondFactor::RecoveryCode(&full_width),
        )
        .unwrap();
    assert_eq!(a.factor(), Factor::RecoveryCode);
}

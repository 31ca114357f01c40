//! The design manual: what totp-mfa defends against, and why each rule is what it is.
//!
//! This module holds documentation only.
//!
//! # Threat model
//! totp-mfa protects an account whose password may be known to an attacker. It assumes the
//! host checks the password itself, keeps the login challenge in a server-side session that
//! is *not* yet a logged-in session, and keeps the [`Store`](crate::Store) in a secure area.
//! It defends against:
//!
//! | Attack | Defence | Requirement |
//! |---|---|---|
//! | Guessing codes, in parallel sessions | One failure count per user across all challenges, charged before each check, growing delays, lock at 10 (≤ 100) | SEC-14, SEC-15, SEC-19, SEC-24 |
//! | Replaying an observed code within its window | The last accepted time step is stored; only later steps are accepted | SEC-12 |
//! | Racing two requests with one code or one recovery code | Every change is a compare-and-swap on the record version | SEC-13, SEC-23, SEC-43 |
//! | Timing the comparison | Every step of the window and every stored recovery code is checked, results combined with `subtle::Choice` | SEC-16 |
//! | Skipping the second step | Only [`Mfa::complete_login`](crate::Mfa::complete_login) builds an [`Authorization`](crate::Authorization), from a verified factor and a live ticket bound to the user | SEC-32, SEC-33, SEC-40 |
//! | Using the password step as an oracle to reset the count | Starting a login never touches the count; only a successful factor resets it | SEC-34 |
//! | Replacing an active factor with an unconfirmed one | Enrollment is refused while MFA is active; a pending secret becomes active only when a code from it verifies | SEC-35 |
//! | Changing MFA on a stolen session | Regenerating codes and disabling MFA need a fresh factor or a single-use, 5-minute step-up token | SEC-25, SEC-36, SEC-37 |
//! | Reading the secret after activation | The URI and key exist only in the [`Enrollment`](crate::Enrollment) value | SEC-09 |
//! | Secrets in logs and crash reports | Redacted `Debug`, no `Display`, errors never carry a secret or a submitted code, zeroize on drop | SEC-08, SEC-10, SEC-31 |
//! | A stolen database | Recovery codes are stored only as salted PBKDF2 hashes; step-up tokens only as SHA-256 hashes. With the `encryption` feature the TOTP secret and the ticket key are sealed with XChaCha20-Poly1305 under a key the database never sees; without it they are stored raw | SEC-22, SEC-08 |
//! | A failing store | Every store error fails the operation closed; nothing is granted unless its record change was written | SEC-44 |
//!
//! It does not defend against phishing (a TOTP code typed into a fake site can be relayed
//! in real time; NIST SP 800-63B-4 says OTPs are not phishing-resistant), malware on the
//! user's phone, or an attacker with write access to the store.
//!
//! # The window
//! RFC 6238 section 5.2 recommends accepting at most one step of network delay. The default
//! window is one step back and one ahead (a code is accepted for up to about 60 seconds after
//! it appears, plus the time to type it); policies may widen it to two steps each way, no
//! more (SEC-11). A wider drift is diagnosed, not accepted: during enrollment a wrong code is
//! compared with the steps within 15 minutes, and a match tells the user how far off the
//! device clock is ([`WrongCodeHint::ClockOffBy`](crate::WrongCodeHint::ClockOffBy)).
//!
//! # Replay
//! RFC 6238 section 5.2: "the verifier MUST NOT accept the second attempt of the OTP after
//! the successful validation has been issued for the first OTP". The record keeps the last
//! accepted time step; a code that matches only that step or an earlier one is refused as
//! [`Error::CodeAlreadyUsed`](crate::Error::CodeAlreadyUsed) and counted as a failure. The
//! enrollment's confirmation code counts as used, so it cannot log in. The cost: a user who
//! logs in twice within one 30-second step must wait for the next code.
//!
//! # Throttling and lockout
//! Failures are counted per user, across challenges and factors, and reset only by a
//! successful second factor (or by the host's [`Mfa::unlock`](crate::Mfa::unlock) after it
//! verified the user's identity out of band). See [`Throttle`](crate::Throttle) for the
//! default schedule and its odds: at most 10 guesses in total, a chance of about
//! 3.0 × 10^-5 for a guesser against a 6-digit code with a ±1 window.
//!
//! The lock is a denial-of-service lever for someone who knows the password; that is the
//! trade NIST SP 800-63B makes. The growing delays make the lock slow to reach (about an hour
//! of trying), and [`Error::Locked`](crate::Error::Locked) tells the user to contact support.
//!
//! # Concurrency
//! Every change is a read-transition-write of one user's record through
//! [`Store::compare_and_swap`](crate::Store::compare_and_swap); the transitions are pure, so
//! when a write loses a race the driver re-runs the transition on the new record.
//!
//! Checking a second factor takes three steps, so that every attempt is paid for before any
//! expensive work and no expensive work is repeated (SEC-15, the Keycloak race
//! CVE-2024-4629):
//! 1. **charge**: a cheap transition checks the ticket and the throttle, parses the input
//!    and writes the failure count plus one. Of 1,000 parallel guesses against a limit of 5,
//!    only 5 get past this step.
//! 2. **check**: the HMAC (or, for a recovery code, PBKDF2) work, once, on the record as it
//!    was charged, writing nothing.
//! 3. **commit**: a cheap transition re-checks what may have changed meanwhile (the time
//!    step or recovery code still unused, the ticket still live, the credential the same),
//!    consumes the factor and resets the count. A wrong factor needs no commit: its failure
//!    was stored in step 1. Two requests with the same code both pass step 2, and the second
//!    commit finds the code spent.
//!
//! A crash between steps 1 and 3 leaves one failure counted: the error is on the safe side.
//!
//! # Login tickets
//! A login challenge's ticket is a MAC (HMAC-SHA256, under a random key kept in the user's
//! record) over the user id, the credential generation, a login epoch, a random nonce and the
//! expiry. Starting a login therefore writes nothing: a flood of password-only logins cannot
//! evict a user's challenge or contend with real attempts. A successful login moves the
//! epoch on, which spends every open ticket of that user (single use); resetting MFA drops
//! the key, which kills them all (SEC-33, SEC-38).
//!
//! A wrong code and a replayed one get different errors ("already used: wait for the next
//! code") where SEC-20 asks for one. The difference tells a guesser only that a guess equals
//! a code already spent, and it tells a real user what to do; both are counted alike.
//!
//! A server clock that jumps forward and back again leaves the last used step in the
//! future, and codes are refused as replays until the clock catches up: keep servers on NTP.
//!
//! # Recovery codes
//! Ten codes of 16 characters from Crockford's base32 alphabet (80 random bits each, above
//! the 64 bits NIST SP 800-63B-4 requires for saved recovery codes), stored as
//! PBKDF2-HMAC-SHA256 with a unique 16-byte salt and 10,000 iterations. Below 112 bits NIST
//! requires a salted key-derivation function; the work factor may be small because the codes
//! are random. A recovery code logs in once; the authorization then reports how many are
//! left and whether they are running low, and carries a step-up token that lets a user who
//! lost the phone reset MFA without spending a second code.
//!
//! # Async hosts
//! The state machines are pure and the [`Store`](crate::Store) trait is the only I/O. The
//! [`Mfa`](crate::Mfa) driver is synchronous; from an async runtime call it inside
//! `spawn_blocking`, since it blocks on the store and spends about 20 ms hashing when it
//! checks a recovery code.
//!
//! # Authenticator app compatibility
//! Which `otpauth://` parameters apps honor, from their public documentation and issue
//! trackers. Apps change; this is what was reported, with the source, not a guarantee. The
//! one safe choice is the default: SHA-1, 6 digits, 30 seconds, which every app honors. A
//! non-default choice is flagged by
//! [`Enrollment::works_with_every_app`](crate::Enrollment::works_with_every_app), and the
//! mandatory confirmation step catches an app that ignored it (the error then says "possible
//! authenticator mismatch", SEC-29).
//!
//! | App | `issuer` | `algorithm` SHA-256/512 | `digits` 8 | `period` ≠ 30 | Sources |
//! |---|---|---|---|---|---|
//! | Google Authenticator, Android | label prefix and parameter; old versions read only the prefix | ignored for years (always SHA-1); newer versions refuse the QR code | ignored for years; honored by versions from 2023 | ignored (always 30 s) | Key Uri Format wiki; google/google-authenticator-android#29; google/google-authenticator#521; andry08/ArubaOTP-seed-extractor#21 (2023) |
//! | Google Authenticator, iOS | yes | ignored per the Key Uri Format wiki | honored | honored (60 s tested, 2019) | Key Uri Format wiki; google/google-authenticator#521 (2019 comment) |
//! | Microsoft Authenticator | yes | not supported (SHA-1 codes) | reports differ: ignored (2016); 8-digit accounts shown in a recent Microsoft answer | ignored | RobThree/TwoFactorAuth.Net#1; samdjstevens/java-totp#27, #30; Microsoft Q&A |
//! | Authy (Twilio) | yes | not supported (SHA-1 codes) | not reported | not reported | samdjstevens/java-totp#30; google/google-authenticator-android#29 (2018 comment) |
//! | 1Password | yes | not verified | not verified | not verified | no public tracker found; test before relying on it |
//! | Aegis | yes | honored | honored | honored (a 2020 report of 60 s not applying was filed as a bug) | samdjstevens/java-totp#30 (2021 comment); beemdevelopment/Aegis#635 |
//! | FreeOTP | yes | honored | honored | honored | google/google-authenticator#521; springframeworkguru/ssc-brewery#6; samdjstevens/java-totp#30 |
//!
//! Every app reads `secret`, the label and `issuer`. Emit both the label prefix and the
//! `issuer` parameter (this crate always does), percent-encode spaces as `%20`, and omit
//! padding: all apps above accept that form.
//!
//! # What does not compile
//! Steps cannot be skipped, because the values that grant something cannot be made outside
//! the code path that verified a factor (SEC-32, SEC-40). An [`Authorization`](crate::Authorization)
//! cannot be built by hand:
//!
//! ```compile_fail
//! # use totp_mfa::*;
//! let forged = Authorization { user: UserId::new("alice").unwrap() };
//! ```
//!
//! nor can a set of recovery codes be conjured:
//!
//! ```compile_fail
//! let codes = totp_mfa::RecoveryCodes(Vec::new());
//! ```
//!
//! A challenge cannot be made without [`Mfa::start_login`](crate::Mfa::start_login):
//!
//! ```compile_fail
//! # use totp_mfa::*;
//! let c = Challenge { user: UserId::new("alice").unwrap(), ticket: todo!(), expires_at: 0 };
//! ```
//!
//! Once MFA is active there is no way to read the secret or URI back (SEC-09): the only
//! values that carry them are the [`Enrollment`](crate::Enrollment) returned by
//! [`Mfa::begin_enrollment`](crate::Mfa::begin_enrollment), and [`MfaStatus`](crate::MfaStatus)
//! has no secret in it:
//!
//! ```compile_fail
//! # use totp_mfa::*;
//! # fn f(mfa: &Mfa<MemoryStore>, user: &UserId) {
//! let uri = mfa.status(user).unwrap().provisioning_uri();
//! # }
//! ```
//!
//! Secrets have no `Display`, so they cannot be formatted into a log line by accident:
//!
//! ```compile_fail
//! let s = totp_mfa::Secret::from_base32("JBSWY3DPEHPK3PXP").unwrap();
//! println!("{s}");
//! ```

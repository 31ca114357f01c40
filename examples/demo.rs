//! `demo`: a TOTP second factor with `totp-mfa`, from sign-up to a lost phone, printed step
//! by step. Start here.
//!
//! ```text
//! cargo run --features sqlite --example demo        # scripted: a simulated phone types the codes
//! cargo run --features sqlite --example demo -- --interactive   # scan the QR code with your app
//! cargo run --features sqlite --example demo -- --interactive --light   # on a light terminal
//!
//! # One step per run, with the state kept in an SQLite file between runs:
//! cargo run --features sqlite --example demo -- enroll alice@example.com
//! cargo run --features sqlite --example demo -- login alice@example.com
//! cargo run --features sqlite --example demo -- status alice@example.com
//! cargo run --features sqlite --example demo -- reset alice@example.com
//! cargo run --features sqlite --example demo -- unlock alice@example.com
//! ```
//!
//! # What it shows
//!
//! 1. **Sign up.** The host application keeps its own user table (e-mail and an Argon2id
//!    password hash). `totp-mfa` never sees passwords: the host checks them first.
//! 2. **Enable MFA.** `Mfa::begin_enrollment` gives a QR code for the authenticator app and
//!    the same key in text, for typing in by hand.
//! 3. **Confirm.** The first code from the app proves it was set up right; MFA becomes active
//!    and the recovery codes are shown, once.
//! 4. **Log in.** The host checks the password (a wrong one is refused before any MFA step),
//!    then `Mfa::start_login` gives a challenge and `Mfa::complete_login` checks the code.
//! 5. **Replay.** The same code on a new sign-in attempt is refused: each code works once.
//! 6. **Wrong code.** Refused, with a hint (the device clock) and the attempts left before
//!    the second factor locks.
//! 7. **Lost phone.** A recovery code logs in, and is refused the second time.
//! 8. **Reset.** `Mfa::disable` with the step-up token of that recovery login, then a new
//!    phone is enrolled with a new secret, and logging in works again.
//!
//! # Scripted mode (the default)
//!
//! A simulated phone (`totp_mfa::testing::Authenticator`) reads the QR code's URI and
//! computes the codes. The service runs on a `ManualClock` that starts at the real current
//! time, so the first codes printed match what a real phone would show for that key, and
//! moves forward 30 seconds before each TOTP login: an accepted code spends its 30-second
//! time step, so every login needs the next code. The run checks every outcome it shows
//! and exits with status 1 if the library did anything unexpected. Everything lives in
//! memory; nothing is read from the input.
//!
//! # Interactive mode (`--interactive`)
//!
//! The service runs on the system clock. Scan the QR code with a real authenticator app
//! (Google Authenticator, Microsoft Authenticator, Authy, 1Password...) or type in the key,
//! then type the codes it shows: to confirm, then to log in (after the demo's password,
//! which is printed on screen). The demo then offers the lost-phone path: log in with one of
//! the recovery codes, and reset MFA. A wrong answer is explained (with the library's own
//! message) and asked again. Type `q`, or end the input (Ctrl-D), to leave at any prompt.
//! Everything lives in memory and is gone on exit.
//!
//! The QR code is drawn for a terminal with a dark background. On a light background it
//! shows inverted, which many scanners cannot read: add `--light` to draw it the other way.
//!
//! # Commands: one step per run, kept in SQLite
//!
//! Each command is a separate process, as each request to a real service would be; the MFA
//! records live in an SQLite file (`totp_mfa::SqliteStore`), by default
//! `totp-mfa-demo.sqlite3` in the current directory, or the file named by `--db PATH` or the
//! `TOTP_MFA_DEMO_DB` environment variable. Every command prints where the state is kept;
//! delete that file to start over. The service runs on the system clock. The user id is the
//! e-mail address, in lower case (a real service would use its own stable user id), and
//! there are no passwords: a real service checks the password where the demo says so.
//!
//! * `enroll EMAIL` shows the QR code, the key and the `otpauth://` URI, reads the first
//!   code from your app, and shows the recovery codes, once. A wrong code is explained and
//!   asked again until the setup's attempts run out.
//! * `login EMAIL` reads one code, from the app or a recovery code (told apart by their
//!   shape), and checks it once: a refused code is explained and the command exits with 1.
//! * `status EMAIL` shows the MFA state; `unlock EMAIL` plays the support desk that clears
//!   a lock after checking the user's identity.
//! * `reset EMAIL` is the lost phone: a login with a recovery code (or an app code), whose
//!   step-up token turns MFA off, so that `enroll` can set up the new phone.
//!
//! The file holds the TOTP secret as it is (a real service would also seal it, with the
//! `encryption` feature); on Unix the demo creates it readable by you only. Codes typed
//! into a pipe are not echoed back.
//!
//! # Exit status
//!
//! 0 when the demo or the command ran to the end (the scripted and interactive modes: or
//! input ended); 1 when a code was refused, input ended before a command finished, or
//! something failed (the message is printed); 2 for a bad command line.

use std::error::Error as StdError;
use std::fmt;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use argon2::password_hash::Error as PasswordError;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use totp_mfa::testing::Authenticator;
use totp_mfa::{
    Authorization, Challenge, Clock, Enrollment, Error, Factor, LoginStart, ManualClock,
    MemoryStore, Mfa, MfaStatus, Policy, Reauth, RecoveryCode, RecoveryCodes, SecondFactor,
    SqliteStore, Store, SystemClock, TerminalBackground, UserId,
};

/// The service name the authenticator app shows.
const ISSUER: &str = "totp-mfa demo";
/// How the per-step commands are run, for the hints that name the next one.
const RUN: &str = "cargo run --features sqlite --example demo --";

/// The command line the hints print: [`RUN`], with `--db PATH` when one was given, so a
/// hint followed to the letter opens the same database.
static RUN_WITH_DB: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn run_cmd() -> &'static str {
    RUN_WITH_DB.get().map_or(RUN, String::as_str)
}

/// `path` as one shell word: as it is when that is safe, else in single quotes.
fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@%=".contains(&b));
    if plain {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
const EMAIL: &str = "alice@example.com";
const PASSWORD: &str = "correct horse battery staple";
/// The TOTP period of the default policy.
const STEP: u64 = 30;
/// Where the commands keep their state, unless `--db` or [`DB_ENV`] names another file.
const DEFAULT_DB: &str = "totp-mfa-demo.sqlite3";
const DB_ENV: &str = "TOTP_MFA_DEMO_DB";

const USAGE: &str = "usage: demo [--interactive] [--light]
       demo [--db PATH] [--light] COMMAND EMAIL

  (no option)     scripted run: a simulated phone computes the codes
  --interactive   scan the QR code with your own authenticator app and type its codes
  --light         draw the QR code for a terminal with a light background

Commands: one step per run, with the state kept in an SQLite file between runs
  enroll EMAIL    enable MFA: scan the QR code, type the first code, get recovery codes
  login EMAIL     sign in with a code from your app or one of your recovery codes
  status EMAIL    show the MFA state
  reset EMAIL     lost phone: sign in with a recovery code, then turn MFA off
  unlock EMAIL    clear a lock, as the support desk would after checking the user
  --db PATH       the SQLite file (default: $TOTP_MFA_DEMO_DB, else ./totp-mfa-demo.sqlite3)";

type DemoResult<T> = Result<T, Box<dyn StdError>>;

/// Like `println!`, but a closed stdout (`demo | head`) ends the demo with an error instead
/// of a panic.
macro_rules! say {
    () => {
        writeln!(io::stdout())?
    };
    ($($arg:tt)*) => {
        writeln!(io::stdout(), $($arg)*)?
    };
}

fn main() -> ExitCode {
    let (mut interactive, mut light) = (false, false);
    let mut db: Option<PathBuf> = None;
    let mut words = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--interactive" | "-i") => interactive = true,
            Some("--light") => light = true,
            Some("--db") => match args.next() {
                Some(path) if !path.is_empty() => db = Some(PathBuf::from(path)),
                _ => return usage_error("--db needs a file path"),
            },
            Some(arg) if arg.starts_with("--db=") && arg.len() > "--db=".len() => {
                db = Some(PathBuf::from(&arg["--db=".len()..]));
            }
            Some("--help" | "-h") => {
                let _ = writeln!(io::stdout(), "{USAGE}");
                return ExitCode::SUCCESS;
            }
            Some(word) if !word.starts_with('-') => words.push(word.to_owned()),
            _ => return usage_error(&format!("unknown argument {arg:?}")),
        }
    }
    let outcome = match words.as_slice() {
        [] if db.is_some() => return usage_error("--db goes with a command, such as login"),
        [] if interactive => interactive_demo(light),
        [] => scripted_demo(light),
        [command, email] => {
            let Some(command) = Command::parse(command) else {
                return usage_error(&format!("unknown command {command:?}"));
            };
            if interactive {
                return usage_error("--interactive takes no command");
            }
            if email.trim().is_empty() {
                return usage_error("the e-mail address is empty");
            }
            run_command(command, email, db, light)
        }
        [command] if Command::parse(command).is_some() => {
            return usage_error(&format!("{command} needs the user's e-mail address"));
        }
        [command, ..] if Command::parse(command).is_none() => {
            return usage_error(&format!("unknown command {command:?}"));
        }
        _ => return usage_error(&format!("unexpected arguments {words:?}")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // Already explained on stdout.
        Err(e) if e.is::<Refused>() => ExitCode::FAILURE,
        Err(e) if e.is::<InputEnded>() => {
            let _ = writeln!(io::stdout(), "\n{e}");
            ExitCode::SUCCESS
        }
        // `demo | head`: the reader left, nobody to tell.
        Err(e)
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::FAILURE
        }
        Err(e) => {
            let _ = io::stdout().flush();
            // The store's own error says which file and why.
            match e.downcast_ref::<Error>() {
                Some(Error::Storage(cause)) => {
                    let _ = writeln!(io::stderr(), "\ndemo failed: {e}: {cause}");
                }
                _ => {
                    let _ = writeln!(io::stderr(), "\ndemo failed: {e}");
                }
            }
            ExitCode::FAILURE
        }
    }
}

fn usage_error(what: &str) -> ExitCode {
    let _ = writeln!(io::stderr(), "demo: {what}\n\n{USAGE}");
    ExitCode::from(2)
}

// -------------------------------------------------------------------------------------------
// Scripted mode
// -------------------------------------------------------------------------------------------

fn scripted_demo(light: bool) -> DemoResult<()> {
    say!("totp-mfa demo: two-factor sign-in with TOTP codes, from sign-up to a lost phone.");
    say!("A simulated phone types the codes. Run with --interactive to use your own app.");

    // The service's clock starts at the real time, so the first codes are the ones a real
    // phone would show for this key, and moves only when the demo moves it.
    let clock = Arc::new(ManualClock::new(SystemClock.now()?));
    let mfa = Mfa::new(MemoryStore::new(), Policy::new(ISSUER))?.with_clock(Arc::clone(&clock));
    let mut users = Users::default();

    heading(1, "Sign up: the host's own user database")?;
    let alice = users.sign_up(EMAIL, PASSWORD)?;
    say!("  MFA status: {}", status_text(&mfa.status(&alice)?));

    heading(2, "Enable MFA: show the QR code and the manual key")?;
    let enrollment = mfa.begin_enrollment(&alice, EMAIL)?;
    show_enrollment(&enrollment, EMAIL, clock.now()?, light)?;
    let old_key = enrollment.manual_key().to_owned();

    heading(3, "Confirm with the first code from the phone")?;
    let phone = Authenticator::from_uri(enrollment.uri().as_str())?;
    say!("  The user scans the QR code; the phone shows a new 6-digit code every 30 seconds.");
    let code = phone.code_at(clock.now()?)?;
    say!("  Phone shows {code}; the user types it in.");
    let recovery_codes = mfa.confirm_enrollment(&alice, &code)?;
    say!("  ✓ MFA is now active for {EMAIL}.");
    show_recovery_codes(&recovery_codes)?;

    heading(4, "Log in: the password first, then a code")?;
    say!("{}", wrap("  ", EACH_CODE_ONCE));
    say!("  Someone types a wrong password:");
    if users.check_password(EMAIL, "hunter2")?.is_some() {
        return Err(unexpected("the host accepted a wrong password"));
    }
    say!("  ✗ Wrong password refused by the host: no MFA step was started, nothing counted.");
    tick(&clock)?;
    let user = host_login(&users, EMAIL, PASSWORD)?;
    let challenge = start_challenge(&mfa, &user)?;
    let code = phone.code_at(clock.now()?)?;
    say!("  Phone shows {code}; the user types it in.");
    let auth = mfa.complete_login(&user, challenge.ticket(), SecondFactor::Totp(&code))?;
    show_authorization(&auth, true)?;

    heading(5, "The same code again is refused (replay)")?;
    say!("  Someone who saw that code tries it on a new sign-in attempt, in the same 30 s:");
    let challenge = start_challenge(&mfa, &user)?;
    let e = expect_refusal(
        mfa.complete_login(&user, challenge.ticket(), SecondFactor::Totp(&code)),
        "the replayed code",
        |e| matches!(e, Error::CodeAlreadyUsed { .. }),
    )?;
    say!("  ✗ Replayed code refused. The library's message:");
    say!("{}", wrap("      ", &e.to_string()));

    heading(6, "A wrong code is refused, with a hint")?;
    let wrong = wrong_code(&phone, clock.now()?)?;
    say!("  The user mistypes: {wrong} (on the same sign-in attempt).");
    let e = expect_refusal(
        mfa.complete_login(&user, challenge.ticket(), SecondFactor::Totp(&wrong)),
        "the wrong code",
        |e| matches!(e, Error::WrongCode { .. }),
    )?;
    say!("  ✗ Wrong code refused. The library's message:");
    say!("{}", wrap("      ", &e.to_string()));
    if let Error::WrongCode {
        hint,
        attempts_left,
        ..
    } = &e
    {
        say!("    The same, as fields for your UI:");
        say!("{}", wrap("      hint:          ", &hint.to_string()));
        say!("      attempts left: {attempts_left}");
    }
    say!("  MFA status: {}", status_text(&mfa.status(&user)?));
    say!("  The user waits for the next code and tries again on the same sign-in attempt:");
    tick(&clock)?;
    let code = phone.code_at(clock.now()?)?;
    say!("  Phone shows {code}.");
    let auth = mfa.complete_login(&user, challenge.ticket(), SecondFactor::Totp(&code))?;
    show_authorization(&auth, true)?;
    say!(
        "  A successful login resets the failure count: {}",
        status_text(&mfa.status(&user)?)
    );

    heading(7, "Lost phone: log in with a recovery code")?;
    let recovery_code = recovery_codes
        .iter()
        .next()
        .ok_or_else(|| unexpected("no recovery codes were issued"))?
        .as_str()
        .to_owned();
    let user = host_login(&users, EMAIL, PASSWORD)?;
    let challenge = start_challenge(&mfa, &user)?;
    say!("  No phone: the user types recovery code #1, {recovery_code}.");
    let recovery_auth = mfa.complete_login(
        &user,
        challenge.ticket(),
        SecondFactor::RecoveryCode(&recovery_code),
    )?;
    if recovery_auth.factor() != Factor::RecoveryCode {
        return Err(unexpected("the recovery login reports another factor"));
    }
    show_authorization(&recovery_auth, true)?;
    say!("  Someone tries the same recovery code again, on a new sign-in attempt:");
    let challenge = start_challenge(&mfa, &user)?;
    let e = expect_refusal(
        mfa.complete_login(
            &user,
            challenge.ticket(),
            SecondFactor::RecoveryCode(&recovery_code),
        ),
        "the used recovery code",
        |e| matches!(e, Error::WrongRecoveryCode { .. }),
    )?;
    say!("  ✗ Used recovery code refused. The library's message:");
    say!("{}", wrap("      ", &e.to_string()));

    heading(8, "Reset: turn MFA off, then enroll the new phone")?;
    say!("{}", wrap("  ", RESET_TEXT));
    mfa.disable(&user, Reauth::StepUp(recovery_auth.step_up_token()))?;
    say!("  ✓ MFA disabled: the old secret and every recovery code are deleted.");
    say!("  MFA status: {}", status_text(&mfa.status(&user)?));
    say!("  The user enables MFA again and scans the new QR code with the new phone:");
    let enrollment = mfa.begin_enrollment(&user, EMAIL)?;
    let new_key = enrollment.manual_key().to_owned();
    say!("    old key: {old_key}");
    say!("    new key: {new_key}");
    if new_key == old_key {
        return Err(unexpected("re-enrollment reused the old secret"));
    }
    let new_phone = Authenticator::from_uri(enrollment.uri().as_str())?;
    let code = new_phone.code_at(clock.now()?)?;
    say!("  New phone shows {code}; the user types it in.");
    let new_codes = mfa.confirm_enrollment(&user, &code)?;
    say!("  ✓ Re-enrolled with a new secret: MFA is active again, with a new key.");
    say!(
        "    {} new recovery codes were issued (shown once, as in step 3); the old ones are void.",
        new_codes.len()
    );
    tick(&clock)?;
    let user = host_login(&users, EMAIL, PASSWORD)?;
    let challenge = start_challenge(&mfa, &user)?;
    let (old_code, code) = (
        phone.code_at(clock.now()?)?,
        new_phone.code_at(clock.now()?)?,
    );
    if old_code != code {
        say!("  Someone with the old phone types its code, {old_code}:");
        let e = expect_refusal(
            mfa.complete_login(&user, challenge.ticket(), SecondFactor::Totp(&old_code)),
            "the old phone's code",
            |e| matches!(e, Error::WrongCode { .. }),
        )?;
        say!("  ✗ Old phone's code refused: its secret was deleted by the reset. The message:");
        say!("{}", wrap("      ", &e.to_string()));
    }
    say!("  The new phone shows {code}; the user types it in.");
    let auth = mfa.complete_login(&user, challenge.ticket(), SecondFactor::Totp(&code))?;
    show_authorization(&auth, true)?;
    say!("  ✓ Login with the new phone succeeded.");

    say!();
    say!("Demo complete. Try it with a real authenticator app:");
    say!("  cargo run --features sqlite --example demo -- --interactive");
    say!("or one step per run, with the state kept in a file:");
    say!("  cargo run --features sqlite --example demo -- enroll you@example.com");
    Ok(())
}

const EACH_CODE_ONCE: &str = "Each code works once: an accepted code spends its 30-second time \
    step, and confirming MFA just spent the current one. A real user waits for the next code; \
    the demo moves its clock forward 30 s before each TOTP login.";

const RESET_TEXT: &str = "Turning MFA off needs a fresh second factor. The recovery login of \
    step 7 gave a single-use step-up token, valid for 5 minutes: the \"reset\" for a user who \
    lost the phone.";

/// Moves the scripted clock to the next time step.
fn tick(clock: &ManualClock) -> DemoResult<()> {
    clock.advance(STEP);
    say!(
        "  [clock +30 s: now time step {}, a new code]",
        clock.now()? / STEP
    );
    Ok(())
}

/// A well-formed code that none of the steps around `now` produces.
fn wrong_code(phone: &Authenticator, now: u64) -> DemoResult<String> {
    let mut valid = Vec::new();
    for step in -2i64..=2 {
        valid.push(phone.code_at(now.saturating_add_signed(step * STEP as i64))?);
    }
    ["123456", "000000", "111111", "999999", "555555", "246810"]
        .into_iter()
        .find(|c| !valid.iter().any(|v| v == c))
        .map(str::to_owned)
        .ok_or_else(|| unexpected("every candidate wrong code was valid"))
}

/// The refusal `result` should be, or an error saying what went wrong instead.
fn expect_refusal<T>(
    result: Result<T, Error>,
    what: &str,
    expected: impl Fn(&Error) -> bool,
) -> DemoResult<Error> {
    match result {
        Ok(_) => Err(unexpected(&format!("{what} was accepted"))),
        Err(e) if expected(&e) => Ok(e),
        Err(e) => Err(unexpected(&format!("{what} gave another error: {e}"))),
    }
}

// -------------------------------------------------------------------------------------------
// Interactive mode
// -------------------------------------------------------------------------------------------

fn interactive_demo(light: bool) -> DemoResult<()> {
    let mut input = Input::new();
    say!("totp-mfa demo, interactive: two-factor sign-in with your own authenticator app.");
    say!("You need an authenticator app on your phone (Google Authenticator, Microsoft");
    say!("Authenticator, Authy, 1Password...). Type q or press Ctrl-D at any prompt to leave.");

    let mfa = Mfa::new(MemoryStore::new(), Policy::new(ISSUER))?;
    let mut users = Users::default();

    heading(1, "Sign up: the host's own user database")?;
    let alice = users.sign_up(EMAIL, PASSWORD)?;

    heading(2, "Enable MFA: scan the QR code")?;
    say!("  In your app, add an account and scan this QR code (make the terminal window large");
    say!("  enough to show it whole), or type in the key below it:");
    let recovery_codes = 'enroll: loop {
        let enrollment = mfa.begin_enrollment(&alice, EMAIL)?;
        show_enrollment(&enrollment, EMAIL, SystemClock.now()?, light)?;
        if !light {
            say!("  (Drawn for a dark terminal background: on a light one, run with --light.)");
        }
        say!("  Your app now lists \"{ISSUER}\" ({EMAIL}) with a 6-digit code.");
        loop {
            let code = input.line("  Type the code your app shows now: ")?;
            match mfa.confirm_enrollment(&alice, &code) {
                Ok(codes) => break 'enroll codes,
                Err(
                    e @ (Error::EnrollmentExpired
                    | Error::EnrollmentAttemptsExhausted
                    | Error::WrongSetupCode {
                        attempts_left: 0, ..
                    }),
                ) => {
                    say!("{}", wrap("  ✗ ", &e.to_string()));
                    say!("{}", wrap("  ", START_OVER_TEXT));
                    continue 'enroll;
                }
                Err(e) if e.is_refused_factor() || e.is_bad_input() => {
                    say!("{}", wrap("  ✗ ", &e.to_string()));
                }
                Err(e) => return Err(e.into()),
            }
        }
    };

    heading(3, "MFA is on")?;
    say!("  ✓ MFA is now active for {EMAIL}.");
    show_recovery_codes(&recovery_codes)?;

    heading(4, "Log in: the password first, then a code")?;
    say!("{}", wrap("  ", WAIT_FOR_NEXT_CODE));
    let user = prompt_password(&users, &mut input)?;
    let auth = answer_challenge(&mfa, &mut input, &user, false)?;
    show_authorization(&auth, true)?;

    heading(5, "Lost phone? Log in with a recovery code")?;
    if !input.yes("  Try it now: sign in again, this time with a recovery code? [y/N] ")? {
        return finish_interactive(false);
    }
    let user = prompt_password(&users, &mut input)?;
    let auth = answer_challenge(&mfa, &mut input, &user, true)?;
    show_authorization(&auth, true)?;

    heading(6, "Reset MFA, as after losing the phone")?;
    say!("{}", wrap("  ", STEP_UP_TEXT));
    if !input.yes("  Turn MFA off now with that token? [y/N] ")? {
        return finish_interactive(false);
    }
    match mfa.disable(&user, Reauth::StepUp(auth.step_up_token())) {
        Ok(()) => {
            say!("  ✓ MFA disabled: the secret and every recovery code are deleted.");
            say!("  MFA status: {}", status_text(&mfa.status(&user)?));
            say!("  A user with a new phone would now enable MFA again, as in step 2.");
        }
        Err(e @ Error::StepUpInvalid) => {
            say!("{}", wrap("  ✗ ", &e.to_string()));
            say!("  (The step-up token is valid for 5 minutes after the login.)");
        }
        Err(e) => return Err(e.into()),
    }
    finish_interactive(true)
}

const WAIT_FOR_NEXT_CODE: &str = "Each code works once, and confirming MFA just spent the \
    current one: wait until your app shows a new code (it changes every 30 seconds).";

const START_OVER_TEXT: &str = "Starting over with a new key: delete the entry you just \
    added from your app, then scan this new QR code.";

const STEP_UP_TEXT: &str = "Turning MFA off needs a fresh second factor: the login you just \
    completed gave a single-use step-up token, valid for 5 minutes.";

const UNLOCK_TEXT: &str = "A real service's support desk would now verify your identity out \
    of band, then call Mfa::unlock. The demo does that now.";

fn finish_interactive(reset: bool) -> DemoResult<()> {
    say!();
    if !reset {
        say!("MFA stays on, but only until the demo exits: everything lives in memory.");
    }
    say!("Demo complete. You can now delete the \"{ISSUER}\" entry from your app.");
    Ok(())
}

/// The host's login form: asks until the password is right.
fn prompt_password(users: &Users, input: &mut Input) -> DemoResult<UserId> {
    let prompt = format!("  Password for {EMAIL} (the demo's password is \"{PASSWORD}\"): ");
    loop {
        let password = input.line(&prompt)?;
        match users.check_password(EMAIL, &password)? {
            Some(user) => {
                say!("  ✓ Password OK (checked by the host against the Argon2id hash).");
                return Ok(user);
            }
            None => say!("  ✗ Wrong email or password. (Refused by the host: no MFA step ran.)"),
        }
    }
}

/// Starts a login challenge and asks for a TOTP or recovery code until one is accepted.
fn answer_challenge<C: Clock>(
    mfa: &Mfa<MemoryStore, C>,
    input: &mut Input,
    user: &UserId,
    recovery: bool,
) -> DemoResult<Authorization> {
    let prompt = if recovery {
        "  Type one of your recovery codes: "
    } else {
        "  Type the code your app shows now: "
    };
    let mut challenge = start_challenge(mfa, user)?;
    loop {
        let text = input.line(prompt)?;
        let factor = if recovery {
            SecondFactor::RecoveryCode(&text)
        } else {
            SecondFactor::Totp(&text)
        };
        match mfa.complete_login(user, challenge.ticket(), factor) {
            Ok(auth) => return Ok(auth),
            Err(e @ (Error::ChallengeExpired | Error::ChallengeInvalid)) => {
                say!("{}", wrap("  ✗ ", &e.to_string()));
                say!("  (The demo starts a new sign-in attempt for you.)");
                challenge = start_challenge(mfa, user)?;
            }
            Err(e @ Error::Locked) => {
                say!("{}", wrap("  ✗ ", &e.to_string()));
                say!("{}", wrap("  ", UNLOCK_TEXT));
                mfa.unlock(user)?;
            }
            Err(e) if e.is_refused_factor() || e.is_bad_input() => {
                say!("{}", wrap("  ✗ ", &e.to_string()));
            }
            Err(e @ Error::Throttled { .. }) => say!("{}", wrap("  ✗ ", &e.to_string())),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Why the interactive demo stopped early: not a failure.
#[derive(Debug)]
enum InputEnded {
    Eof,
    Quit,
}

impl fmt::Display for InputEnded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputEnded::Eof => f.write_str("Input ended: leaving the demo. Bye!"),
            InputEnded::Quit => f.write_str("Leaving the demo. Bye!"),
        }
    }
}

impl StdError for InputEnded {}

/// Lines typed by the person running the demo.
struct Input {
    stdin: io::StdinLock<'static>,
    /// Input from a pipe or file is not echoed by a terminal: the demo echoes it, so that
    /// the transcript reads the same.
    echo: bool,
}

impl Input {
    fn new() -> Self {
        let stdin = io::stdin();
        Input {
            echo: !stdin.is_terminal(),
            stdin: stdin.lock(),
        }
    }

    /// Shows `prompt` and reads one line, without its line ending.
    fn line(&mut self, prompt: &str) -> DemoResult<String> {
        self.read(prompt, false)
    }

    /// Like [`Input::line`], for a code: input from a pipe is not echoed back, as it may be a
    /// recovery code that should not end up in a log.
    fn code(&mut self, prompt: &str) -> DemoResult<String> {
        self.read(prompt, true)
    }

    fn read(&mut self, prompt: &str, secret: bool) -> DemoResult<String> {
        write!(io::stdout(), "{prompt}")?;
        io::stdout().flush()?;
        let mut bytes = Vec::new();
        if self.stdin.read_until(b'\n', &mut bytes)? == 0 {
            say!();
            return Err(InputEnded::Eof.into());
        }
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim_end_matches(['\n', '\r']);
        if self.echo {
            if secret {
                say!("(read from the input)");
            } else {
                say!("{text}");
            }
        }
        if matches!(text.trim(), "q" | "quit") {
            return Err(InputEnded::Quit.into());
        }
        Ok(text.to_owned())
    }

    /// Asks a yes/no question; anything but "y" or "yes" is no.
    fn yes(&mut self, prompt: &str) -> DemoResult<bool> {
        let answer = self.line(prompt)?;
        Ok(matches!(
            answer.trim().to_ascii_lowercase().as_str(),
            "y" | "yes"
        ))
    }
}

// -------------------------------------------------------------------------------------------
// Commands: one step per run, the state kept in SQLite
// -------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Command {
    Enroll,
    Login,
    Status,
    Reset,
    Unlock,
}

impl Command {
    fn parse(word: &str) -> Option<Command> {
        Some(match word {
            "enroll" => Command::Enroll,
            "login" => Command::Login,
            "status" => Command::Status,
            "reset" => Command::Reset,
            "unlock" => Command::Unlock,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Command::Enroll => "enroll",
            Command::Login => "login",
            Command::Status => "status",
            Command::Reset => "reset",
            Command::Unlock => "unlock",
        }
    }
}

/// A code was refused or the command could not go on: already explained on stdout, exit 1.
#[derive(Debug)]
struct Refused;

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("refused")
    }
}

impl StdError for Refused {}

/// The service of the commands: records in an SQLite file, the system clock.
type FileMfa = Mfa<SqliteStore>;

const NO_PASSWORDS: &str = "Password: this demo keeps no passwords. A real service checks \
    the password here, and starts the second factor only when it is right.";

fn run_command(command: Command, email: &str, db: Option<PathBuf>, light: bool) -> DemoResult<()> {
    // The e-mail address stands in for the host's own user id, which a real service keeps.
    let email = email.trim().to_lowercase();
    let user = UserId::new(email.as_str())?;
    if let Some(given) = &db {
        let _ = RUN_WITH_DB.set(format!("{RUN} --db {}", shell_word(given)));
    }
    let path = db
        .or_else(|| {
            std::env::var_os(DB_ENV)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DB));
    create_private(&path);
    let store = SqliteStore::open(&path)
        .map_err(|e| format!("cannot open the demo's database {}: {e}", path.display()))?;
    let shown = std::fs::canonicalize(&path).unwrap_or(path);
    say!("totp-mfa demo: {} {email}", command.name());
    say!(
        "  State is kept in {} (SQLite; delete it to start over).",
        shown.display()
    );
    let mfa = Mfa::new(store, Policy::new(ISSUER))?;
    let mut input = Input::new();
    let outcome = match command {
        Command::Enroll => enroll(&mfa, &mut input, &user, light),
        Command::Login => login(&mfa, &mut input, &user),
        Command::Status => show_status(&mfa, &user),
        Command::Reset => reset(&mfa, &mut input, &user),
        Command::Unlock => unlock(&mfa, &user),
    };
    match outcome {
        Err(e) if e.is::<InputEnded>() => {
            say!();
            say!("  {e}");
            match command {
                Command::Enroll => say!("  MFA was not enabled: the setup was not confirmed."),
                Command::Login | Command::Reset => say!("  Not signed in: nothing changed."),
                Command::Status | Command::Unlock => {}
            }
            Err(Refused.into())
        }
        other => other,
    }
}

/// Creates a new database file readable by its owner only: it will hold TOTP secrets, and
/// SQLite gives its `-wal` and `-shm` files the same permissions. An existing file is left
/// as it is, and any failure is reported by `SqliteStore::open`.
fn create_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn enroll(mfa: &FileMfa, input: &mut Input, user: &UserId, light: bool) -> DemoResult<()> {
    let run = run_cmd();
    let email = user.as_str();
    match mfa.status(user)? {
        MfaStatus::Active { .. } => {
            say!("  ✗ MFA is already enabled for {email}.");
            say!(
                "    New phone? Run `{run} reset {email}` with a recovery code, then enroll again."
            );
            return Err(Refused.into());
        }
        MfaStatus::Pending { .. } => {
            say!("  A setup started earlier was never confirmed: it is replaced by a new key.");
            say!("  (Delete its entry from your app if you added one.)");
        }
        _ => {}
    }
    let enrollment = mfa.begin_enrollment(user, email)?;
    say!("  In your app, add an account and scan this QR code, or type in the key below it:");
    show_enrollment(&enrollment, email, SystemClock.now()?, light)?;
    if !light {
        say!("  (Drawn for a dark terminal background: on a light one, add --light.)");
    }
    say!("  The same as an otpauth URI (what the QR code holds):");
    say!("    {}", enrollment.uri().as_str());
    say!("  Your app now lists \"{ISSUER}\" ({email}) with a 6-digit code.");
    loop {
        let code = input.code("  Type the code your app shows now: ")?;
        match mfa.confirm_enrollment(user, &code) {
            Ok(codes) => {
                say!("  ✓ MFA is now active for {email}.");
                show_recovery_codes(&codes)?;
                say!("  Next: `{run} login {email}`.");
                say!("{}", wrap("  ", WAIT_FOR_NEXT_CODE));
                return Ok(());
            }
            Err(
                e @ (Error::EnrollmentExpired
                | Error::EnrollmentAttemptsExhausted
                | Error::NoPendingEnrollment
                | Error::WrongSetupCode {
                    attempts_left: 0, ..
                }),
            ) => {
                say!("{}", wrap("  ✗ ", &e.to_string()));
                say!(
                    "  Run `{run} enroll {email}` again for a new key, and delete this entry from your app."
                );
                return Err(Refused.into());
            }
            // A wrong code (with its hint) or a malformed one: ask again.
            Err(e) if e.is_refused_factor() || e.is_bad_input() => {
                say!("{}", wrap("  ✗ ", &e.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn login(mfa: &FileMfa, input: &mut Input, user: &UserId) -> DemoResult<()> {
    require_active(mfa, user)?;
    say!("{}", wrap("  ", NO_PASSWORDS));
    let auth = sign_in(mfa, input, user)?;
    show_authorization(&auth, false)
}

fn reset(mfa: &FileMfa, input: &mut Input, user: &UserId) -> DemoResult<()> {
    let run = run_cmd();
    require_active(mfa, user)?;
    say!("{}", wrap("  ", LOST_PHONE_TEXT));
    say!("{}", wrap("  ", NO_PASSWORDS));
    let auth = sign_in(mfa, input, user)?;
    show_authorization(&auth, false)?;
    mfa.disable(user, Reauth::StepUp(auth.step_up_token()))?;
    say!("  ✓ MFA disabled for {user}: the secret and every recovery code are deleted.");
    say!("  Set up the new phone with `{run} enroll {user}`.");
    Ok(())
}

const LOST_PHONE_TEXT: &str = "Lost phone: sign in with one of your recovery codes (a code \
    from the app works too). That login's single-use step-up token then turns MFA off.";

fn show_status(mfa: &FileMfa, user: &UserId) -> DemoResult<()> {
    let run = run_cmd();
    let status = mfa.status(user)?;
    say!("  MFA status for {user}: {}", status_text(&status));
    let now = SystemClock.now()?;
    match status {
        MfaStatus::Pending { expires_at } => say!(
            "  The setup waits for its first code for {} more seconds (`{run} enroll {user}`).",
            expires_at.saturating_sub(now)
        ),
        MfaStatus::Active {
            retry_at: Some(at), ..
        } if at > now => say!(
            "  After failed codes, the next attempt waits {} s.",
            at - now
        ),
        _ => {}
    }
    Ok(())
}

fn unlock(mfa: &FileMfa, user: &UserId) -> DemoResult<()> {
    require_active(mfa, user)?;
    mfa.unlock(user)?;
    say!("{}", wrap("  ✓ ", UNLOCKED_TEXT));
    say!("  MFA status: {}", status_text(&mfa.status(user)?));
    Ok(())
}

const UNLOCKED_TEXT: &str = "Unlocked: the failure count and any wait are cleared. A real \
    service's support desk does this only after verifying the user's identity out of band.";

/// Goes on only when MFA is active for `user`.
fn require_active(mfa: &FileMfa, user: &UserId) -> DemoResult<()> {
    let run = run_cmd();
    match mfa.status(user)? {
        MfaStatus::Active { .. } => Ok(()),
        status => {
            say!(
                "  ✗ MFA is not enabled for {user} ({}).",
                status_text(&status)
            );
            say!("    Enable it first: `{run} enroll {user}`.");
            Err(Refused.into())
        }
    }
}

/// One sign-in attempt: reads a code from the app or a recovery code, told apart by their
/// shape, and checks it once. Malformed input is explained and asked again (it is not
/// counted); a refused code is explained and ends the command.
fn sign_in(mfa: &FileMfa, input: &mut Input, user: &UserId) -> DemoResult<Authorization> {
    let run = run_cmd();
    let challenge = start_challenge(mfa, user)?;
    loop {
        let text =
            input.code("  Type the code your app shows now, or one of your recovery codes: ")?;
        let factor = if RecoveryCode::parse(&text).is_ok() {
            SecondFactor::RecoveryCode(&text)
        } else {
            SecondFactor::Totp(&text)
        };
        match mfa.complete_login(user, challenge.ticket(), factor) {
            Ok(auth) => return Ok(auth),
            Err(e) if e.is_bad_input() => say!("{}", wrap("  ✗ ", &e.to_string())),
            Err(e @ Error::Locked) => {
                say!("{}", wrap("  ✗ ", &e.to_string()));
                say!("    (`{run} unlock {user}` plays the support desk.)");
                return Err(Refused.into());
            }
            Err(
                e @ (Error::WrongCode { .. }
                | Error::CodeAlreadyUsed { .. }
                | Error::WrongRecoveryCode { .. }
                | Error::Throttled { .. }
                | Error::ChallengeExpired
                | Error::ChallengeInvalid),
            ) => {
                say!("{}", wrap("  ✗ ", &e.to_string()));
                return Err(Refused.into());
            }
            Err(e) => return Err(e.into()),
        }
    }
}

// -------------------------------------------------------------------------------------------
// The host application's side: its users table and password check
// -------------------------------------------------------------------------------------------

/// The host's users: `totp-mfa` knows them only by [`UserId`] and never sees a password.
#[derive(Default)]
struct Users {
    rows: Vec<UserRow>,
}

struct UserRow {
    id: UserId,
    email: String,
    /// Argon2id, as a PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
    password_hash: String,
}

impl Users {
    fn sign_up(&mut self, email: &str, password: &str) -> DemoResult<UserId> {
        // A random 16-byte salt from the OS comes with every hash.
        let password_hash = Argon2::default()
            .hash_password(password.as_bytes())?
            .to_string();
        // A stable database id, not the e-mail address, which may change.
        let id = UserId::new(format!("user-{}", self.rows.len() + 1))?;
        say!("  Signed up {email} as {id}, password \"{password}\".");
        say!("  Stored password hash: {password_hash}");
        self.rows.push(UserRow {
            id: id.clone(),
            email: email.to_owned(),
            password_hash,
        });
        Ok(id)
    }

    /// The host's password check, which comes before any MFA step: the user's id, or `None`
    /// for a wrong e-mail or password.
    fn check_password(&self, email: &str, password: &str) -> DemoResult<Option<UserId>> {
        // (A real service would also hash a dummy password for an unknown e-mail, so that
        // response times do not reveal which addresses have accounts.)
        let Some(row) = self
            .rows
            .iter()
            .find(|r| r.email.eq_ignore_ascii_case(email.trim()))
        else {
            return Ok(None);
        };
        let hash = PasswordHash::new(&row.password_hash)?;
        match Argon2::default().verify_password(password.as_bytes(), &hash) {
            Ok(()) => Ok(Some(row.id.clone())),
            Err(PasswordError::PasswordInvalid) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The host's login form with the right password.
fn host_login(users: &Users, email: &str, password: &str) -> DemoResult<UserId> {
    say!("  The user types {email} and the password:");
    let user = users
        .check_password(email, password)?
        .ok_or_else(|| unexpected("the host refused the right password"))?;
    say!("  ✓ Password OK (checked by the host against the Argon2id hash).");
    Ok(user)
}

// -------------------------------------------------------------------------------------------
// Shared output
// -------------------------------------------------------------------------------------------

fn heading(number: u32, title: &str) -> DemoResult<()> {
    say!();
    say!("== {number}. {title} ==");
    Ok(())
}

/// Shows the QR code and the manual-entry key for `account`. `light`: for a light terminal
/// background.
fn show_enrollment(
    enrollment: &Enrollment,
    account: &str,
    now: u64,
    light: bool,
) -> DemoResult<()> {
    let background = if light {
        TerminalBackground::Light
    } else {
        TerminalBackground::Dark
    };
    match enrollment.qr_terminal(background) {
        Ok(qr) => say!("{}", qr.as_str()),
        Err(e) => say!("  (No QR code: {e}.)"),
    }
    say!(
        "  Can't scan? Enter this key manually: {}",
        enrollment.manual_key()
    );
    say!("    (account {account}, issuer \"{ISSUER}\", time-based, 6 digits, every 30 s)");
    say!(
        "  This setup expires in {} minutes unless confirmed with a code.",
        enrollment.expires_at().saturating_sub(now) / 60
    );
    Ok(())
}

fn show_recovery_codes(codes: &RecoveryCodes) -> DemoResult<()> {
    say!("  Your recovery codes, for when the phone is lost. They are shown only now:");
    say!("  store these somewhere safe; each works once.");
    for (i, code) in codes.iter().enumerate() {
        say!("    {:>2}. {}", i + 1, code.as_str());
    }
    Ok(())
}

fn start_challenge<S: Store, C: Clock>(mfa: &Mfa<S, C>, user: &UserId) -> DemoResult<Challenge> {
    match mfa.start_login(user)? {
        LoginStart::Challenge(challenge) => {
            say!("  start_login: MFA is on, a second factor is required (new sign-in attempt).");
            Ok(challenge)
        }
        LoginStart::NoMfa => Err(unexpected("start_login says this user has no MFA")),
    }
}

/// The outcome of a login; `full_token`: print the whole session token, else its start.
fn show_authorization(auth: &Authorization, full_token: bool) -> DemoResult<()> {
    match auth.factor() {
        Factor::Totp => say!(
            "  ✓ Logged in as {} with factor Totp (app code).",
            auth.user()
        ),
        Factor::RecoveryCode => {
            say!("  ✓ Logged in as {} with factor RecoveryCode.", auth.user());
            say!("    That is an account-recovery event: a real service e-mails the user.");
        }
    }
    if full_token {
        say!("    Session token (the host keeps it; printed only because this is a demo):");
        say!("      {}", auth.session_token());
    } else {
        let start: String = auth.session_token().chars().take(6).collect();
        say!("    Session token: {start}... (the host keeps it; shortened here)");
    }
    say!("    Recovery codes left: {}", auth.recovery_codes_left());
    if auth.recovery_codes_low() {
        say!("    Running low: ask the user to generate new ones.");
    }
    Ok(())
}

fn status_text(status: &MfaStatus) -> String {
    match status {
        MfaStatus::Disabled => "disabled".to_owned(),
        MfaStatus::Pending { .. } => "pending confirmation".to_owned(),
        MfaStatus::Active {
            recovery_codes_left,
            failures,
            locked,
            ..
        } => format!(
            "active, {recovery_codes_left} recovery code{} left, {failures} failed attempt{}{}",
            if *recovery_codes_left == 1 { "" } else { "s" },
            if *failures == 1 { "" } else { "s" },
            if *locked { ", locked" } else { "" }
        ),
        _ => format!("{status:?}"),
    }
}

/// Word-wraps `text` to 92 columns; the first line starts with `first`, the others are
/// indented as deep.
fn wrap(first: &str, text: &str) -> String {
    const WIDTH: usize = 92;
    let indent = " ".repeat(first.chars().count());
    let mut out = String::from(first);
    let mut column = out.chars().count();
    let mut line_empty = true;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if !line_empty && column + 1 + len > WIDTH {
            out.push('\n');
            out.push_str(&indent);
            column = indent.len();
            line_empty = true;
        }
        if !line_empty {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += len;
        line_empty = false;
    }
    out
}

fn unexpected(what: &str) -> Box<dyn StdError> {
    format!("unexpected: {what}").into()
}

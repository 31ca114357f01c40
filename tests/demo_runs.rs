//! Runs the `demo` example (examples/demo.rs) as a user would: the scripted story must reach
//! every milestone and exit 0, the interactive mode must survive garbage and end of input
//! without panicking, and complete with a simulated person typing the codes, and the
//! commands (`enroll`, `login`, `status`, `reset`) must carry the state from one process to
//! the next in an SQLite file.
//!
//! The binary is the one `cargo test` builds into `target/<profile>/examples/`; the example
//! needs the `qr` and `sqlite` features. `cargo test` with a target filter (`--test
//! demo_runs`, `--tests`) does not build examples: run `cargo build --features sqlite
//! --example demo` first, or `cargo test --features sqlite`.

#![cfg(all(feature = "qr", feature = "sqlite"))]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use totp_mfa::testing::Authenticator;
use totp_mfa::{Error, Policy, WrongCodeHint};

// -------------------------------------------------------------------------------------------
// Harness
// -------------------------------------------------------------------------------------------

fn demo_path() -> PathBuf {
    common::example_binary("demo")
}

/// Runs the demo with `args` and `stdin` as its whole input.
fn run(args: &[&str], stdin: &str) -> Output {
    let mut command = Command::new(demo_path());
    command.args(args);
    run_command(command, stdin)
}

/// Runs `command` with `stdin` as its whole input.
fn run_command(mut command: Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the demo");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    // The demo may exit before reading everything: a failed write is not a test failure.
    let _ = pipe.write_all(stdin.as_bytes());
    drop(pipe);
    child.wait_with_output().expect("wait for the demo")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("the demo prints UTF-8")
}

/// `text` with every run of white space made one space: the demo word-wraps messages.
fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn assert_clean_exit(out: &Output) -> (String, String) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        !stderr.contains("panicked"),
        "the demo panicked:\n{stderr}\n--- stdout:\n{stdout}"
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "the demo failed:\n{stderr}\n--- stdout:\n{stdout}"
    );
    (stdout, stderr)
}

fn assert_contains_all(stdout: &str, markers: &[&str]) {
    for marker in markers {
        assert!(
            stdout.contains(marker),
            "the demo's output lacks {marker:?}:\n{stdout}"
        );
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs()
}

/// The simulated phone for a key as the demo prints it (`ABCD EFGH ...`).
fn phone_for(manual_key: &str) -> Authenticator {
    let secret: String = manual_key.split_whitespace().collect();
    Authenticator::from_uri(&format!(
        "otpauth://totp/demo:alice?secret={secret}&issuer=demo"
    ))
    .expect("the printed key makes a valid URI")
}

// -------------------------------------------------------------------------------------------
// Scripted mode
// -------------------------------------------------------------------------------------------

#[test]
fn scripted_demo_reaches_every_milestone() {
    let out = run(&[], "");
    let (stdout, stderr) = assert_clean_exit(&out);
    assert!(stderr.is_empty(), "unexpected stderr: {stderr}");
    assert_contains_all(
        &stdout,
        &[
            "== 1. Sign up",
            "Stored password hash: $argon2id$",
            "== 2. Enable MFA",
            "▀",
            "Can't scan? Enter this key manually: ",
            "store these somewhere safe; each works once",
            "MFA is now active for alice@example.com",
            "Wrong password refused by the host",
            "Logged in as user-1 with factor Totp",
            "Replayed code refused",
            "Wrong code refused",
            "Logged in as user-1 with factor RecoveryCode",
            "Recovery codes left: 9",
            "Used recovery code refused",
            "MFA disabled",
            "Re-enrolled with a new secret",
            "Old phone's code refused",
            "Login with the new phone succeeded",
            "Demo complete",
        ],
    );
    // Ten recovery codes, numbered.
    let codes: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.trim().split_once(". ").map(|(_, c)| c))
        .filter(|c| c.len() == 19 && c.matches('-').count() == 3)
        .collect();
    assert_eq!(codes.len(), 10, "recovery codes in:\n{stdout}");

    // The refusals are shown with the library's own messages.
    let lock_after = Policy::new("x").throttle().lock_after;
    let flat = squash(&stdout);
    for e in [
        Error::CodeAlreadyUsed {
            attempts_left: lock_after - 1,
            retry: None,
        },
        Error::WrongCode {
            attempts_left: lock_after - 2,
            retry: None,
            hint: WrongCodeHint::CheckDeviceClock,
        },
        Error::WrongRecoveryCode {
            attempts_left: lock_after - 1,
            retry: None,
        },
    ] {
        let message = squash(&e.to_string());
        assert!(flat.contains(&message), "no {message:?} in:\n{stdout}");
    }

    // Re-enrollment printed two different keys.
    let key = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{stdout}"))
            .to_owned()
    };
    let (old, new) = (key("old key: "), key("new key: "));
    assert_ne!(old, new);
    assert_eq!(old, key("Can't scan? Enter this key manually: "));
}

#[test]
fn bad_arguments_exit_2_and_help_exits_0() {
    let out = run(&["--bogus"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("usage: demo"));
    let out = run(&["--help"], "");
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("--interactive"));
    assert!(text(&out.stdout).contains("login EMAIL"));
    for (args, message) in [
        (&["login"][..], "login needs the user's e-mail address"),
        (
            &["frobnicate", "a@example.com"],
            "unknown command \"frobnicate\"",
        ),
        (
            &["--interactive", "login", "a@example.com"],
            "--interactive takes no command",
        ),
        (&["--db"], "--db needs a file path"),
        (&["--db", "x.sqlite3"], "--db goes with a command"),
        (&["login", "a@example.com", "extra"], "unexpected arguments"),
    ] {
        let out = run(args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(stderr.contains("usage: demo"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn light_flag_inverts_the_qr_code() {
    // The lines between the step 2 heading and the manual key.
    let qr = |stdout: &str| -> Vec<String> {
        stdout
            .lines()
            .skip_while(|l| !l.starts_with("== 2."))
            .skip(1)
            .take_while(|l| !l.contains("Can't scan?"))
            .map(str::to_owned)
            .collect()
    };
    let (dark, _) = assert_clean_exit(&run(&[], ""));
    let (light, _) = assert_clean_exit(&run(&["--light"], ""));
    let (dark, light) = (qr(&dark), qr(&light));
    // Each run has its own secret, and so its own pattern and maybe size (digit runs in the
    // secret encode more compactly): compare the quiet zone, which is the same, inverted.
    // An odd number of module rows: the last text row holds the zone's top half only.
    for (rows, zone, half) in [(&dark, '█', '▀'), (&light, ' ', ' ')] {
        assert!(rows.len() > 10, "{rows:?}");
        let width = rows[0].chars().count();
        assert!(rows.iter().all(|r| r.chars().count() == width), "{rows:?}");
        assert!(rows[0].chars().all(|c| c == zone), "{rows:?}");
        let (last, body) = rows.split_last().expect("rows");
        assert!(body.iter().all(|r| r.starts_with(zone)), "{rows:?}");
        assert!(last.chars().all(|c| c == half), "{rows:?}");
    }
}

// -------------------------------------------------------------------------------------------
// Interactive mode
// -------------------------------------------------------------------------------------------

#[test]
fn interactive_end_of_input_exits_cleanly() {
    for input in ["", "\n", "garbage\n", "12\n\u{1F600}\n", "q\n"] {
        let out = run(&["--interactive"], input);
        let (stdout, _) = assert_clean_exit(&out);
        assert_contains_all(&stdout, &["Can't scan? Enter this key manually: ", "Bye!"]);
        assert!(!stdout.contains("MFA is now active"), "{stdout}");
    }
    // Malformed codes are explained and asked again, never counted.
    let out = run(&["--interactive"], "hello\n123\n\n");
    let (stdout, _) = assert_clean_exit(&out);
    assert_eq!(
        stdout.matches("Type the code your app shows now:").count(),
        4,
        "{stdout}"
    );
    assert!(stdout.contains("✗ invalid code"), "{stdout}");
    assert!(stdout.contains("Input ended"), "{stdout}");
    // Invalid UTF-8 is just a wrong code.
    let mut child = Command::new(demo_path())
        .arg("--interactive")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the demo");
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"\xff\xfe\x00\n");
    let out = child.wait_with_output().expect("wait");
    assert_clean_exit(&out);
}

#[test]
fn interactive_wrong_codes_restart_the_enrollment() {
    let wrong = "000000\n".repeat(6);
    let out = run(&["--interactive"], &wrong);
    let (stdout, _) = assert_clean_exit(&out);
    // A second key is shown after the confirmation attempts run out (barring a
    // one-in-a-million chance that 000000 is the right code).
    assert_eq!(
        stdout
            .matches("Can't scan? Enter this key manually: ")
            .count(),
        2,
        "{stdout}"
    );
    assert!(stdout.contains("Starting over with a new key"), "{stdout}");
}

/// The interactive demo, driven line by line.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: String,
}

impl Session {
    fn start() -> Session {
        let mut command = Command::new(demo_path());
        command.arg("--interactive");
        Session::spawn(command)
    }

    fn spawn(mut command: Command) -> Session {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the demo");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Session {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: String::new(),
        }
    }

    /// Reads output up to the first line `pick` returns something for.
    fn wait_for<T>(&mut self, what: &str, pick: impl Fn(&str) -> Option<T>) -> T {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                    if let Some(found) = pick(&line) {
                        return found;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!("the demo never printed {what}:\n{}", self.seen);
                }
            }
        }
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .expect("the demo reads its input");
    }

    /// Closes the input and returns all output once the demo exits.
    fn finish(mut self) -> (Option<i32>, String, String) {
        drop(self.stdin.take());
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(60)) {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        let out = self.child.wait_with_output().expect("wait for the demo");
        (out.status.code(), self.seen, text(&out.stderr))
    }
}

/// A well-formed code that none of the steps from `now - 60` to `now + 90` produces.
fn wrong_code(phone: &Authenticator, now: u64) -> String {
    let valid: Vec<String> = (0..6)
        .map(|i| phone.code_at(now - 60 + 30 * i).expect("a code"))
        .collect();
    ["123456", "000000", "111111", "999999"]
        .into_iter()
        .find(|c| !valid.iter().any(|v| v == c))
        .expect("one candidate is wrong")
        .to_owned()
}

#[test]
fn interactive_demo_completes_with_a_simulated_person() {
    let mut session = Session::start();
    let key = session.wait_for("the manual key", |l| {
        l.split_once("Enter this key manually: ")
            .map(|(_, k)| k.to_owned())
    });
    let phone = phone_for(&key);
    session.type_line(&phone.code_at(now()).expect("a code"));
    let recovery_code = session.wait_for("the first recovery code", |l| {
        l.trim().strip_prefix("1. ").map(str::to_owned)
    });

    // Log in: a wrong password, the right one, then a malformed code, a wrong code and the
    // next step's code (the confirmation spent the current one; the window accepts the next).
    session.type_line("not the password");
    session.type_line("correct horse battery staple");
    session.type_line("abc");
    session.type_line(&wrong_code(&phone, now()));
    session.type_line(&phone.code_at(now() + 30).expect("a code"));
    // The lost-phone path: a wrong recovery code, then a right one; then the reset.
    session.type_line("y");
    session.type_line("correct horse battery staple");
    session.type_line("0000-0000-0000-0000");
    session.type_line(&recovery_code);
    session.type_line("y");

    let (status, stdout, stderr) = session.finish();
    assert!(!stderr.contains("panicked"), "{stderr}\n{stdout}");
    assert_eq!(status, Some(0), "{stderr}\n{stdout}");
    assert_contains_all(
        &stdout,
        &[
            "MFA is now active for alice@example.com",
            "Wrong email or password",
            "✗ invalid code",
            "✗ wrong code",
            "Logged in as user-1 with factor Totp",
            "✗ wrong recovery code",
            "Logged in as user-1 with factor RecoveryCode",
            "Recovery codes left: 9",
            "MFA disabled",
            "Demo complete",
        ],
    );
    assert!(!stdout.contains("Input ended"), "{stdout}");
}

// -------------------------------------------------------------------------------------------
// Commands: one process per step, the state in an SQLite file
// -------------------------------------------------------------------------------------------

/// A directory of its own for one test, deleted with what it holds on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "totp-mfa-demo-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        // As the demo prints it.
        TempDir(dir.canonicalize().expect("the directory exists"))
    }

    fn db(&self) -> PathBuf {
        self.0.join("state.sqlite3")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The demo running `args` against the database `db`, whatever the environment says.
fn demo_on(db: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(demo_path());
    command
        .env_remove("TOTP_MFA_DEMO_DB")
        .arg("--db")
        .arg(db)
        .args(args);
    command
}

/// Checks a command's exit status and the database line; returns stdout.
fn expect_exit(out: &Output, code: i32, db: &Path) -> String {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        !stderr.contains("panicked"),
        "the demo panicked:\n{stderr}\n--- stdout:\n{stdout}"
    );
    assert_eq!(
        out.status.code(),
        Some(code),
        "unexpected exit status:\n{stderr}\n--- stdout:\n{stdout}"
    );
    let line = format!("State is kept in {} (SQLite", db.display());
    assert!(stdout.contains(&line), "no {line:?} in:\n{stdout}");
    stdout
}

/// The numbered recovery codes in `stdout`.
fn recovery_codes(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.trim().split_once(". ").map(|(_, c)| c))
        .filter(|c| c.len() == 19 && c.matches('-').count() == 3)
        .map(str::to_owned)
        .collect()
}

/// `enroll` in its own process, answered by a simulated phone that scans the printed URI
/// (after a wrong code first, when `wrong_first`). Returns the phone, the time its
/// confirmation code was computed for, and stdout.
fn enroll(db: &Path, wrong_first: bool) -> (Authenticator, u64, String) {
    let mut session = Session::spawn(demo_on(db, &["enroll", "alice@example.com"]));
    let uri = session.wait_for("the otpauth URI", |l| {
        l.trim()
            .starts_with("otpauth://")
            .then(|| l.trim().to_owned())
    });
    let phone = Authenticator::from_uri(&uri).expect("the printed URI is valid");
    if wrong_first {
        session.type_line(&wrong_code(&phone, now()));
        session.wait_for("the refusal", |l| l.contains("✗ wrong code").then_some(()));
    }
    // The confirmation spends this code's time step.
    let confirmed_at = now();
    session.type_line(&phone.code_at(confirmed_at).expect("a code"));
    let (status, stdout, stderr) = session.finish();
    assert!(!stderr.contains("panicked"), "{stderr}\n{stdout}");
    assert_eq!(status, Some(0), "{stderr}\n{stdout}");
    (phone, confirmed_at, stdout)
}

#[test]
fn commands_keep_the_state_between_processes() {
    let dir = TempDir::new("story");
    let db = dir.db();
    let lock_after = Policy::new("x").throttle().lock_after;

    // 1. enroll: QR code, key, URI; a wrong code is explained and asked again.
    let (phone, confirmed_at, stdout) = enroll(&db, true);
    assert_contains_all(
        &stdout,
        &[
            "totp-mfa demo: enroll alice@example.com",
            &format!("State is kept in {} (SQLite", db.display()),
            "▀",
            "Can't scan? Enter this key manually: ",
            "otpauth://totp/",
            "✗ wrong code",
            "attempts left for this setup",
            "MFA is now active for alice@example.com",
            "store these somewhere safe; each works once",
            // The hint, followed to the letter, opens the same database.
            &format!(
                "Next: `cargo run --features sqlite --example demo -- --db {} login \
                 alice@example.com`",
                db.display()
            ),
        ],
    );
    let key = stdout
        .lines()
        .find_map(|l| l.split_once("Enter this key manually: ").map(|(_, k)| k))
        .expect("the manual key");
    assert_eq!(
        phone_for(key).code_at(confirmed_at).expect("a code"),
        phone.code_at(confirmed_at).expect("a code"),
        "the manual key and the URI differ"
    );
    let codes = recovery_codes(&stdout);
    assert_eq!(codes.len(), 10, "recovery codes in:\n{stdout}");
    assert!(db.is_file());

    // 2. login, in a new process: the next time step's code. The confirmation spent the step
    // of `confirmed_at`; the window takes the step after the current one, so this code is
    // good until a minute after `confirmed_at`, whichever side of a step boundary we are.
    let code = phone.code_at(confirmed_at + 30).expect("a code");
    let out = run_command(
        demo_on(&db, &["login", "alice@example.com"]),
        &format!("{code}\n"),
    );
    let stdout = expect_exit(&out, 0, &db);
    assert_contains_all(
        &stdout,
        &[
            "Logged in as alice@example.com with factor Totp",
            "Recovery codes left: 10",
        ],
    );
    assert!(!stdout.contains("Running low"), "{stdout}");
    // Codes typed into a pipe are not echoed.
    let prompt = stdout
        .lines()
        .find(|l| l.contains("or one of your recovery codes: "))
        .expect("the prompt");
    assert!(prompt.ends_with(": (read from the input)"), "{stdout}");

    // 3. The same code again: refused as used, with the library's message.
    let out = run_command(
        demo_on(&db, &["login", "alice@example.com"]),
        &format!("{code}\n"),
    );
    let stdout = expect_exit(&out, 1, &db);
    let used = Error::CodeAlreadyUsed {
        attempts_left: lock_after - 1,
        retry: None,
    };
    assert!(
        squash(&stdout).contains(&squash(&used.to_string())),
        "no {used} in:\n{stdout}"
    );
    assert!(!stdout.contains("Logged in"), "{stdout}");

    // 4. A recovery code (typed in lower case with spaces) logs in once.
    let typed = codes[0].to_lowercase().replace('-', " ");
    let out = run_command(
        demo_on(&db, &["login", "alice@example.com"]),
        &format!("{typed}\n"),
    );
    let stdout = expect_exit(&out, 0, &db);
    assert_contains_all(
        &stdout,
        &[
            "Logged in as alice@example.com with factor RecoveryCode",
            "Recovery codes left: 9",
        ],
    );
    assert!(
        !stdout.contains(&typed) && !stdout.contains(&codes[0]),
        "{stdout}"
    );

    // 5. A malformed code is asked again (not counted); a wrong one is refused, with the
    // hint about the device clock.
    let wrong = wrong_code(&phone, now());
    let out = run_command(
        demo_on(&db, &["login", "alice@example.com"]),
        &format!("abc\n{wrong}\n"),
    );
    let stdout = expect_exit(&out, 1, &db);
    let refused = Error::WrongCode {
        attempts_left: lock_after - 1,
        retry: None,
        hint: WrongCodeHint::CheckDeviceClock,
    };
    let flat = squash(&stdout);
    assert!(flat.contains("✗ invalid code"), "{stdout}");
    assert!(
        flat.contains(&squash(&refused.to_string())),
        "no {refused} in:\n{stdout}"
    );
    assert!(
        flat.contains(&squash(&WrongCodeHint::CheckDeviceClock.to_string())),
        "{stdout}"
    );

    // Input that ends before a code: not signed in, exit 1.
    let out = run_command(demo_on(&db, &["login", "alice@example.com"]), "");
    let stdout = expect_exit(&out, 1, &db);
    assert!(stdout.contains("Not signed in"), "{stdout}");

    // Enrolling again while MFA is on is refused.
    let out = run_command(demo_on(&db, &["enroll", "alice@example.com"]), "");
    let stdout = expect_exit(&out, 1, &db);
    assert!(stdout.contains("MFA is already enabled"), "{stdout}");
    assert!(!stdout.contains("otpauth://"), "{stdout}");

    // The status, found through the environment variable, and the failure of step 5.
    let mut status = Command::new(demo_path());
    status
        .env("TOTP_MFA_DEMO_DB", &db)
        .args(["status", "Alice@Example.com"]);
    let stdout = expect_exit(&run_command(status, ""), 0, &db);
    assert!(
        stdout.contains(
            "MFA status for alice@example.com: active, 9 recovery codes left, 1 failed attempt"
        ),
        "{stdout}"
    );

    // 6. reset: a recovery code, then MFA is off.
    let out = run_command(
        demo_on(&db, &["reset", "alice@example.com"]),
        &format!("{}\n", codes[1]),
    );
    let stdout = expect_exit(&out, 0, &db);
    assert_contains_all(
        &stdout,
        &[
            "Logged in as alice@example.com with factor RecoveryCode",
            "Recovery codes left: 8",
            "MFA disabled for alice@example.com",
        ],
    );
    let out = run_command(demo_on(&db, &["status", "alice@example.com"]), "");
    let stdout = expect_exit(&out, 0, &db);
    assert!(
        stdout.contains("MFA status for alice@example.com: disabled"),
        "{stdout}"
    );
    let out = run_command(demo_on(&db, &["login", "alice@example.com"]), "");
    let stdout = expect_exit(&out, 1, &db);
    assert!(
        stdout.contains("MFA is not enabled for alice@example.com"),
        "{stdout}"
    );

    // 7. The new phone enrolls with a new key.
    let (new_phone, at, stdout) = enroll(&db, false);
    assert!(
        stdout.contains("MFA is now active for alice@example.com"),
        "{stdout}"
    );
    assert_ne!(
        new_phone.code_at(at).expect("a code"),
        phone.code_at(at).expect("a code"),
        "the same secret again (or a one-in-a-million equal code)"
    );
}

#[test]
fn commands_find_the_database_file() {
    let dir = TempDir::new("paths");
    // The default: a file in the current directory.
    let mut status = Command::new(demo_path());
    status
        .current_dir(&dir.0)
        .env_remove("TOTP_MFA_DEMO_DB")
        .args(["status", "bob@example.com"]);
    let default = dir.0.join("totp-mfa-demo.sqlite3");
    let stdout = expect_exit(&run_command(status, ""), 0, &default);
    assert!(stdout.contains("MFA status for bob@example.com: disabled"));
    assert!(default.is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = default.metadata().expect("the file").permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the database is readable by others: {mode:o}"
        );
    }

    // --db wins over the environment variable.
    let (from_env, from_flag) = (dir.0.join("env.sqlite3"), dir.0.join("flag.sqlite3"));
    let mut status = Command::new(demo_path());
    status
        .current_dir(&dir.0)
        .env("TOTP_MFA_DEMO_DB", &from_env)
        .args(["status", "bob@example.com"]);
    expect_exit(&run_command(status, ""), 0, &from_env);
    let mut status = Command::new(demo_path());
    status
        .current_dir(&dir.0)
        .env("TOTP_MFA_DEMO_DB", &from_env)
        .arg("--db")
        .arg(&from_flag)
        .args(["status", "bob@example.com"]);
    expect_exit(&run_command(status, ""), 0, &from_flag);

    // A file that cannot be opened: a clear failure, not a panic.
    let mut status = Command::new(demo_path());
    status
        .arg("--db")
        .arg(dir.0.join("no-such-dir").join("x.sqlite3"))
        .args(["status", "bob@example.com"]);
    let out = run_command(status, "");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot open the demo's database"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

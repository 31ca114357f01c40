//! End to end in a real browser: headless Chromium driven through chromedriver (WebDriver),
//! against the app started in-process on 127.0.0.1 with a fresh database.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium chromium-driver`);
//! `CHROMIUM` and `CHROMEDRIVER` override their paths. Without them the test is skipped with
//! a loud message, or fails when `CI` is set. Screenshots go to `TOTP_MFA_ARTIFACTS`
//! (default: `browser-artifacts/` in cargo's target directory).

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use totp_mfa::testing::Authenticator;

type Fail = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = Fail> = std::result::Result<T, E>;

const PASSWORD: &str = "correct horse battery staple";

fn find_program(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// A child process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A temporary directory or file, removed on drop.
struct Temp(PathBuf);

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn artifacts_dir() -> PathBuf {
    match std::env::var_os("TOTP_MFA_ARTIFACTS") {
        Some(dir) => PathBuf::from(dir),
        // `CARGO_TARGET_TMPDIR` is `<target dir>/tmp`, wherever `CARGO_TARGET_DIR` puts it.
        None => Path::new(env!("CARGO_TARGET_TMPDIR")).parent().map_or_else(
            || PathBuf::from("browser-artifacts"),
            |t| t.join("browser-artifacts"),
        ),
    }
}

struct Session {
    c: Client,
    base: String,
    shots: PathBuf,
    saved: Vec<PathBuf>,
}

impl Session {
    async fn goto(&self, path: &str) -> Result<()> {
        self.c
            .goto(&format!("{}{}", self.base, path.trim_start_matches('/')))
            .await?;
        Ok(())
    }

    async fn find(&self, css: &str) -> Result<Element> {
        Ok(self.c.find(Locator::Css(css)).await?)
    }

    async fn fill(&self, css: &str, text: &str) -> Result<()> {
        let e = self.find(css).await?;
        e.clear().await?;
        e.send_keys(text).await?;
        Ok(())
    }

    /// Clicks and waits until the page's `<h1>` reads `heading`.
    async fn click_to(&self, css: &str, heading: &str) -> Result<()> {
        self.find(css).await?.click().await?;
        self.wait_heading(heading).await
    }

    async fn wait_heading(&self, heading: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = match self.c.find(Locator::Css("h1")).await {
                Ok(h1) => h1.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.trim() == heading {
                return Ok(());
            }
            if Instant::now() > deadline {
                let url = self.c.current_url().await?;
                let source = self.c.source().await.unwrap_or_default();
                return Err(
                    format!("expected <h1>{heading}</h1> at {url}, page:\n{source}").into(),
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of every alert on the page.
    async fn alerts(&self) -> Result<String> {
        let mut out = String::new();
        for e in self.c.find_all(Locator::Css("[role=alert]")).await? {
            out.push_str(&e.text().await?);
            out.push('\n');
        }
        Ok(out)
    }

    async fn status_text(&self) -> Result<String> {
        let mut out = String::new();
        for e in self.c.find_all(Locator::Css("[role=status]")).await? {
            out.push_str(&e.text().await?);
            out.push('\n');
        }
        Ok(out)
    }

    async fn screenshot(&mut self, name: &str) -> Result<()> {
        let png = self.c.screenshot().await?;
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        println!("screenshot: {}", path.display());
        self.saved.push(path);
        Ok(())
    }

    async fn sign_out(&self) -> Result<()> {
        self.click_to("header form[action='/logout'] button", "Sign in")
            .await
    }

    async fn sign_in(&self, email: &str) -> Result<()> {
        self.goto("/login").await?;
        self.wait_heading("Sign in").await?;
        self.fill("#email", email).await?;
        self.fill("#password", PASSWORD).await?;
        self.click_to(
            "form[action='/login'] button[type=submit]",
            "Two-factor authentication",
        )
        .await
    }

    /// Opens "Enter the key manually" and reads the key, as a person copying it would.
    async fn manual_key(&self) -> Result<String> {
        let key = self.find("#manual-key").await?;
        assert!(
            !key.is_displayed().await?,
            "the key is folded away until asked for"
        );
        self.find("#manual summary").await?.click().await?;
        assert!(key.is_displayed().await?);
        Ok(key.text().await?)
    }

    async fn session_cookie_flags(&self) -> Result<()> {
        let cookie = self.c.get_named_cookie("sid").await?;
        assert_eq!(
            cookie.http_only(),
            Some(true),
            "session cookie must be HttpOnly"
        );
        assert_eq!(
            format!("{:?}", cookie.same_site()),
            "Some(Lax)",
            "session cookie must be SameSite=Lax"
        );
        assert_eq!(cookie.path(), Some("/"));
        Ok(())
    }
}

fn phone_for(key: &str) -> Result<Authenticator> {
    let secret: String = key.split_whitespace().collect();
    Ok(Authenticator::from_uri(&format!(
        "otpauth://totp/Example%20app:user?secret={secret}&issuer=Example%20app"
    ))?)
}

/// A six-digit code that matches no time step within 20 minutes of now.
fn wrong_code(phone: &Authenticator) -> Result<String> {
    let t = now();
    let mut near = Vec::new();
    for i in 0..=80 {
        near.push(phone.code_at(t - 1200 + i * 30)?);
    }
    (0..1_000_000u32)
        .map(|n| format!("{n:06}"))
        .find(|c| !near.contains(c))
        .ok_or_else(|| "no wrong code".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_enroll_log_in_recover_and_reset_in_chromium() {
    let chromium = find_program(
        "CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    let driver = find_program("CHROMEDRIVER", &["chromedriver"]);
    let (Some(chromium), Some(driver)) = (chromium, driver) else {
        let msg = "\n*** BROWSER TEST SKIPPED: chromium and chromedriver not found \
                   (apt-get install chromium chromium-driver) ***\n";
        if std::env::var_os("CI").is_some() {
            panic!("{msg} CI is set, so this is a failure.");
        }
        // Straight to stderr: the test harness would swallow an eprintln! of a passing test.
        let _ = std::io::Write::write_all(&mut std::io::stderr(), msg.as_bytes());
        return;
    };
    if let Err(e) = run(&chromium, &driver).await {
        panic!("browser test failed: {e}");
    }
}

async fn run(chromium: &Path, driver: &Path) -> Result<()> {
    let started = Instant::now();
    let work = Temp(std::env::temp_dir().join(format!(
        "totp-mfa-web-browser-{}-{}",
        std::process::id(),
        SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos()
    )));
    std::fs::create_dir_all(work.0.join("profile"))?;
    let shots = artifacts_dir();
    std::fs::create_dir_all(&shots)?;
    let shots = std::fs::canonicalize(&shots)?;

    // The app, in-process, on a free port.
    let app = totp_mfa_web::spawn(&totp_mfa_web::Config {
        port: 0,
        db_path: work.0.join("app.db"),
        behind_tls: false,
        sealing_key: None,
    })
    .await?;

    // chromedriver on a free port.
    let port = free_port()?;
    let _driver = Killed(
        Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        if Instant::now() > deadline {
            return Err("chromedriver did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let profile = work.0.join("profile");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--window-size=1000,1100", "--hide-scrollbars",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let c = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await?;
    let mut s = Session {
        c,
        base: app.url(),
        shots,
        saved: Vec::new(),
    };
    let result = scenario(&mut s).await;
    if result.is_err() {
        let _ = s.screenshot("failure").await;
    }
    let _ = s.c.clone().close().await;
    app.task.abort();
    result?;
    println!(
        "browser scenario passed in {:.1} s; screenshots: {}",
        started.elapsed().as_secs_f64(),
        s.saved.len()
    );
    Ok(())
}

async fn scenario(s: &mut Session) -> Result<()> {
    let email = "alice@example.com";

    // Sign up.
    s.goto("/").await?;
    s.wait_heading("Sign in").await?;
    s.session_cookie_flags().await?;
    s.screenshot("01-sign-in").await?;
    s.click_to("a[href='/signup']", "Create an account").await?;
    s.fill("#email", email).await?;
    s.fill("#password", PASSWORD).await?;
    s.click_to("form[action='/signup'] button", "Security settings")
        .await?;
    assert!(s.status_text().await?.contains("Your account is ready"));
    s.session_cookie_flags().await?;

    // Enable MFA: QR code and key; a wrong code first.
    s.click_to(
        "form[action='/mfa/enable'] button",
        "Set up two-factor authentication",
    )
    .await?;
    s.find(".qr svg").await?;
    s.screenshot("02-enrollment").await?;
    let key = s.manual_key().await?;
    s.screenshot("03-enrollment-manual-key").await?;
    let phone = phone_for(&key)?;
    s.fill("#code", &wrong_code(&phone)?).await?;
    s.click_to(
        "form[action='/mfa/activate'] button",
        "Set up two-factor authentication",
    )
    .await?;
    let alerts = s.alerts().await?;
    assert!(alerts.contains("Wrong code"), "{alerts}");
    assert!(
        alerts.contains("clock"),
        "the hint points at the clock: {alerts}"
    );
    assert!(
        alerts.contains("4 attempts left for this setup"),
        "{alerts}"
    );
    s.screenshot("04-enrollment-wrong-code").await?;
    assert_eq!(
        s.manual_key().await?,
        key,
        "a wrong code keeps the same enrollment"
    );

    // The right code: recovery codes, shown once.
    s.fill("#code", &phone.code_at(now())?).await?;
    s.click_to(
        "form[action='/mfa/activate'] button",
        "Save your recovery codes",
    )
    .await?;
    let mut codes = Vec::new();
    for e in s.c.find_all(Locator::Css("#recovery-codes code")).await? {
        codes.push(e.text().await?);
    }
    assert_eq!(codes.len(), 10);
    assert!(s.alerts().await?.contains("shown only once"));
    s.find("form[action='/mfa/recovery-codes/download'] button")
        .await?;
    s.screenshot("05-recovery-codes").await?;
    s.click_to("a[href='/settings']", "Security settings")
        .await?;
    assert_eq!(s.find(".badge").await?.text().await?, "On");
    s.screenshot("06-settings-mfa-on").await?;
    s.sign_out().await?;

    // Password, then the app's code. The confirmation spent the current time step, so the
    // phone's next code is used (inside the window of one step ahead).
    s.sign_in(email).await?;
    s.session_cookie_flags().await?;
    s.screenshot("07-challenge").await?;
    // The pending state is not signed in.
    s.goto("/settings").await?;
    s.wait_heading("Two-factor authentication").await?;
    let code = phone.code_at(now() + 30)?;
    s.fill("#code", &code).await?;
    s.click_to("form[action='/login/verify'] button", "Security settings")
        .await?;
    s.sign_out().await?;

    // Again: a wrong code (clock hint), then the same code replayed (refused).
    s.sign_in(email).await?;
    s.fill("#code", &wrong_code(&phone)?).await?;
    s.click_to(
        "form[action='/login/verify'] button",
        "Two-factor authentication",
    )
    .await?;
    let alerts = s.alerts().await?;
    assert!(
        alerts.contains("Wrong code: check that the clock"),
        "{alerts}"
    );
    s.fill("#code", &code).await?;
    s.click_to(
        "form[action='/login/verify'] button",
        "Two-factor authentication",
    )
    .await?;
    let alerts = s.alerts().await?;
    assert!(alerts.contains("This code was already used"), "{alerts}");
    s.screenshot("08-challenge-code-already-used").await?;

    // Lost phone: a recovery code, then reset and enroll the new phone.
    s.click_to("a[href='/login/recovery']", "Use a recovery code")
        .await?;
    s.screenshot("09-recovery-code-sign-in").await?;
    s.fill("#recovery_code", &codes[0].to_lowercase()).await?;
    s.click_to("form[action='/login/recovery'] button", "Security settings")
        .await?;
    let alerts = s.alerts().await?;
    assert!(
        alerts.contains("You signed in with a recovery code"),
        "{alerts}"
    );
    assert!(
        alerts.contains("You have 9 recovery codes left."),
        "{alerts}"
    );
    s.screenshot("10-settings-after-recovery-code").await?;
    s.click_to(
        "form[action='/mfa/reset'] button",
        "Set up two-factor authentication",
    )
    .await?;
    assert!(s.status_text().await?.contains("was reset"));
    let new_key = s.manual_key().await?;
    assert_ne!(new_key, key, "a new device gets a new secret");
    let new_phone = phone_for(&new_key)?;
    s.fill("#code", &new_phone.code_at(now())?).await?;
    s.click_to(
        "form[action='/mfa/activate'] button",
        "Save your recovery codes",
    )
    .await?;
    s.click_to("a[href='/settings']", "Security settings")
        .await?;
    s.sign_out().await?;

    // The new phone signs in; the old recovery codes are gone.
    s.sign_in(email).await?;
    s.click_to("a[href='/login/recovery']", "Use a recovery code")
        .await?;
    s.fill("#recovery_code", &codes[1]).await?;
    s.click_to(
        "form[action='/login/recovery'] button",
        "Use a recovery code",
    )
    .await?;
    assert!(s.alerts().await?.contains("Wrong recovery code"));
    s.click_to("a[href='/login/verify']", "Two-factor authentication")
        .await?;
    s.fill("#code", &new_phone.code_at(now() + 30)?).await?;
    s.click_to("form[action='/login/verify'] button", "Security settings")
        .await?;
    assert_eq!(s.find(".badge").await?.text().await?, "On");
    s.find("form[action='/mfa/recovery-codes']").await?;
    s.find("details.action summary").await?.click().await?;
    assert!(s.find("#regen-code").await?.is_displayed().await?);
    s.screenshot("11-settings-regenerate-codes").await?;
    Ok(())
}

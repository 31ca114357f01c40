//! HTTP-level tests, without a browser: the router is driven in-process with `oneshot`, one
//! request at a time, carrying the session cookie by hand.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use totp_mfa::testing::Authenticator;
use tower::ServiceExt;

/// A temporary database file, removed on drop.
struct TempDb(PathBuf);

impl TempDb {
    fn new(name: &str) -> TempDb {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        TempDb(std::env::temp_dir().join(format!(
            "totp-mfa-web-{name}-{}-{nanos}.db",
            std::process::id()
        )))
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal", ".key"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of the first `<input name="NAME" value="...">`.
    fn input_value(&self, name: &str) -> String {
        let marker = format!(r#"name="{name}" value=""#);
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no input {name} in:\n{}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        unescape(&self.body[start..end])
    }

    /// The text of the element with this id.
    fn text_of_id(&self, id: &str) -> String {
        let marker = format!(r#"id="{id}">"#);
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no #{id} in:\n{}", self.body))
            + marker.len();
        let end = self.body[start..].find('<').unwrap() + start;
        unescape(&self.body[start..end])
    }

    fn csrf(&self) -> String {
        self.input_value("csrf")
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn form_encode(fields: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        for (j, part) in [k, v].iter().enumerate() {
            if j == 1 {
                out.push('=');
            }
            for b in part.bytes() {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    out.push(b as char);
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    out
}

/// A browser stand-in: one cookie jar with the session cookie.
struct Browser {
    app: Router,
    cookie: Option<String>,
}

impl Browser {
    fn new(app: &Router) -> Browser {
        Browser {
            app: app.clone(),
            cookie: None,
        }
    }

    async fn send(&mut self, request: Request<Body>) -> Page {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        for set in headers.get_all(header::SET_COOKIE) {
            let text = set.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            assert_eq!(name, "sid");
            self.cookie = if value.is_empty() || text.contains("Max-Age=0") {
                None
            } else {
                Some(value.to_owned())
            };
        }
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    fn request(&self, method: &str, path: &str) -> axum::http::request::Builder {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(c) = &self.cookie {
            b = b.header(header::COOKIE, format!("sid={c}"));
        }
        b
    }

    async fn get(&mut self, path: &str) -> Page {
        let r = self.request("GET", path).body(Body::empty()).unwrap();
        self.send(r).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let r = self
            .request("POST", path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form_encode(fields)))
            .unwrap();
        self.send(r).await
    }

    /// The password form's POST, without following its redirect.
    async fn post_login(&mut self, csrf: &str, email: &str, password: &str) -> Page {
        self.post(
            "/login",
            &[("csrf", csrf), ("email", email), ("password", password)],
        )
        .await
    }

    /// GET, following redirects.
    async fn visit(&mut self, path: &str) -> Page {
        let mut page = self.get(path).await;
        let mut hops = 0;
        while page.status == StatusCode::SEE_OTHER {
            hops += 1;
            assert!(hops < 5, "redirect loop");
            let to = page.location().to_owned();
            page = self.get(&to).await;
        }
        page
    }

    /// POST, then follow redirects.
    async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let page = self.post(path, fields).await;
        if page.status == StatusCode::SEE_OTHER {
            let to = page.location().to_owned();
            self.visit(&to).await
        } else {
            page
        }
    }
}

fn app(db: &TempDb) -> Router {
    totp_mfa_web::router(&totp_mfa_web::Config {
        port: 0,
        db_path: db.0.clone(),
        behind_tls: false,
        sealing_key: None,
    })
    .unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

const PASSWORD: &str = "correct horse battery staple";

async fn sign_up(b: &mut Browser, email: &str) -> Page {
    let page = b.visit("/signup").await;
    let csrf = page.csrf();
    let page = b
        .submit(
            "/signup",
            &[("csrf", &csrf), ("email", email), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Security settings"), "{}", page.body);
    page
}

/// Enables MFA from the settings page; returns the phone and the recovery codes.
async fn enable_mfa(b: &mut Browser, settings: &Page) -> (Authenticator, Vec<String>) {
    let page = b.submit("/mfa/enable", &[("csrf", &settings.csrf())]).await;
    assert!(page.body.contains("Set up two-factor authentication"));
    let key = page.text_of_id("manual-key").replace(' ', "");
    let phone = Authenticator::from_uri(&format!(
        "otpauth://totp/Example%20app:x?secret={key}&issuer=Example%20app"
    ))
    .unwrap();
    let code = phone.code_at(now()).unwrap();
    let page = b
        .submit("/mfa/activate", &[("csrf", &page.csrf()), ("code", &code)])
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Save your recovery codes"));
    let codes = page.input_value("codes");
    let codes: Vec<String> = codes.split_whitespace().map(str::to_owned).collect();
    assert_eq!(codes.len(), 10);
    (phone, codes)
}

async fn log_in(b: &mut Browser, email: &str) -> Page {
    let page = b.visit("/login").await;
    b.submit(
        "/login",
        &[
            ("csrf", &page.csrf()),
            ("email", email),
            ("password", PASSWORD),
        ],
    )
    .await
}

#[tokio::test]
async fn security_headers_and_cookie_flags() {
    let db = TempDb::new("headers");
    let app = app(&db);
    let mut b = Browser::new(&app);
    let page = b.get("/login").await;
    assert_eq!(page.status, StatusCode::OK);
    let cookie = page.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("sid="));
    assert!(cookie.contains("; HttpOnly"), "{cookie}");
    assert!(cookie.contains("; SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("; Path=/"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP on loopback: {cookie}"
    );
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("script-src"), "{csp}");
    assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(page.headers[header::REFERRER_POLICY], "no-referrer");
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(page.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(!page.body.contains("<script"));
    // The session id is 256 random bits; only its hash is stored.
    let id = b.cookie.clone().unwrap();
    assert_eq!(id.len(), 43);
    let conn = rusqlite::Connection::open(&db.0).unwrap();
    let stored: i64 = conn
        .query_row(
            "SELECT count(*) FROM web_sessions WHERE id_hash = ?1",
            [id.as_bytes()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, 0, "the raw session id must not be stored");

    // Behind TLS: Secure, with the __Host- prefix, and HSTS.
    let db2 = TempDb::new("headers-tls");
    let tls = totp_mfa_web::router(&totp_mfa_web::Config {
        port: 0,
        db_path: db2.0.clone(),
        behind_tls: true,
        sealing_key: None,
    })
    .unwrap();
    let response = tls
        .oneshot(Request::get("/login").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("__Host-sid="), "{cookie}");
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(
        response
            .headers()
            .contains_key(header::STRICT_TRANSPORT_SECURITY)
    );
}

#[tokio::test]
async fn every_post_needs_the_session_csrf_token() {
    let db = TempDb::new("csrf");
    let app = app(&db);
    let mut b = Browser::new(&app);
    let page = b.visit("/signup").await;
    let good = page.csrf();

    // Sign-up without a token, with a wrong one, and without any session: refused.
    for token in ["", "forged-token-forged-token-forged-token-123"] {
        let page = b
            .post(
                "/signup",
                &[
                    ("csrf", token),
                    ("email", "eve@example.com"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(page.body.contains("role=\"alert\""));
    }
    let mut stranger = Browser::new(&app);
    let page = stranger
        .post_login(&good, "eve@example.com", PASSWORD)
        .await;
    assert_eq!(
        page.status,
        StatusCode::FORBIDDEN,
        "another browser's token is no good"
    );

    // Signed in, a forged POST to a settings action is refused and changes nothing.
    let settings = sign_up(&mut b, "alice@example.com").await;
    let page = b
        .post("/mfa/enable", &[("csrf", &good)]) // the pre-login token died with its session
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = b.visit("/settings").await;
    assert!(page.body.contains("badge off"));
    // Logout also needs the token.
    let page = b.post("/logout", &[]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = b.submit("/logout", &[("csrf", &settings.csrf())]).await;
    assert!(page.body.contains("You are signed out."));
}

#[tokio::test]
async fn a_pending_session_grants_nothing_but_the_challenge() {
    let db = TempDb::new("pending");
    let app = app(&db);
    let mut b = Browser::new(&app);
    let settings = sign_up(&mut b, "bob@example.com").await;
    let before = b.cookie.clone();
    let (phone, codes) = enable_mfa(&mut b, &settings).await;
    b.submit("/logout", &[("csrf", &settings.csrf())]).await;

    // The password alone: a pending session, with a new id.
    let page = log_in(&mut b, "bob@example.com").await;
    assert!(
        page.body.contains("Two-factor authentication"),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"autocomplete="one-time-code""#));
    assert!(page.body.contains(r#"inputmode="numeric""#));
    assert!(page.body.contains(r#"pattern="[0-9]*""#));
    assert_ne!(b.cookie, before);
    let pending_csrf = page.csrf();

    // It cannot see or change the settings.
    let page = b.get("/settings").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/login/verify");
    for path in ["/mfa/setup"] {
        let page = b.get(path).await;
        assert_eq!(page.location(), "/login/verify", "{path}");
    }
    for path in [
        "/mfa/enable",
        "/mfa/disable",
        "/mfa/reset",
        "/mfa/recovery-codes",
    ] {
        let page = b
            .post(
                path,
                &[("csrf", &pending_csrf), ("recovery_code", &codes[0])],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.location(), "/login/verify", "{path}");
    }
    let page = b
        .post(
            "/mfa/recovery-codes/download",
            &[("csrf", &pending_csrf), ("codes", &codes[0])],
        )
        .await;
    assert_eq!(page.location(), "/login/verify");

    // A wrong code: the message with the clock hint, and still pending.
    let wrong = wrong_code(&phone);
    let page = b
        .post(
            "/login/verify",
            &[("csrf", &pending_csrf), ("code", &wrong)],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.body.contains("role=\"alert\""));
    assert!(
        page.body.contains("Wrong code: check that the clock"),
        "{}",
        page.body
    );
    assert_eq!(b.get("/settings").await.location(), "/login/verify");

    // The right code: signed in, with yet another new session id.
    let pending_id = b.cookie.clone();
    let code = phone.code_at(now() + 30).unwrap();
    let page = b
        .submit("/login/verify", &[("csrf", &pending_csrf), ("code", &code)])
        .await;
    assert!(page.body.contains("Security settings"), "{}", page.body);
    assert!(page.body.contains("badge on"));
    assert_ne!(b.cookie, pending_id);
}

/// A code that matches no time step near now.
fn wrong_code(phone: &Authenticator) -> String {
    let t = now();
    let near: Vec<String> = (0..=80)
        .map(|i| phone.code_at(t - 1200 + i * 30).unwrap())
        .collect();
    (0..1_000_000u32)
        .map(|n| format!("{n:06}"))
        .find(|c| !near.contains(c))
        .unwrap()
}

#[tokio::test]
async fn recovery_codes_regenerate_disable_and_run_low() {
    let db = TempDb::new("recovery");
    let app = app(&db);
    let mut b = Browser::new(&app);
    let settings = sign_up(&mut b, "carol@example.com").await;
    let (phone, codes) = enable_mfa(&mut b, &settings).await;

    // The download: a text attachment, only for text shaped like recovery codes.
    let page = b.visit("/settings").await;
    let csrf = page.csrf();
    let joined = codes.join(" ");
    let download = b
        .post(
            "/mfa/recovery-codes/download",
            &[("csrf", &csrf), ("codes", &joined)],
        )
        .await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(
        download.headers[header::CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    assert!(
        download.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(download.headers[header::CACHE_CONTROL], "no-store");
    for c in &codes {
        assert!(download.body.contains(c.as_str()));
    }
    let page = b
        .post(
            "/mfa/recovery-codes/download",
            &[("csrf", &csrf), ("codes", "<script>alert(1)</script>")],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);

    // Regenerate needs a fresh code; with none, a clear message.
    let page = b.post("/mfa/recovery-codes", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("Enter the 6-digit code"));
    let code = phone.code_at(now() + 30).unwrap();
    let page = b
        .post("/mfa/recovery-codes", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Your new recovery codes"));
    let new_codes: Vec<String> = page
        .input_value("codes")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_ne!(new_codes, codes);
    // The same app code again: already used.
    let page = b
        .post("/mfa/disable", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.body.contains("already used"), "{}", page.body);
    // An old recovery code: refused.
    let page = b
        .post(
            "/mfa/disable",
            &[("csrf", &csrf), ("recovery_code", &codes[0])],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.body.contains("Wrong recovery code"), "{}", page.body);

    // Spend recovery codes at sign-in until they run low.
    b.submit("/logout", &[("csrf", &csrf)]).await;
    for (i, code) in new_codes.iter().take(7).enumerate() {
        let page = log_in(&mut b, "carol@example.com").await;
        let page = b
            .submit(
                "/login/recovery",
                &[("csrf", &page.csrf()), ("recovery_code", code)],
            )
            .await;
        let left = 9 - i;
        assert!(
            page.body
                .contains(&format!("You have {left} recovery code")),
            "{}",
            page.body
        );
        assert_eq!(page.body.contains("running low"), left <= 3, "{left} left");
        if i < 6 {
            b.submit("/logout", &[("csrf", &page.csrf())]).await;
        }
    }

    // Disable with a recovery code.
    let page = b.visit("/settings").await;
    let page = b
        .submit(
            "/mfa/disable",
            &[("csrf", &page.csrf()), ("recovery_code", &new_codes[8])],
        )
        .await;
    assert!(
        page.body.contains("Two-factor authentication is off."),
        "{}",
        page.body
    );
    assert!(page.body.contains("badge off"));
}

#[tokio::test]
async fn repeated_wrong_codes_are_throttled_with_the_wait() {
    let db = TempDb::new("throttle");
    let app = app(&db);
    let mut b = Browser::new(&app);
    let settings = sign_up(&mut b, "erin@example.com").await;
    let (phone, _) = enable_mfa(&mut b, &settings).await;
    b.submit("/logout", &[("csrf", &settings.csrf())]).await;
    let page = log_in(&mut b, "erin@example.com").await;
    let csrf = page.csrf();
    let wrong = wrong_code(&phone);
    for left in [9, 8, 7] {
        let page = b
            .post("/login/verify", &[("csrf", &csrf), ("code", &wrong)])
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(
            page.body.contains(&format!(
                "{left} attempts left before two-factor sign-in locks."
            )),
            "{}",
            page.body
        );
    }
    // The fourth failure starts a delay, and says so.
    let page = b
        .post("/login/verify", &[("csrf", &csrf), ("code", &wrong)])
        .await;
    assert!(
        page.body.contains("you can try again in 30 seconds"),
        "{}",
        page.body
    );
    // Inside the delay, even the right code is not checked.
    let code = phone.code_at(now() + 30).unwrap();
    let page = b
        .post("/login/verify", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        page.body
            .contains("Too many wrong codes: wait and try again in"),
        "{}",
        page.body
    );
    assert!(page.body.contains("role=\"alert\""));
    // The time reads as on the rest of the site, not as RFC 3339.
    assert!(page.body.contains(" UTC)"), "{}", page.body);
    assert!(!page.body.contains("Z)"), "{}", page.body);
    // The recovery form says the same.
    let page = b.get("/login/recovery").await;
    assert_eq!(page.status, StatusCode::OK);
}

#[tokio::test]
async fn an_expired_challenge_sends_back_to_the_password() {
    let db = TempDb::new("expired");
    let app = app(&db);
    let mut b = Browser::new(&app);
    let settings = sign_up(&mut b, "dave@example.com").await;
    let (phone, _) = enable_mfa(&mut b, &settings).await;
    b.submit("/logout", &[("csrf", &settings.csrf())]).await;
    let page = log_in(&mut b, "dave@example.com").await;
    let csrf = page.csrf();
    // Age the pending session past its challenge's lifetime.
    let conn = rusqlite::Connection::open(&db.0).unwrap();
    conn.execute(
        "UPDATE web_sessions SET expires_at = 1 WHERE kind = 'pending'",
        [],
    )
    .unwrap();
    let code = phone.code_at(now() + 30).unwrap();
    let page = b
        .submit("/login/verify", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert!(page.body.contains("<h1>Sign in</h1>"), "{}", page.body);
    assert!(
        page.body
            .contains("This sign-in attempt expired: sign in again."),
        "{}",
        page.body
    );
    let pending: i64 = conn
        .query_row(
            "SELECT count(*) FROM web_sessions WHERE kind = 'pending'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(pending, 0);
}

#[tokio::test]
async fn bad_input_gets_pages_not_panics() {
    let db = TempDb::new("input");
    let app = app(&db);
    let mut b = Browser::new(&app);
    let page = b.visit("/signup").await;
    let csrf = page.csrf();
    let page = b
        .post(
            "/signup",
            &[("csrf", &csrf), ("email", "nope"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("valid email"));
    let page = b
        .post(
            "/signup",
            &[
                ("csrf", &csrf),
                ("email", "x@example.com"),
                ("password", "short"),
            ],
        )
        .await;
    assert!(page.body.contains("at least 8 characters"));
    // A body that is not a form, a missing content type, an unknown page.
    let r = b
        .request("POST", "/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let page = b.send(r).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("<h1>"));
    let page = b.get("/nowhere").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    // A garbage cookie is ignored.
    b.cookie = Some("../../etc/passwd".to_owned());
    let page = b.get("/settings").await;
    assert_eq!(page.location(), "/login");
    // Wrong password and unknown email read the same.
    let page = b.visit("/login").await;
    let csrf = page.csrf();
    let page = b.post_login(&csrf, "nobody@example.com", PASSWORD).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.body.contains("The email or password is not right."));
    assert!(page.body.contains(r#"value="nobody@example.com""#));
}

// ------------------------------------------------------------------ security regressions

/// The sessions of an account, counted in the database (not through a request, which could
/// sign a stale session out on the way).
fn sessions_of(db: &TempDb, email: &str) -> i64 {
    let conn = rusqlite::Connection::open(&db.0).unwrap();
    conn.query_row(
        "SELECT count(*) FROM web_sessions s JOIN web_users u ON u.id = s.user_id
          WHERE u.email = ?1",
        [email],
        |r| r.get(0),
    )
    .unwrap()
}

fn phone_from_key(key: &str) -> Authenticator {
    Authenticator::from_uri(&format!(
        "otpauth://totp/Example%20app:x?secret={}&issuer=Example%20app",
        key.replace(' ', "")
    ))
    .unwrap()
}

/// A signed-up account with MFA on, signed out; returns the phone and the recovery codes.
async fn account_with_mfa(app: &Router, email: &str) -> (Authenticator, Vec<String>) {
    let mut b = Browser::new(app);
    let settings = sign_up(&mut b, email).await;
    let (phone, codes) = enable_mfa(&mut b, &settings).await;
    let page = b.visit("/settings").await;
    b.submit("/logout", &[("csrf", &page.csrf())]).await;
    (phone, codes)
}

/// Signs in with the password and a recovery code; returns the settings page.
async fn log_in_with_recovery_code(b: &mut Browser, email: &str, code: &str) -> Page {
    let page = log_in(b, email).await;
    let page = b
        .submit(
            "/login/recovery",
            &[("csrf", &page.csrf()), ("recovery_code", code)],
        )
        .await;
    assert!(page.body.contains("Security settings"), "{}", page.body);
    page
}

/// Another session of the account (say, someone who has only the password) can
/// neither read the key of a setup it did not begin nor confirm it (and so receive the
/// recovery codes).
#[tokio::test]
async fn a_setup_is_shown_and_confirmed_only_in_the_session_that_began_it() {
    let db = TempDb::new("setup-owner");
    let app = app(&db);
    let mut victim = Browser::new(&app);
    let settings = sign_up(&mut victim, "vic@example.com").await;
    let mut eve = Browser::new(&app);
    assert!(
        log_in(&mut eve, "vic@example.com")
            .await
            .body
            .contains("Security settings")
    );

    let setup = victim
        .submit("/mfa/enable", &[("csrf", &settings.csrf())])
        .await;
    let key = setup.text_of_id("manual-key");
    // Starting the setup signed the other session out at once.
    assert_eq!(sessions_of(&db, "vic@example.com"), 1);
    assert_eq!(eve.get("/mfa/setup").await.location(), "/login");

    // Signed in again with the password (MFA is not on yet), the other session is told the
    // setup runs elsewhere, and gets neither the key nor the recovery codes.
    let page = log_in(&mut eve, "vic@example.com").await;
    assert!(
        page.body.contains("being set up in another browser"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(r#"href="/mfa/setup""#));
    let eve_csrf = page.csrf();
    let page = eve.get("/mfa/setup").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        page.body.contains("Setup started elsewhere"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(&key));
    assert!(!page.body.contains("manual-key"));
    let code = phone_from_key(&key).code_at(now()).unwrap();
    let page = eve
        .post("/mfa/activate", &[("csrf", &eve_csrf), ("code", &code)])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(!page.body.contains("Save your recovery codes"));
    assert!(!page.body.contains(r#"name="codes""#));

    // The session that began it finishes it, and the other one is signed out.
    let page = victim
        .submit("/mfa/activate", &[("csrf", &setup.csrf()), ("code", &code)])
        .await;
    assert!(
        page.body.contains("Save your recovery codes"),
        "{}",
        page.body
    );
    assert_eq!(sessions_of(&db, "vic@example.com"), 1);
    assert_eq!(eve.get("/settings").await.location(), "/login");
}

/// Only the session the recovery codes were shown to can download them.
#[tokio::test]
async fn recovery_codes_download_only_in_the_session_they_were_shown_to() {
    let db = TempDb::new("download-owner");
    let app = app(&db);
    let mut owner = Browser::new(&app);
    let settings = sign_up(&mut owner, "dl@example.com").await;
    let (_phone, codes) = enable_mfa(&mut owner, &settings).await;
    let joined = codes.join(" ");
    let csrf = owner.visit("/settings").await.csrf();
    let page = owner
        .post(
            "/mfa/recovery-codes/download",
            &[("csrf", &csrf), ("codes", &joined)],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    // Not other codes, even well-formed ones (a subset of those shown).
    let page = owner
        .post(
            "/mfa/recovery-codes/download",
            &[("csrf", &csrf), ("codes", &codes[1..].join(" "))],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    // Another session of the account, never shown these codes: refused.
    let mut other = Browser::new(&app);
    let page = log_in_with_recovery_code(&mut other, "dl@example.com", &codes[0]).await;
    let rest = codes[1..].join(" ");
    for sent in [&joined, &rest] {
        let p = other
            .post(
                "/mfa/recovery-codes/download",
                &[("csrf", &page.csrf()), ("codes", sent)],
            )
            .await;
        assert_eq!(p.status, StatusCode::BAD_REQUEST);
        assert!(p.body.contains("Nothing to download"), "{}", p.body);
    }
}

/// After a reset, until the new device is confirmed (or forever, if the reset is
/// abandoned), the password alone signs no one in; the session that reset finishes.
#[tokio::test]
async fn after_a_reset_the_password_alone_cannot_sign_in_until_the_new_device_is_confirmed() {
    let db = TempDb::new("reset-window");
    let app = app(&db);
    let (phone, codes) = account_with_mfa(&app, "rv@example.com").await;
    // A session signed in with the app, and one with a recovery code.
    let mut t = Browser::new(&app);
    let page = log_in(&mut t, "rv@example.com").await;
    let page = t
        .submit(
            "/login/verify",
            &[
                ("csrf", &page.csrf()),
                ("code", &phone.code_at(now() + 30).unwrap()),
            ],
        )
        .await;
    assert!(page.body.contains("Security settings"));
    let mut victim = Browser::new(&app);
    let page = log_in_with_recovery_code(&mut victim, "rv@example.com", &codes[0]).await;
    assert_eq!(sessions_of(&db, "rv@example.com"), 2);
    let setup = victim.submit("/mfa/reset", &[("csrf", &page.csrf())]).await;
    let key = setup.text_of_id("manual-key");
    // The reset signed the other session out at once.
    assert_eq!(sessions_of(&db, "rv@example.com"), 1);
    assert_eq!(t.get("/settings").await.location(), "/login");

    // The password alone: refused, with the reason, and no session.
    let mut eve = Browser::new(&app);
    let page = log_in(&mut eve, "rv@example.com").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("was reset"), "{}", page.body);
    assert!(page.body.contains("contact support"), "{}", page.body);
    assert!(!page.body.contains(&key));
    assert_eq!(eve.get("/mfa/setup").await.location(), "/login");
    assert_eq!(sessions_of(&db, "rv@example.com"), 1);

    // The session that reset is told, and finishes.
    let page = victim.visit("/settings").await;
    assert!(
        page.body.contains("Finish setting up your new device"),
        "{}",
        page.body
    );
    let new_phone = phone_from_key(&key);
    let page = victim
        .submit(
            "/mfa/activate",
            &[
                ("csrf", &setup.csrf()),
                ("code", &new_phone.code_at(now()).unwrap()),
            ],
        )
        .await;
    assert!(page.body.contains("Save your recovery codes"));
    let new_codes: Vec<String> = page
        .input_value("codes")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    // Now the password leads to the code page again.
    let page = log_in(&mut eve, "rv@example.com").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Signing in as"), "{}", page.body);

    // An abandoned reset: the account stays closed to the password alone.
    let mut again = Browser::new(&app);
    let page = log_in_with_recovery_code(&mut again, "rv@example.com", &new_codes[0]).await;
    let setup = again.submit("/mfa/reset", &[("csrf", &page.csrf())]).await;
    assert!(setup.body.contains("manual-key"));
    again.submit("/logout", &[("csrf", &setup.csrf())]).await;
    let mut eve = Browser::new(&app);
    let page = log_in(&mut eve, "rv@example.com").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // Even once the abandoned setup has expired.
    let conn = rusqlite::Connection::open(&db.0).unwrap();
    conn.execute("DELETE FROM totp_mfa_records", []).unwrap();
    let page = log_in(&mut eve, "rv@example.com").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

/// Turning MFA on or off signs the other sessions out at once, so a session from
/// before MFA does not come back to life when MFA is turned off again. Disabling (with a
/// fresh code) lets the password alone sign in again.
#[tokio::test]
async fn turning_mfa_on_or_off_signs_out_the_other_sessions_at_once() {
    let db = TempDb::new("other-sessions");
    let app = app(&db);
    let mut victim = Browser::new(&app);
    let settings = sign_up(&mut victim, "aba@example.com").await;
    // A session from before MFA (say, a stolen cookie), left idle.
    let mut eve = Browser::new(&app);
    log_in(&mut eve, "aba@example.com").await;
    assert_eq!(sessions_of(&db, "aba@example.com"), 2);
    let (_phone, codes) = enable_mfa(&mut victim, &settings).await;
    assert_eq!(sessions_of(&db, "aba@example.com"), 1);

    // A session signed in with MFA, left idle while MFA is turned off elsewhere.
    let mut t = Browser::new(&app);
    log_in_with_recovery_code(&mut t, "aba@example.com", &codes[0]).await;
    assert_eq!(sessions_of(&db, "aba@example.com"), 2);
    let page = victim.visit("/settings").await;
    let page = victim
        .submit(
            "/mfa/disable",
            &[("csrf", &page.csrf()), ("recovery_code", &codes[1])],
        )
        .await;
    assert!(page.body.contains("badge off"), "{}", page.body);
    assert_eq!(sessions_of(&db, "aba@example.com"), 1);

    // MFA is off again ("no MFA" as when eve signed in): eve's session stays dead.
    let page = eve.get("/settings").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/login");
    assert_eq!(t.get("/settings").await.location(), "/login");
    // Disabled on purpose: the password alone signs in again.
    let mut again = Browser::new(&app);
    let page = log_in(&mut again, "aba@example.com").await;
    assert!(page.body.contains("Security settings"), "{}", page.body);
}

/// Wrong passwords are throttled per account: five free, then a delay during
/// which even the right password is refused (before any Argon2 work), saying until when; a
/// right password afterwards resets the count.
#[tokio::test]
async fn wrong_passwords_are_throttled_per_account() {
    let db = TempDb::new("password-throttle");
    let app = app(&db);
    let mut owner = Browser::new(&app);
    sign_up(&mut owner, "pw@example.com").await;
    let mut eve = Browser::new(&app);
    let csrf = eve.visit("/login").await.csrf();
    for i in 0..6 {
        let p = eve
            .post_login(&csrf, "pw@example.com", &format!("guess-{i}"))
            .await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED, "guess {i}");
        assert!(p.body.contains("The email or password is not right."));
    }
    // The sixth started a delay: now even the right password is refused, with the time.
    let p = eve.post_login(&csrf, "pw@example.com", PASSWORD).await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS, "{}", p.body);
    assert!(
        p.body.contains("Too many wrong passwords for this account"),
        "{}",
        p.body
    );
    assert!(p.body.contains("paused until 20"), "{}", p.body);
    assert!(p.body.contains("role=\"alert\""));
    let conn = rusqlite::Connection::open(&db.0).unwrap();
    let (failures, until): (i64, i64) = conn
        .query_row(
            "SELECT failed_logins, login_blocked_until FROM web_users WHERE email = ?1",
            ["pw@example.com"],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(failures, 6);
    let wait = until - i64::try_from(now()).unwrap();
    assert!((25..=30).contains(&wait), "{wait}");
    // Another account is not affected.
    let mut other = Browser::new(&app);
    sign_up(&mut other, "other@example.com").await;
    let page = log_in(&mut Browser::new(&app), "other@example.com").await;
    assert!(page.body.contains("Security settings"));

    // The delay over, the right password signs in and the count starts again.
    conn.execute(
        "UPDATE web_users SET login_blocked_until = 1 WHERE email = 'pw@example.com'",
        [],
    )
    .unwrap();
    let p = eve.post_login(&csrf, "pw@example.com", PASSWORD).await;
    assert_eq!(p.location(), "/settings", "{}", p.body);
    let failures: i64 = conn
        .query_row(
            "SELECT failed_logins FROM web_users WHERE email = 'pw@example.com'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(failures, 0);
}

/// Parallel guesses past the free ones: the first is checked and starts the pause, every
/// other is refused before Argon2 runs, and each checked guess is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_passwords_do_not_slip_past_the_pause() {
    let db = TempDb::new("password-throttle-parallel");
    let app = app(&db);
    sign_up(&mut Browser::new(&app), "par@example.com").await;
    let mut eve = Browser::new(&app);
    let csrf = eve.visit("/login").await.csrf();
    for i in 0..5 {
        let p = eve
            .post_login(&csrf, "par@example.com", &format!("guess-{i}"))
            .await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED, "free guess {i}");
    }
    let mut tasks = Vec::new();
    for i in 0..24 {
        let mut b = Browser {
            app: app.clone(),
            cookie: eve.cookie.clone(),
        };
        let csrf = csrf.clone();
        tasks.push(tokio::spawn(async move {
            b.post_login(&csrf, "par@example.com", &format!("burst-{i}"))
                .await
                .status
        }));
    }
    let mut checked = 0;
    let mut paused = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => paused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((checked, paused), (1, 23));
    let conn = rusqlite::Connection::open(&db.0).unwrap();
    let failures: i64 = conn
        .query_row(
            "SELECT failed_logins FROM web_users WHERE email = 'par@example.com'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(failures, 6);
}

/// Every file SQLite may have written for this database, read whole.
fn database_bytes(db: &TempDb) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-journal"] {
        let mut p = db.0.clone().into_os_string();
        p.push(suffix);
        if let Ok(bytes) = std::fs::read(&p) {
            all.extend(bytes);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The TOTP secrets are sealed: the key shown for manual entry is nowhere in the
/// database, in raw, hex or base32 form. The key lives in `<db>.key` (mode 0600) and opens
/// the records again after a restart.
#[tokio::test]
async fn totp_secrets_are_sealed_with_a_key_file_beside_the_database() {
    use std::os::unix::fs::PermissionsExt as _;
    let db = TempDb::new("sealed");
    let app = app(&db);
    let mut b = Browser::new(&app);
    let settings = sign_up(&mut b, "seal@example.com").await;
    let setup = b.submit("/mfa/enable", &[("csrf", &settings.csrf())]).await;
    let key = setup.text_of_id("manual-key").replace(' ', "");
    let raw = data_encoding::BASE32_NOPAD
        .decode(key.as_bytes())
        .expect("the manual key is base32");
    assert!(raw.len() >= 16);
    let forms = [
        raw.clone(),
        data_encoding::HEXLOWER.encode(&raw).into_bytes(),
        data_encoding::HEXUPPER.encode(&raw).into_bytes(),
        key.clone().into_bytes(),
        key.to_lowercase().into_bytes(),
    ];
    let check = |when: &str| {
        let bytes = database_bytes(&db);
        assert!(bytes.len() > 4096, "{when}: no database read");
        for (i, form) in forms.iter().enumerate() {
            assert!(
                !contains(&bytes, form),
                "{when}: the secret is in the database (form {i})"
            );
        }
    };
    check("pending");
    let phone = phone_from_key(&key);
    let page = b
        .submit(
            "/mfa/activate",
            &[
                ("csrf", &setup.csrf()),
                ("code", &phone.code_at(now()).unwrap()),
            ],
        )
        .await;
    assert!(page.body.contains("Save your recovery codes"));
    check("active");

    let key_file = totp_mfa_web::key_path(&db.0);
    let meta = std::fs::metadata(&key_file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&key_file).unwrap();
    assert!(totp_mfa_web::SealKey::from_hex(&text).is_ok());

    // A restart reads the same key: the sealed secret still checks codes.
    drop(app);
    let app = totp_mfa_web::router(&totp_mfa_web::Config {
        port: 0,
        db_path: db.0.clone(),
        behind_tls: false,
        sealing_key: None,
    })
    .unwrap();
    let mut b = Browser::new(&app);
    let page = log_in(&mut b, "seal@example.com").await;
    let page = b
        .submit(
            "/login/verify",
            &[
                ("csrf", &page.csrf()),
                ("code", &phone.code_at(now() + 30).unwrap()),
            ],
        )
        .await;
    assert!(page.body.contains("badge on"), "{}", page.body);
}

/// A malformed key (in the environment or the key file), or a key file gone from
/// beside sealed records, stops the start with a clear error.
#[tokio::test]
async fn a_malformed_or_missing_sealing_key_refuses_to_start() {
    let env = |value: &'static str| {
        move |k: &str| (k == "TOTP_MFA_WEB_SEALING_KEY").then(|| value.to_owned())
    };
    let e = totp_mfa_web::Config::from_args(Vec::new(), env("abc")).unwrap_err();
    assert!(e.contains("TOTP_MFA_WEB_SEALING_KEY is malformed"), "{e}");
    assert!(!e.contains("abc"), "the key text is not echoed: {e}");
    let good = "0123456789abcdef".repeat(4);
    let config = totp_mfa_web::Config::from_args(Vec::new(), |k: &str| {
        (k == "TOTP_MFA_WEB_SEALING_KEY").then(|| good.clone())
    })
    .unwrap()
    .unwrap();
    assert!(config.sealing_key.is_some());
    assert!(!format!("{config:?}").contains(&good));

    // A key from the environment: no key file is written.
    let db = TempDb::new("env-key");
    let _app = totp_mfa_web::router(&totp_mfa_web::Config {
        db_path: db.0.clone(),
        ..config
    })
    .unwrap();
    assert!(!totp_mfa_web::key_path(&db.0).exists());

    // A malformed key file.
    let db = TempDb::new("bad-key-file");
    std::fs::write(totp_mfa_web::key_path(&db.0), "not a key\n").unwrap();
    let e = app_result(&db).unwrap_err().to_string();
    assert!(e.contains("is malformed"), "{e}");

    // Records sealed, then the key file lost: no new key over them.
    let db = TempDb::new("lost-key-file");
    let app = app(&db);
    let mut b = Browser::new(&app);
    let settings = sign_up(&mut b, "lost@example.com").await;
    b.submit("/mfa/enable", &[("csrf", &settings.csrf())]).await;
    drop(app);
    std::fs::remove_file(totp_mfa_web::key_path(&db.0)).unwrap();
    let e = app_result(&db).unwrap_err().to_string();
    assert!(e.contains("is missing"), "{e}");
    assert!(!totp_mfa_web::key_path(&db.0).exists());
}

/// A well-formed key that is not the one the database was first started with (a copied
/// database, a mixed-up key) stops the start, instead of failing every MFA sign-in later.
#[tokio::test]
async fn another_sealing_key_refuses_to_start() {
    let db = TempDb::new("other-key");
    let with_key = |hex: &str| totp_mfa_web::Config {
        port: 0,
        db_path: db.0.clone(),
        behind_tls: false,
        sealing_key: Some(totp_mfa_web::SealKey::from_hex(hex).unwrap()),
    };
    let first = "11".repeat(32);
    let app = totp_mfa_web::router(&with_key(&first)).unwrap();
    let mut b = Browser::new(&app);
    let settings = sign_up(&mut b, "keys@example.com").await;
    b.submit("/mfa/enable", &[("csrf", &settings.csrf())]).await;
    drop(app);
    let e = totp_mfa_web::router(&with_key(&"22".repeat(32)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not the one that sealed"), "{e}");
    assert!(!e.contains(&first) && !e.contains(&"22".repeat(32)), "{e}");
    // The first key still starts it.
    let _app = totp_mfa_web::router(&with_key(&first)).unwrap();
}

/// A client that starts a POST and never finishes its body is answered 408 once the time
/// limit passes, instead of holding its task forever.
#[tokio::test(start_paused = true)]
async fn a_body_that_never_ends_is_cut_off() {
    let db = TempDb::new("slow-body");
    let app = app(&db);
    let mut b = Browser::new(&app);
    let csrf = b.visit("/login").await.csrf();
    let never = futures_util::stream::pending::<Result<Vec<u8>, std::io::Error>>();
    let r = b
        .request("POST", "/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from_stream(never))
        .unwrap();
    let started = tokio::time::Instant::now();
    let p = tokio::time::timeout(std::time::Duration::from_secs(120), b.send(r))
        .await
        .expect("the server still waits for the body after two minutes");
    assert_eq!(p.status, StatusCode::REQUEST_TIMEOUT, "{}", p.body);
    assert!(started.elapsed() >= std::time::Duration::from_secs(30));
    // The session is still usable.
    let p = b.post_login(&csrf, "x@example.com", "x").await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED, "{}", p.body);
}

/// A flood of cookie-less visits cannot grow the sessions table without bound: beyond
/// 10 000 anonymous sessions the oldest are dropped, and the newest visitor's form works.
#[tokio::test]
async fn anonymous_sessions_are_capped() {
    let db = TempDb::new("anon-cap");
    let app = app(&db);
    let mut signed_in = Browser::new(&app);
    sign_up(&mut signed_in, "kept@example.com").await;
    {
        let mut conn = rusqlite::Connection::open(&db.0).unwrap();
        let tx = conn.transaction().unwrap();
        let soon = i64::try_from(now()).unwrap() + 60;
        for i in 0u32..10_050 {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&i.to_be_bytes());
            tx.execute(
                "INSERT INTO web_sessions (id_hash, kind, csrf, expires_at)
                 VALUES (?1, 'anon', 'x', ?2)",
                rusqlite::params![&id[..], soon + i64::from(i % 7)],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let mut visitor = Browser::new(&app);
    let csrf = visitor.visit("/login").await.csrf();
    let conn = rusqlite::Connection::open(&db.0).unwrap();
    let count = |kind: &str| -> i64 {
        conn.query_row(
            "SELECT count(*) FROM web_sessions WHERE kind = ?1",
            [kind],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(count("anon"), 10_000);
    assert_eq!(count("user"), 1, "signed-in sessions are never dropped");
    let p = visitor
        .post_login(&csrf, "kept@example.com", PASSWORD)
        .await;
    assert_eq!(p.location(), "/settings", "{}", p.body);
    assert!(
        signed_in
            .visit("/settings")
            .await
            .body
            .contains("Security settings")
    );
}

fn app_result(db: &TempDb) -> Result<Router, totp_mfa_web::AppError> {
    totp_mfa_web::router(&totp_mfa_web::Config {
        port: 0,
        db_path: db.0.clone(),
        behind_tls: false,
        sealing_key: None,
    })
}

/// HEAD gets 405 (with the security headers) and runs no handler, so it cannot
/// consume the one-time message.
#[tokio::test]
async fn head_requests_get_405_and_run_no_handler() {
    let db = TempDb::new("head");
    let app = app(&db);
    let mut b = Browser::new(&app);
    let page = b.visit("/signup").await;
    let p = b
        .post(
            "/signup",
            &[
                ("csrf", &page.csrf()),
                ("email", "head@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(p.location(), "/settings");
    for path in ["/settings", "/login", "/", "/style.css", "/nowhere"] {
        let r = b.request("HEAD", path).body(Body::empty()).unwrap();
        let p = b.send(r).await;
        assert_eq!(p.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(p.headers[header::ALLOW], "GET, POST", "{path}");
        assert_eq!(p.headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(p.headers[header::CACHE_CONTROL], "no-store");
        assert!(p.headers.contains_key(header::CONTENT_SECURITY_POLICY));
        assert!(!p.headers.contains_key(header::SET_COOKIE));
    }
    let page = b.get("/settings").await;
    assert!(
        page.body.contains("Welcome!"),
        "HEAD /settings ate the message"
    );
}

/// A form body that is not UTF-8 once percent-decoded is refused (400, a page),
/// instead of being decoded lossily so that `%FF%FF...` and `%FE%FE...` are one password.
#[tokio::test]
async fn form_bodies_that_are_not_utf8_are_refused() {
    let db = TempDb::new("utf8");
    let app = app(&db);
    let mut b = Browser::new(&app);
    let csrf = b.visit("/signup").await.csrf();
    let raw_post = |b: &Browser, path: &str, body: String| {
        b.request("POST", path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    let body = format!("csrf={csrf}&email=utf%40example.com&password=%FF%FF%FF%FF%FF%FF%FF%FF");
    let r = raw_post(&b, "/signup", body);
    let p = b.send(r).await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST, "{}", p.body);
    assert!(p.body.contains("not valid text (UTF-8)"), "{}", p.body);
    assert!(p.body.contains("<h1>"));
    let conn = rusqlite::Connection::open(&db.0).unwrap();
    let users: i64 = conn
        .query_row("SELECT count(*) FROM web_users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 0);
    // Raw bytes that are not UTF-8, and a sequence split by a separator: refused too.
    let r = b
        .request("POST", "/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(b"csrf=x&password=\xfe\xfe".to_vec()))
        .unwrap();
    assert_eq!(b.send(r).await.status, StatusCode::BAD_REQUEST);
    let r = raw_post(&b, "/login", format!("csrf={csrf}&email=%C3&password=%A9"));
    assert_eq!(b.send(r).await.status, StatusCode::BAD_REQUEST);
    // Valid UTF-8 beyond ASCII is fine.
    let body = format!("csrf={csrf}&email=utf%40example.com&password=p%C3%A4ssw%C3%B6rd+%E2%9C%93");
    let r = raw_post(&b, "/signup", body);
    assert_eq!(b.send(r).await.location(), "/settings");
}

/// Addresses that could pass for another account's are refused at sign-up: invisible or
/// bidi formatting characters, look-alike letters, another normalization form (the app
/// takes printable ASCII only).
#[tokio::test]
async fn emails_that_could_pass_for_another_are_refused() {
    let db = TempDb::new("lookalike");
    let app = app(&db);
    let mut alice = Browser::new(&app);
    sign_up(&mut alice, "alice@example.com").await;
    for email in [
        "alice\u{200b}@example.com",
        "\u{202e}moc.elpmaxe@ecila",
        "ali\u{00ad}ce@example.com",
        "alice@example.com\u{feff}",
        "al\u{2066}ice@example.com",
        "alic\u{435}@example.com",
        "alice\u{e0020}@example.com",
        "alice\u{3164}@example.com",
        "e\u{301}mile@exemple.fr",
    ] {
        let mut eve = Browser::new(&app);
        let csrf = eve.visit("/signup").await.csrf();
        let p = eve
            .post(
                "/signup",
                &[("csrf", &csrf), ("email", email), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{email:?}");
        assert!(p.body.contains("valid email"), "{email:?}");
    }
}

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
        for suffix in ["", "-wal", "-shm"] {
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
        .post(
            "/login",
            &[
                ("csrf", &good),
                ("email", "eve@example.com"),
                ("password", PASSWORD),
            ],
        )
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
    let page = b
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("email", "nobody@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.body.contains("The email or password is not right."));
    assert!(page.body.contains(r#"value="nobody@example.com""#));
}

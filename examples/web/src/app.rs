//! The routes and handlers. Each handler loads the session, checks the CSRF token on a POST,
//! checks what the session's kind allows, calls `AsyncMfa`, and answers with a page: every
//! failure the user can act on becomes a message with the library's own hint.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Form, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use totp_mfa::{
    AsyncMfa, AuditEvent, Authorization, BlockingStore, Enrollment, Error, EventSink, Factor,
    LoginStart, MfaStatus, Policy, Reauth, RecoveryCode, SealingKey, SealingKeys, SecondFactor,
    SqliteStore, UserId,
};
use zeroize::Zeroizing;

use crate::db::{self, Db, NewSessionRow};
use crate::html::{self, MfaView, Notice, SetupView, Tone, Viewer};
use crate::keys::SealKey;
use crate::session::{self, Account, Kind, Session};

/// Passwords: at least this many characters (NIST SP 800-63B: 8 at the least).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Passwords: at most this many characters (a bound on hashing work).
pub const MAX_PASSWORD_CHARS: usize = 128;
/// The name authenticator apps show above the account.
pub const ISSUER: &str = "Example app";
/// How long the step-up token of a sign-in stays valid (the "Reset MFA" offer), seconds.
const STEP_UP_TTL: u64 = 300;
/// At or below this many unused recovery codes, the user is told to make new ones.
const LOW_RECOVERY_CODES: usize = 3;
/// The largest form body read.
const MAX_FORM_BYTES: usize = 16 * 1024;
/// The id under which the sealing key seals records.
const SEALING_KEY_ID: u32 = 1;

type Mfa = AsyncMfa<BlockingStore<SqliteStore>>;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    mfa: Mfa,
    db: Db,
    secure: bool,
    /// A real Argon2 hash to verify against when the email is unknown, so that a wrong
    /// email takes as long as a wrong password.
    dummy_hash: String,
    /// Step-up tokens of sign-ins made with a recovery code, by session: they let that
    /// session reset MFA for a few minutes without another code. Kept in memory only.
    step_ups: Mutex<HashMap<[u8; 32], StepUp>>,
    /// Bounds the Argon2 runs (19 MiB each) going on at once.
    hashing: HashLimiter,
}

/// At most `n` Argon2 runs at a time (one per core): a flood of sign-in attempts waits in
/// line instead of taking the memory of one hash each.
#[derive(Clone)]
pub(crate) struct HashLimiter {
    permits: Arc<Semaphore>,
}

impl HashLimiter {
    pub(crate) fn new(n: usize) -> Self {
        HashLimiter {
            permits: Arc::new(Semaphore::new(n.max(1))),
        }
    }

    /// One permit per core.
    fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
    }

    /// Waits for a permit.
    pub(crate) async fn permit(&self) -> Result<OwnedSemaphorePermit, AppError> {
        Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|e| AppError::new(format!("hashing permits: {e}")))
    }

    /// Runs `f` on the blocking pool while holding `permit` (taken with [`Self::permit`]).
    /// The permit goes with the work, so a cancelled request still holds it until the hash
    /// is done.
    pub(crate) async fn run<T, F>(&self, permit: OwnedSemaphorePermit, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await
        .map_err(|e| AppError::new(format!("hashing task: {e}")))
    }
}

struct StepUp {
    token: Zeroizing<String>,
    expires_at: i64,
}

/// An internal failure: logged (it never holds a secret), answered with a 500 page.
#[derive(Debug)]
pub struct AppError(String);

impl AppError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        AppError(message.into())
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AppError {}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        // The crate's messages and sources never contain a secret or a submitted code.
        let mut text = format!("mfa: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let _ = write!(text, ": {s}");
            source = s.source();
        }
        AppError(text)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        eprintln!("[totp-mfa-web] internal error: {}", self.0);
        page(
            StatusCode::INTERNAL_SERVER_ERROR,
            html::message(
                "Something went wrong",
                "Something went wrong on our side and nothing was changed. Please try again in a moment.",
                ("/", "Back to the start"),
                &Viewer::Anonymous,
                Tone::Error,
            ),
        )
    }
}

type Res = Result<Response, AppError>;

/// Audit events (they never carry secrets) go to standard error, one line each.
struct StderrAudit;

impl EventSink for StderrAudit {
    fn record(&self, event: &AuditEvent) {
        eprintln!(
            "[audit] user={} at={} {:?}",
            event.user, event.at, event.kind
        );
    }
}

/// The application's router over the SQLite file at `path`.
pub(crate) fn build(
    path: &std::path::Path,
    secure: bool,
    key: &SealKey,
) -> Result<Router, AppError> {
    // The MFA records and the example's own tables share one file; each side has its own
    // connection.
    let store =
        SqliteStore::open(path).map_err(|e| AppError::new(format!("opening the store: {e}")))?;
    let policy = Policy::new(ISSUER)
        .with_step_up_ttl(STEP_UP_TTL)
        .with_low_recovery_codes(LOW_RECOVERY_CODES);
    // Every TOTP secret is sealed (XChaCha20-Poly1305) before it reaches the database.
    let keys = SealingKeys::new(SealingKey::new(SEALING_KEY_ID, key.bytes()));
    let mfa = AsyncMfa::new(BlockingStore::new(store), policy)?
        .with_sealing_keys(keys)
        .with_events(StderrAudit);
    let db = Db::open(path).map_err(|e| AppError::new(format!("opening the database: {e}")))?;
    let same_key = db
        .sealing_key_matches(&key.check_value())
        .map_err(|e| AppError::new(format!("reading the database: {e}")))?;
    if !same_key {
        return Err(AppError::new(format!(
            "this sealing key is not the one that sealed the TOTP secrets in {}: start the \
             server with the key it was first started with (TOTP_MFA_WEB_SEALING_KEY, or the \
             key file beside the database)",
            path.display()
        )));
    }
    let dummy_hash = hash_password_blocking("not a real password")?;
    let state = AppState {
        inner: Arc::new(Inner {
            mfa,
            db,
            secure,
            dummy_hash,
            step_ups: Mutex::new(HashMap::new()),
            hashing: HashLimiter::per_core(),
        }),
    };
    spawn_janitor(&state);
    Ok(Router::new()
        .route("/", get(home))
        .route("/style.css", get(style))
        .route("/signup", get(signup_page).post(signup_submit))
        .route("/login", get(login_page).post(login_submit))
        .route("/login/verify", get(challenge_page).post(challenge_submit))
        .route("/login/recovery", get(recovery_page).post(recovery_submit))
        .route("/logout", post(logout))
        .route("/settings", get(settings_page))
        .route("/mfa/enable", post(mfa_enable))
        .route("/mfa/setup", get(mfa_setup))
        .route("/mfa/activate", post(mfa_activate))
        .route("/mfa/recovery-codes", post(mfa_regenerate))
        .route("/mfa/recovery-codes/download", post(mfa_download))
        .route("/mfa/disable", post(mfa_disable))
        .route("/mfa/reset", post(mfa_reset))
        .fallback(not_found)
        .layer(middleware::from_fn(utf8_forms))
        .layer(middleware::from_fn(time_limit))
        .layer(middleware::from_fn(refuse_head))
        .layer(middleware::from_fn_with_state(secure, security_headers))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .with_state(state))
}

/// Deletes expired sessions and step-up tokens every few minutes, for as long as the app
/// (and a tokio runtime) lives.
fn spawn_janitor(state: &AppState) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak = Arc::downgrade(&state.inner);
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(300));
        loop {
            tick.tick().await;
            let Some(inner) = weak.upgrade() else { break };
            let state = AppState { inner };
            let now = now();
            state.step_ups().retain(|_, s| s.expires_at > now);
            if let Err(e) = state.db().call(move |c| db::purge_expired(c, now)).await {
                eprintln!("[totp-mfa-web] purging sessions: {e}");
            }
        }
    });
}

// ------------------------------------------------------------------------------ plumbing

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn page(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn redirect(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

fn hash_password_blocking(password: &str) -> Result<String, AppError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AppError::new(format!("argon2: {e}")))
}

/// The library's message, as a sentence, with times shown as on the rest of the site.
fn message(e: &Error) -> String {
    let mut text = e.to_string();
    if let Error::Throttled { retry } = e {
        // The library writes the time as RFC 3339 ("2026-12-04T16:38:38Z"); the pages say
        // "2026-12-04 16:39 UTC", rounded up to the minute.
        let shown = retry.to_string();
        if let Some(rfc) = shown
            .split_once("(at ")
            .and_then(|(_, rest)| rest.strip_suffix(')'))
        {
            text = text.replace(rfc, &format_until(to_i64(retry.at)));
        }
    }
    let mut chars = text.chars();
    let mut out = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
        None => String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// Errors the person at the keyboard can act on; everything else is an internal failure.
fn user_facing(e: &Error) -> bool {
    e.is_refused_factor()
        || e.is_bad_input()
        || matches!(
            e,
            Error::Throttled { .. }
                | Error::Locked
                | Error::StepUpInvalid
                | Error::NotEnabled
                | Error::AlreadyEnabled
                | Error::ChallengeExpired
                | Error::ChallengeInvalid
                | Error::NoPendingEnrollment
                | Error::EnrollmentExpired
                | Error::EnrollmentAttemptsExhausted
        )
}

fn status_for(e: &Error) -> StatusCode {
    match e {
        Error::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Locked => StatusCode::LOCKED,
        e if e.is_refused_factor() => StatusCode::UNAUTHORIZED,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// An "until" time for a message: [`format_time`] rounded up to the minute, so the wait
/// is never shown as over before it is.
fn format_until(unix: i64) -> String {
    format_time(unix.saturating_add(59).div_euclid(60) * 60)
}

/// "2026-12-03 19:42 UTC".
pub(crate) fn format_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// What a new session is.
enum NewKind {
    Anonymous,
    Pending {
        account: Account,
        ticket: String,
        expires_at: i64,
    },
    User {
        account: Account,
        mfa_generation: Option<u64>,
    },
}

impl AppState {
    fn mfa(&self) -> &Mfa {
        &self.inner.mfa
    }

    fn db(&self) -> &Db {
        &self.inner.db
    }

    fn step_ups(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], StepUp>> {
        self.inner
            .step_ups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The browser's session, if it has a live one. A pending session is returned even
    /// when expired, so that the challenge page can say so.
    async fn current(&self, headers: &HeaderMap) -> Result<Option<Session>, AppError> {
        let Some(id) = session::cookie_id(headers, self.inner.secure) else {
            return Ok(None);
        };
        let id_hash = session::hash_id(&id);
        let Some(row) = self
            .db()
            .call(move |c| db::load_session(c, &id_hash))
            .await?
        else {
            return Ok(None);
        };
        let Some(sess) = Session::from_row(id_hash, row) else {
            return Ok(None);
        };
        if sess.expires_at <= now() && !matches!(sess.kind, Kind::Pending { .. }) {
            self.end_session(&sess).await?;
            return Ok(None);
        }
        Ok(Some(sess))
    }

    /// A new session with a new random id (so a sign-in never reuses an id: no fixation).
    async fn create_session(
        &self,
        kind: NewKind,
        flash: Option<Notice>,
    ) -> Result<(Session, HeaderValue), AppError> {
        let id = session::random_token()?;
        let csrf = session::random_token()?;
        let id_hash = session::hash_id(&id);
        let now = now();
        let (row_kind, account, ticket, generation, expires_at) = match &kind {
            NewKind::Anonymous => ("anon", None, None, None, now + session::ANON_TTL),
            NewKind::Pending {
                account,
                ticket,
                expires_at,
            } => (
                "pending",
                Some(account.clone()),
                Some(ticket.clone()),
                None,
                *expires_at,
            ),
            NewKind::User {
                account,
                mfa_generation,
            } => (
                "user",
                Some(account.clone()),
                None,
                mfa_generation.map(to_i64),
                now + session::USER_TTL,
            ),
        };
        let row = NewSessionRow {
            id_hash,
            kind: row_kind,
            user_id: account.as_ref().map(|a| a.id),
            csrf: csrf.to_string(),
            ticket,
            mfa_generation: generation,
            expires_at,
            flash: flash.map(|n| (n.tone.as_str().to_owned(), n.text)),
        };
        self.db().call(move |c| db::insert_session(c, &row)).await?;
        let sess = Session {
            id_hash,
            kind: match kind {
                NewKind::Anonymous => Kind::Anonymous,
                NewKind::Pending {
                    account, ticket, ..
                } => Kind::Pending { account, ticket },
                NewKind::User {
                    account,
                    mfa_generation,
                } => Kind::User {
                    account,
                    mfa_generation,
                },
            },
            csrf: csrf.to_string(),
            expires_at,
            setup_owner: false,
            codes_digest: None,
            mfa_required: false,
        };
        Ok((sess, session::set_cookie(&id, self.inner.secure)))
    }

    /// The current session, or a new anonymous one (with its cookie to set).
    async fn ensure_session(
        &self,
        headers: &HeaderMap,
    ) -> Result<(Session, Option<HeaderValue>), AppError> {
        match self.current(headers).await? {
            Some(s) => Ok((s, None)),
            None => {
                let (s, cookie) = self.create_session(NewKind::Anonymous, None).await?;
                Ok((s, Some(cookie)))
            }
        }
    }

    async fn end_session(&self, sess: &Session) -> Result<(), AppError> {
        self.step_ups().remove(&sess.id_hash);
        let id_hash = sess.id_hash;
        self.db()
            .call(move |c| db::delete_session(c, &id_hash))
            .await
    }

    async fn take_flash(&self, sess: &Session) -> Result<Vec<Notice>, AppError> {
        let id_hash = sess.id_hash;
        let flash = self.db().call(move |c| db::take_flash(c, &id_hash)).await?;
        Ok(flash
            .map(|(tone, text)| Notice {
                tone: Tone::parse(&tone),
                text,
            })
            .into_iter()
            .collect())
    }

    async fn set_flash(&self, sess: &Session, notice: Notice) -> Result<(), AppError> {
        let id_hash = sess.id_hash;
        self.db()
            .call(move |c| db::set_flash(c, &id_hash, notice.tone.as_str(), &notice.text))
            .await
    }

    /// Ends nothing, starts an anonymous session carrying `notice`, and sends the browser to
    /// the sign-in page, where the notice is shown.
    async fn to_login_with(&self, notice: Notice) -> Res {
        let (_, cookie) = self
            .create_session(NewKind::Anonymous, Some(notice))
            .await?;
        Ok(with_cookie(redirect("/login"), Some(cookie)))
    }

    /// The session of a POST, after its CSRF token was checked; otherwise the page to send.
    async fn check_post(
        &self,
        headers: &HeaderMap,
        csrf: &str,
    ) -> Result<Result<Session, Response>, AppError> {
        match self.current(headers).await? {
            Some(sess) if sess.csrf_matches(csrf) => Ok(Ok(sess)),
            _ => Ok(Err(page(
                StatusCode::FORBIDDEN,
                html::message(
                    "Please try again",
                    "This form has expired or was not sent from this site, so nothing was done. \
                     Open the page again and resubmit it. (This site needs cookies to be enabled.)",
                    ("/", "Start again"),
                    &Viewer::Anonymous,
                    Tone::Error,
                ),
            ))),
        }
    }

    /// The signed-in session, after checking that the MFA credential it signed in with is
    /// still the user's current one (SEC-38); otherwise where to send the browser.
    async fn require_user(
        &self,
        sess: Option<Session>,
    ) -> Result<Result<SignedIn, Response>, AppError> {
        let Some(sess) = sess else {
            return Ok(Err(redirect("/login")));
        };
        let (account, generation) = match &sess.kind {
            Kind::Anonymous => return Ok(Err(redirect("/login"))),
            // Password checked, second factor not yet: this grants nothing here.
            Kind::Pending { .. } => return Ok(Err(redirect("/login/verify"))),
            Kind::User {
                account,
                mfa_generation,
            } => (account.clone(), *mfa_generation),
        };
        let user = account.mfa_id()?;
        let status = self.mfa().status(&user).await?;
        let current = match &status {
            MfaStatus::Active { generation, .. } => Some(*generation),
            _ => None,
        };
        if current != generation {
            // MFA was turned on, off or reset since this session signed in (elsewhere).
            self.end_session(&sess).await?;
            return Ok(Err(self
                .to_login_with(Notice::info(
                    "Your two-factor authentication settings changed, so you were signed out. \
                     Please sign in again.",
                ))
                .await?));
        }
        if sess.mfa_required && current.is_none() && !sess.setup_owner {
            // A reset not finished, and this is not the session that began it: the password
            // alone grants nothing on this account.
            self.end_session(&sess).await?;
            return Ok(Err(self
                .to_login_with(Notice::error(RESET_UNFINISHED))
                .await?));
        }
        Ok(Ok(SignedIn {
            sess,
            account,
            user,
            status,
        }))
    }

    async fn user_get(&self, headers: &HeaderMap) -> Result<Result<SignedIn, Response>, AppError> {
        let sess = self.current(headers).await?;
        self.require_user(sess).await
    }

    async fn user_post(
        &self,
        headers: &HeaderMap,
        csrf: &str,
    ) -> Result<Result<SignedIn, Response>, AppError> {
        match self.check_post(headers, csrf).await? {
            Ok(sess) => self.require_user(Some(sess)).await,
            Err(resp) => Ok(Err(resp)),
        }
    }

    fn has_step_up(&self, sess: &Session) -> bool {
        self.step_ups()
            .get(&sess.id_hash)
            .is_some_and(|s| s.expires_at > now())
    }

    fn take_step_up(&self, sess: &Session) -> Option<Zeroizing<String>> {
        self.step_ups()
            .remove(&sess.id_hash)
            .filter(|s| s.expires_at > now())
            .map(|s| s.token)
    }

    /// A permit to run one Argon2 hash (waits while every core is hashing).
    async fn hash_permit(&self) -> Result<OwnedSemaphorePermit, AppError> {
        self.inner.hashing.permit().await
    }

    async fn hash_password(&self, password: String) -> Result<String, AppError> {
        let password = Zeroizing::new(password);
        let permit = self.hash_permit().await?;
        self.inner
            .hashing
            .run(permit, move || hash_password_blocking(&password))
            .await?
    }

    /// True only when the account exists and the password matches; an unknown account costs
    /// the same Argon2 work. Runs under `permit` (from [`Self::hash_permit`]).
    async fn verify_password(
        &self,
        permit: OwnedSemaphorePermit,
        stored: Option<String>,
        password: String,
    ) -> Result<bool, AppError> {
        let password = Zeroizing::new(password);
        let dummy = self.inner.dummy_hash.clone();
        self.inner
            .hashing
            .run(permit, move || {
                let known = stored.is_some();
                let hash = stored.unwrap_or(dummy);
                let parsed = PasswordHash::new(&hash)
                    .map_err(|e| AppError::new(format!("stored hash: {e}")))?;
                let ok = Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok();
                Ok(known && ok)
            })
            .await?
    }

    /// This session began the user's MFA setup: only it may see and confirm it. Every other
    /// session of the account is signed out.
    async fn own_setup(&self, s: &SignedIn) -> Result<(), AppError> {
        let (user_id, keep) = (s.account.id, s.sess.id_hash);
        self.db()
            .call(move |c| {
                let tx = c.transaction()?;
                db::set_setup_owner(&tx, &keep, true)?;
                db::end_other_sessions(&tx, user_id, &keep)?;
                tx.commit()
            })
            .await
    }

    /// Remembers the recovery codes shown to this session: the only ones it may download.
    async fn remember_codes(&self, sess: &Session, codes: &[&str]) -> Result<(), AppError> {
        let id_hash = sess.id_hash;
        let digest = session::codes_digest(codes.iter().copied());
        self.db()
            .call(move |c| db::set_codes_digest(c, &id_hash, Some(&digest)))
            .await
    }
}

/// A signed-in request.
struct SignedIn {
    sess: Session,
    account: Account,
    user: UserId,
    status: MfaStatus,
}

macro_rules! or_respond {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(response) => return Ok(response),
        }
    };
}

fn bad_form() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        html::message(
            "Please try again",
            "The form could not be read. Open the page again and resubmit it.",
            ("/", "Start again"),
            &Viewer::Anonymous,
            Tone::Error,
        ),
    )
}

// ---------------------------------------------------------------------------- middleware

/// Security headers on every response.
async fn security_headers(State(secure): State<bool>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    // No scripts at all, styles only from our own style sheet, forms only to ourselves.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    // Pages can show a QR code, a key or recovery codes: no page is ever stored by a cache.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if secure {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// How long one request may take, its body included.
pub(crate) const REQUEST_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A request that takes longer than [`REQUEST_TIME_LIMIT`] (a client sending its body
/// slowly, or never) is answered `408` and its handler dropped, so it cannot hold a task
/// forever. (A client that never finishes its headers is the reverse proxy's to cut off.)
async fn time_limit(request: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIME_LIMIT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            [(header::CONNECTION, "close")],
            "The request took too long.",
        )
            .into_response(),
    }
}

/// HEAD is answered 405 without running the GET handler: a GET here can have effects (it
/// shows and clears the one-time message, resumes a setup), and nothing needs HEAD.
async fn refuse_head(request: Request, next: Next) -> Response {
    if request.method() != Method::HEAD {
        return next.run(request).await;
    }
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "GET, POST")],
    )
        .into_response()
}

/// Every POST body must be UTF-8 once percent-decoded. Axum's form decoding is lossy (bad
/// bytes become U+FFFD), so without this check `%FF%FF` and `%FE%FE` would be the same
/// password.
async fn utf8_forms(request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return bad_form();
    };
    if !form_is_utf8(&bytes) {
        return page(
            StatusCode::BAD_REQUEST,
            html::message(
                "Please try again",
                "The form contained bytes that are not valid text (UTF-8), so nothing was \
                 done. Open the page again and resubmit it.",
                ("/", "Start again"),
                &Viewer::Anonymous,
                Tone::Error,
            ),
        );
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// True when the body, percent-decoded, is UTF-8. The separators `&`, `=` and `+` are ASCII,
/// which never occurs inside a multi-byte UTF-8 sequence: the whole body decodes to UTF-8
/// exactly when every name and value does.
fn form_is_utf8(body: &[u8]) -> bool {
    fn hex(b: u8) -> Option<u8> {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let mut decoded = Zeroizing::new(Vec::with_capacity(body.len()));
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if b == b'%'
            && let (Some(hi), Some(lo)) = (
                body.get(i + 1).copied().and_then(hex),
                body.get(i + 2).copied().and_then(hex),
            )
        {
            decoded.push(hi << 4 | lo);
            i += 3;
        } else {
            decoded.push(b);
            i += 1;
        }
    }
    std::str::from_utf8(&decoded).is_ok()
}

// ------------------------------------------------------------------------------ handlers

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        html::STYLE,
    )
        .into_response()
}

async fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        html::message(
            "Page not found",
            "There is no page at this address.",
            ("/", "Go to the start"),
            &Viewer::Anonymous,
            Tone::Info,
        ),
    )
}

async fn home(State(st): State<AppState>, headers: HeaderMap) -> Res {
    Ok(match st.current(&headers).await? {
        Some(Session {
            kind: Kind::User { .. },
            ..
        }) => redirect("/settings"),
        Some(Session {
            kind: Kind::Pending { .. },
            ..
        }) => redirect("/login/verify"),
        _ => redirect("/login"),
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CredentialsForm {
    csrf: String,
    email: String,
    password: String,
}

fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A plausible address that an otpauth label can carry (no `:`), in printable ASCII only.
/// Unicode would let one account pass for another in the page header and in the
/// authenticator app: look-alike letters (Cyrillic `е` for Latin `e`), one text in two
/// normalization forms, invisible and direction-changing characters. An application that
/// takes internationalized addresses needs Unicode normalization and a confusables check
/// (UTS #39) instead.
fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    (3..=254).contains(&email.len())
        && !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !email.contains(':')
        && email.bytes().all(|b| b.is_ascii_graphic())
}

async fn signup_page(State(st): State<AppState>, headers: HeaderMap) -> Res {
    let (sess, cookie) = st.ensure_session(&headers).await?;
    if let Kind::User { .. } = sess.kind {
        return Ok(redirect("/settings"));
    }
    let notes = st.take_flash(&sess).await?;
    Ok(with_cookie(
        page(StatusCode::OK, html::signup(&sess.csrf, "", &notes)),
        cookie,
    ))
}

async fn signup_submit(
    State(st): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CredentialsForm>, FormRejection>,
) -> Res {
    let Ok(Form(f)) = form else {
        return Ok(bad_form());
    };
    let sess = or_respond!(st.check_post(&headers, &f.csrf).await?);
    let email = normalize_email(&f.email);
    let refuse = |status, text: &str| {
        Ok(page(
            status,
            html::signup(&sess.csrf, &email, &[Notice::error(text)]),
        ))
    };
    if !valid_email(&email) {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter a valid email address, like name@example.com (this site takes addresses \
             in plain ASCII letters, digits and punctuation).",
        );
    }
    let chars = f.password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("Choose a password of at least {MIN_PASSWORD_CHARS} characters."),
        );
    }
    if chars > MAX_PASSWORD_CHARS {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("Choose a password of at most {MAX_PASSWORD_CHARS} characters."),
        );
    }
    let hash = st.hash_password(f.password).await?;
    let stored_email = email.clone();
    let inserted = st
        .db()
        .call(move |c| db::insert_user(c, &stored_email, &hash, now()))
        .await?;
    let Some(id) = inserted else {
        return refuse(
            StatusCode::CONFLICT,
            "An account with this email already exists. Sign in instead.",
        );
    };
    st.end_session(&sess).await?;
    let (_, cookie) = st
        .create_session(
            NewKind::User {
                account: Account { id, email },
                mfa_generation: None,
            },
            Some(Notice::success(
                "Welcome! Your account is ready. Protect it with two-factor authentication: \
                 choose Enable MFA below.",
            )),
        )
        .await?;
    Ok(with_cookie(redirect("/settings"), Some(cookie)))
}

async fn login_page(State(st): State<AppState>, headers: HeaderMap) -> Res {
    let (sess, cookie) = st.ensure_session(&headers).await?;
    if let Kind::User { .. } = sess.kind {
        return Ok(redirect("/settings"));
    }
    let notes = st.take_flash(&sess).await?;
    Ok(with_cookie(
        page(StatusCode::OK, html::login(&sess.csrf, "", &notes)),
        cookie,
    ))
}

async fn login_submit(
    State(st): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CredentialsForm>, FormRejection>,
) -> Res {
    let Ok(Form(f)) = form else {
        return Ok(bad_form());
    };
    let sess = or_respond!(st.check_post(&headers, &f.csrf).await?);
    let email = normalize_email(&f.email);
    if email.is_empty() || f.password.is_empty() || f.password.chars().count() > MAX_PASSWORD_CHARS
    {
        return Ok(page(
            StatusCode::UNPROCESSABLE_ENTITY,
            html::login(
                &sess.csrf,
                &email,
                &[Notice::error("Enter your email and password.")],
            ),
        ));
    }
    let lookup = email.clone();
    let permit = st.hash_permit().await?;
    // The attempt is counted as a failure before Argon2 runs (a right password clears it),
    // so a burst of parallel guesses cannot all read the count before any is charged. (An
    // unknown email is never refused this way; the sign-up form tells that an email is
    // taken anyway.)
    let (found, paused) = st
        .db()
        .call(move |c| {
            let found = db::find_user_by_email(c, &lookup)?;
            let paused = match &found {
                Some(u) => db::charge_login_attempt(c, u.id, now())?,
                None => None,
            };
            Ok((found, paused))
        })
        .await?;
    if let Some(until) = paused {
        drop(permit);
        let until = format_until(until);
        return Ok(page(
            StatusCode::TOO_MANY_REQUESTS,
            html::login(
                &sess.csrf,
                &email,
                &[Notice::error(format!(
                    "Too many wrong passwords for this account: sign-in is paused until \
                     {until}. Try again then."
                ))],
            ),
        ));
    }
    let ok = st
        .verify_password(
            permit,
            found.as_ref().map(|u| u.password_hash.clone()),
            f.password,
        )
        .await?;
    let found = match (found, ok) {
        (Some(found), true) => found,
        // Already counted above.
        _ => {
            return Ok(page(
                StatusCode::UNAUTHORIZED,
                html::login(
                    &sess.csrf,
                    &email,
                    &[Notice::error(
                        "The email or password is not right. Please try again.",
                    )],
                ),
            ));
        }
    };
    let id = found.id;
    st.db()
        .call(move |c| db::clear_login_failures(c, id))
        .await?;
    let mfa_required = found.mfa_required;
    let account = Account {
        id: found.id,
        email: found.email,
    };
    let user = account.mfa_id()?;
    let (kind, to) = match st.mfa().start_login(&user).await? {
        // MFA was reset (lost device) and the new device is not confirmed yet: the password
        // alone must not be enough, or whoever knows it could enroll their own phone.
        LoginStart::NoMfa if mfa_required => {
            eprintln!(
                "[totp-mfa-web] password sign-in refused for user {}: MFA reset not finished",
                account.id
            );
            return Ok(page(
                StatusCode::FORBIDDEN,
                html::login(&sess.csrf, &email, &[Notice::error(RESET_UNFINISHED)]),
            ));
        }
        LoginStart::NoMfa => (
            NewKind::User {
                account,
                mfa_generation: None,
            },
            "/settings",
        ),
        // Only the ticket is kept, server-side, in a session that grants nothing else.
        LoginStart::Challenge(challenge) => {
            if !mfa_required {
                // MFA turned on before this flag existed: record it now.
                let id = account.id;
                st.db()
                    .call(move |c| db::set_mfa_required(c, id, true))
                    .await?;
            }
            (
                NewKind::Pending {
                    account,
                    ticket: challenge.ticket().to_owned(),
                    expires_at: to_i64(challenge.expires_at()),
                },
                "/login/verify",
            )
        }
    };
    // Whatever the browser had before, a new id from here on (no session fixation).
    st.end_session(&sess).await?;
    let (_, cookie) = st.create_session(kind, None).await?;
    Ok(with_cookie(redirect(to), Some(cookie)))
}

/// The pending session of the second step; otherwise where to send the browser.
async fn pending(
    st: &AppState,
    sess: Option<Session>,
) -> Result<Result<(Session, Account, String), Response>, AppError> {
    match sess {
        Some(Session {
            kind: Kind::User { .. },
            ..
        }) => Ok(Err(redirect("/settings"))),
        Some(sess) => match sess.kind.clone() {
            Kind::Pending { account, ticket } => {
                if sess.expires_at <= now() {
                    st.end_session(&sess).await?;
                    return Ok(Err(st
                        .to_login_with(Notice::error(message(&Error::ChallengeExpired)))
                        .await?));
                }
                Ok(Ok((sess, account, ticket)))
            }
            _ => Ok(Err(redirect("/login"))),
        },
        None => Ok(Err(redirect("/login"))),
    }
}

fn challenge_html(which: Factor, sess: &Session, account: &Account, notes: &[Notice]) -> String {
    let expires = format_time(sess.expires_at);
    match which {
        Factor::RecoveryCode => html::recovery_login(&sess.csrf, &account.email, &expires, notes),
        _ => html::challenge(&sess.csrf, &account.email, &expires, notes),
    }
}

async fn challenge_page(State(st): State<AppState>, headers: HeaderMap) -> Res {
    show_challenge(st, headers, Factor::Totp).await
}

async fn recovery_page(State(st): State<AppState>, headers: HeaderMap) -> Res {
    show_challenge(st, headers, Factor::RecoveryCode).await
}

async fn show_challenge(st: AppState, headers: HeaderMap, which: Factor) -> Res {
    let sess = st.current(&headers).await?;
    let (sess, account, _) = or_respond!(pending(&st, sess).await?);
    let notes = st.take_flash(&sess).await?;
    Ok(page(
        StatusCode::OK,
        challenge_html(which, &sess, &account, &notes),
    ))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CodeForm {
    csrf: String,
    code: String,
    recovery_code: String,
}

async fn challenge_submit(
    State(st): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Res {
    complete(st, headers, form, Factor::Totp).await
}

async fn recovery_submit(
    State(st): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Res {
    complete(st, headers, form, Factor::RecoveryCode).await
}

async fn complete(
    st: AppState,
    headers: HeaderMap,
    form: Result<Form<CodeForm>, FormRejection>,
    which: Factor,
) -> Res {
    let Ok(Form(f)) = form else {
        return Ok(bad_form());
    };
    let sess = or_respond!(st.check_post(&headers, &f.csrf).await?);
    let (sess, account, ticket) = or_respond!(pending(&st, Some(sess)).await?);
    let user = account.mfa_id()?;
    let factor = match which {
        Factor::RecoveryCode => SecondFactor::RecoveryCode(&f.recovery_code),
        _ => SecondFactor::Totp(&f.code),
    };
    match st.mfa().complete_login(&user, &ticket, factor).await {
        Ok(auth) => finish_login(&st, &sess, account, &auth).await,
        Err(e @ (Error::ChallengeExpired | Error::ChallengeInvalid)) => {
            // Back to the password: this challenge is over.
            st.end_session(&sess).await?;
            st.to_login_with(Notice::error(message(&e))).await
        }
        Err(e) if user_facing(&e) => Ok(page(
            status_for(&e),
            challenge_html(which, &sess, &account, &[Notice::error(message(&e))]),
        )),
        Err(e) => Err(e.into()),
    }
}

async fn finish_login(
    st: &AppState,
    pending: &Session,
    account: Account,
    auth: &Authorization,
) -> Res {
    st.end_session(pending).await?;
    let left = auth.recovery_codes_left();
    let plural = if left == 1 { "" } else { "s" };
    let notice = match auth.factor() {
        Factor::RecoveryCode => {
            let mut text = format!(
                "You signed in with a recovery code; that code will not work again. \
                 You have {left} recovery code{plural} left."
            );
            if auth.recovery_codes_low() {
                text.push_str(" You are running low: generate new recovery codes below.");
            }
            Some(Notice::warning(text))
        }
        _ if auth.recovery_codes_low() => Some(Notice::warning(format!(
            "You have only {left} recovery code{plural} left: generate new ones below."
        ))),
        _ => None,
    };
    let (sess, cookie) = st
        .create_session(
            NewKind::User {
                account,
                mfa_generation: Some(auth.credential_generation()),
            },
            notice,
        )
        .await?;
    if auth.factor() == Factor::RecoveryCode {
        // A recovery code usually means a lost device: offer the reset for a few minutes.
        st.step_ups().insert(
            sess.id_hash,
            StepUp {
                token: Zeroizing::new(auth.step_up_token().to_owned()),
                expires_at: to_i64(auth.authenticated_at()) + to_i64(STEP_UP_TTL),
            },
        );
    }
    Ok(with_cookie(redirect("/settings"), Some(cookie)))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(st): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Res {
    let Ok(Form(f)) = form else {
        return Ok(bad_form());
    };
    let sess = or_respond!(st.check_post(&headers, &f.csrf).await?);
    let text = match sess.kind {
        Kind::Pending { .. } => "Sign-in cancelled.",
        _ => "You are signed out.",
    };
    st.end_session(&sess).await?;
    st.to_login_with(Notice::success(text)).await
}

async fn render_settings(st: &AppState, s: &SignedIn, notes: &[Notice], status: StatusCode) -> Res {
    let view = match &s.status {
        MfaStatus::Pending { expires_at } => MfaView::Pending {
            expires: format_time(to_i64(*expires_at)),
            here: s.sess.setup_owner,
        },
        MfaStatus::Active {
            recovery_codes_left,
            locked,
            ..
        } => MfaView::On {
            recovery_codes_left: *recovery_codes_left,
            low: *recovery_codes_left <= LOW_RECOVERY_CODES,
            can_reset: st.has_step_up(&s.sess),
            locked: *locked,
        },
        _ => MfaView::Off,
    };
    let mut all = notes.to_vec();
    if s.sess.mfa_required && !matches!(s.status, MfaStatus::Active { .. }) {
        all.push(Notice::warning(
            "Finish setting up your new device before you sign out: until then, this account \
             cannot be signed in with the password alone.",
        ));
    }
    Ok(page(
        status,
        html::settings(&s.sess.csrf, &s.account.email, &view, &all),
    ))
}

async fn settings_page(State(st): State<AppState>, headers: HeaderMap) -> Res {
    let s = or_respond!(st.user_get(&headers).await?);
    let notes = st.take_flash(&s.sess).await?;
    render_settings(&st, &s, &notes, StatusCode::OK).await
}

async fn mfa_enable(
    State(st): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Res {
    let Ok(Form(f)) = form else {
        return Ok(bad_form());
    };
    let s = or_respond!(st.user_post(&headers, &f.csrf).await?);
    match st.mfa().begin_enrollment(&s.user, &s.account.email).await {
        Ok(_) => {
            // Only this session may see the new key and confirm it; the others are signed out.
            st.own_setup(&s).await?;
            // Shown by GET /mfa/setup, which resumes this enrollment (a reload shows the same).
            Ok(redirect("/mfa/setup"))
        }
        Err(e) if user_facing(&e) => {
            render_settings(&st, &s, &[Notice::error(message(&e))], status_for(&e)).await
        }
        Err(e) => Err(e.into()),
    }
}

fn params_text(enrollment: &Enrollment) -> String {
    let p = enrollment.params();
    format!(
        "{} digits, a new code every {} seconds, {}",
        p.digits().get(),
        p.period().seconds(),
        p.algorithm()
    )
}

fn render_setup(
    s: &SignedIn,
    enrollment: &Enrollment,
    notes: &[Notice],
    status: StatusCode,
) -> Res {
    let svg = enrollment
        .qr_svg()
        .map_err(|e| AppError::new(format!("QR code: {e}")))?;
    let view = SetupView {
        svg: &svg,
        manual_key: enrollment.manual_key(),
        issuer: ISSUER,
        account: &s.account.email,
        expires: format_time(to_i64(enrollment.expires_at())),
        works_with_every_app: enrollment.works_with_every_app(),
        params: params_text(enrollment),
    };
    Ok(page(
        status,
        html::setup(&s.sess.csrf, &s.account.email, &view, notes),
    ))
}

/// The answer to a session that did not begin the setup in progress: it never sees the key
/// nor confirms it (it would receive the recovery codes).
fn not_setup_owner(s: &SignedIn) -> Response {
    page(
        StatusCode::FORBIDDEN,
        html::message(
            "Setup started elsewhere",
            "Two-factor authentication is being set up in another browser or tab (the one \
             where Enable MFA was chosen). Only that one can show the key and finish the \
             setup. To start over here with a new key, choose Start again in the security \
             settings.",
            ("/settings", "Back to security settings"),
            &Viewer::SignedIn {
                email: &s.account.email,
                csrf: &s.sess.csrf,
            },
            Tone::Error,
        ),
    )
}

async fn mfa_setup(State(st): State<AppState>, headers: HeaderMap) -> Res {
    let s = or_respond!(st.user_get(&headers).await?);
    if !s.sess.setup_owner {
        return Ok(match s.status {
            MfaStatus::Pending { .. } => not_setup_owner(&s),
            _ => redirect("/settings"),
        });
    }
    match st.mfa().resume_enrollment(&s.user).await {
        Ok(enrollment) => {
            let notes = st.take_flash(&s.sess).await?;
            render_setup(&s, &enrollment, &notes, StatusCode::OK)
        }
        Err(Error::AlreadyEnabled) => Ok(redirect("/settings")),
        Err(e) if user_facing(&e) => {
            st.set_flash(&s.sess, Notice::error(message(&e))).await?;
            Ok(redirect("/settings"))
        }
        Err(e) => Err(e.into()),
    }
}

async fn mfa_activate(
    State(st): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Res {
    let Ok(Form(f)) = form else {
        return Ok(bad_form());
    };
    let s = or_respond!(st.user_post(&headers, &f.csrf).await?);
    if !s.sess.setup_owner {
        if let MfaStatus::Active { .. } = s.status {
            return Ok(redirect("/settings"));
        }
        return Ok(not_setup_owner(&s));
    }
    match st.mfa().confirm_enrollment(&s.user, &f.code).await {
        Ok(codes) => {
            // This session proved the new factor: it carries on with the new generation; every
            // other session of the account is signed out, and from now on the password alone
            // never signs in (until MFA is disabled with a fresh code).
            let generation = match st.mfa().status(&s.user).await? {
                MfaStatus::Active { generation, .. } => Some(generation),
                _ => None,
            };
            let list: Vec<&str> = codes.iter().map(RecoveryCode::as_str).collect();
            let digest = session::codes_digest(list.iter().copied());
            let (user_id, id_hash) = (s.account.id, s.sess.id_hash);
            st.db()
                .call(move |c| {
                    let tx = c.transaction()?;
                    db::set_generation(&tx, &id_hash, generation.map(to_i64))?;
                    db::set_setup_owner(&tx, &id_hash, false)?;
                    db::set_codes_digest(&tx, &id_hash, Some(&digest))?;
                    db::set_mfa_required(&tx, user_id, true)?;
                    db::end_other_sessions(&tx, user_id, &id_hash)?;
                    tx.commit()
                })
                .await?;
            st.step_ups().remove(&s.sess.id_hash);
            Ok(page(
                StatusCode::OK,
                html::recovery_codes(
                    &s.sess.csrf,
                    &s.account.email,
                    &list,
                    "Save your recovery codes",
                    &[Notice::success(
                        "Two-factor authentication is on. From now on, signing in needs your \
                         password and a code from your app.",
                    )],
                ),
            ))
        }
        Err(Error::AlreadyEnabled) => Ok(redirect("/settings")),
        // A wrong code: the same enrollment again (same QR code and key), with the hint.
        Err(e @ (Error::WrongSetupCode { .. } | Error::CodeFormat(_))) => {
            match st.mfa().resume_enrollment(&s.user).await {
                Ok(enrollment) => render_setup(
                    &s,
                    &enrollment,
                    &[Notice::error(message(&e))],
                    status_for(&e),
                ),
                Err(e2) if user_facing(&e2) => {
                    st.set_flash(&s.sess, Notice::error(message(&e2))).await?;
                    Ok(redirect("/settings"))
                }
                Err(e2) => Err(e2.into()),
            }
        }
        Err(e) if user_facing(&e) => {
            st.set_flash(&s.sess, Notice::error(message(&e))).await?;
            Ok(redirect("/settings"))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DownloadForm {
    csrf: String,
    codes: String,
}

/// The recovery codes as a text file. The page that shows them posts them back here (so
/// they never appear in a URL, a log or browser history), and this only accepts the very
/// codes this session was shown (their digest is kept on the session).
async fn mfa_download(
    State(st): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<DownloadForm>, FormRejection>,
) -> Res {
    let Ok(Form(f)) = form else {
        return Ok(bad_form());
    };
    let s = or_respond!(st.user_post(&headers, &f.csrf).await?);
    let mut codes = Vec::new();
    for part in f.codes.split_whitespace() {
        match RecoveryCode::parse(part) {
            Ok(c) => codes.push(c),
            Err(_) => {
                codes.clear();
                break;
            }
        }
    }
    let shown_here = !codes.is_empty()
        && s.sess.codes_digest.as_deref().is_some_and(|d| {
            let digest = session::codes_digest(codes.iter().map(RecoveryCode::as_str));
            bool::from(subtle::ConstantTimeEq::ct_eq(d, &digest[..]))
        });
    if !shown_here {
        return Ok(page(
            StatusCode::BAD_REQUEST,
            html::message(
                "Nothing to download",
                "The download is offered only on the page that shows new recovery codes, in \
                 the browser they were shown in.",
                ("/settings", "Back to security settings"),
                &Viewer::SignedIn {
                    email: &s.account.email,
                    csrf: &s.sess.csrf,
                },
                Tone::Error,
            ),
        ));
    }
    let mut text = Zeroizing::new(String::new());
    let _ = writeln!(
        text,
        "Recovery codes for {ISSUER} ({})\r\nSaved {}\r\n\r\nEach code signs you in once if you lose your authenticator app.\r\nKeep this file somewhere safe, not on the same phone.\r\n",
        s.account.email,
        format_time(now())
    );
    for (i, c) in codes.iter().enumerate() {
        let _ = write!(text, "{:>2}. {}\r\n", i + 1, c.as_str());
    }
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"recovery-codes.txt\"",
            ),
        ],
        text.to_string(),
    )
        .into_response())
}

/// The fresh factor of a sensitive change: a recovery code if one was typed, else the app
/// code.
fn reauth_factor(f: &CodeForm) -> Option<SecondFactor<'_>> {
    if !f.recovery_code.trim().is_empty() {
        Some(SecondFactor::RecoveryCode(&f.recovery_code))
    } else if !f.code.trim().is_empty() {
        Some(SecondFactor::Totp(&f.code))
    } else {
        None
    }
}

const RESET_UNFINISHED: &str = "Two-factor authentication on this account was reset and the new \
     device has not been set up yet, so the password alone cannot sign in. Finish the setup in \
     the browser where you reset it, or contact support.";

const NEED_CODE: &str =
    "Enter the 6-digit code from your authenticator app, or one of your recovery codes.";

async fn mfa_regenerate(
    State(st): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Res {
    let Ok(Form(f)) = form else {
        return Ok(bad_form());
    };
    let s = or_respond!(st.user_post(&headers, &f.csrf).await?);
    let Some(factor) = reauth_factor(&f) else {
        let notes = [Notice::error(NEED_CODE)];
        return render_settings(&st, &s, &notes, StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    match st
        .mfa()
        .regenerate_recovery_codes(&s.user, Reauth::Factor(factor))
        .await
    {
        Ok(codes) => {
            let list: Vec<&str> = codes.iter().map(RecoveryCode::as_str).collect();
            st.remember_codes(&s.sess, &list).await?;
            Ok(page(
                StatusCode::OK,
                html::recovery_codes(
                    &s.sess.csrf,
                    &s.account.email,
                    &list,
                    "Your new recovery codes",
                    &[Notice::success(
                        "New recovery codes are ready. Your old codes no longer work.",
                    )],
                ),
            ))
        }
        Err(e) if user_facing(&e) => {
            let s = refresh(&st, s).await?;
            render_settings(&st, &s, &[Notice::error(message(&e))], status_for(&e)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The signed-in request with its MFA status read again (after a refused attempt).
async fn refresh(st: &AppState, mut s: SignedIn) -> Result<SignedIn, AppError> {
    s.status = st.mfa().status(&s.user).await?;
    Ok(s)
}

async fn mfa_disable(
    State(st): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Res {
    let Ok(Form(f)) = form else {
        return Ok(bad_form());
    };
    let s = or_respond!(st.user_post(&headers, &f.csrf).await?);
    let Some(factor) = reauth_factor(&f) else {
        let notes = [Notice::error(NEED_CODE)];
        return render_settings(&st, &s, &notes, StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    match st.mfa().disable(&s.user, Reauth::Factor(factor)).await {
        Ok(()) => {
            // Turned off on purpose, with a fresh code: the password alone signs in again.
            // Every other session is signed out at once.
            let (user_id, id_hash) = (s.account.id, s.sess.id_hash);
            st.db()
                .call(move |c| {
                    let tx = c.transaction()?;
                    db::set_generation(&tx, &id_hash, None)?;
                    db::set_mfa_required(&tx, user_id, false)?;
                    db::end_other_sessions(&tx, user_id, &id_hash)?;
                    tx.commit()
                })
                .await?;
            st.step_ups().remove(&s.sess.id_hash);
            st.set_flash(
                &s.sess,
                Notice::success(
                    "Two-factor authentication is off. Your authenticator entry and recovery \
                     codes no longer work; you can delete the entry from your app.",
                ),
            )
            .await?;
            Ok(redirect("/settings"))
        }
        Err(e) if user_facing(&e) => {
            let s = refresh(&st, s).await?;
            render_settings(&st, &s, &[Notice::error(message(&e))], status_for(&e)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Lost device: the step-up token of the recovery-code sign-in turns MFA off, and a new
/// enrollment starts at once. The account still requires MFA: until the new device is
/// confirmed, the password alone signs no one in, and only this session can finish.
async fn mfa_reset(
    State(st): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Res {
    let Ok(Form(f)) = form else {
        return Ok(bad_form());
    };
    let s = or_respond!(st.user_post(&headers, &f.csrf).await?);
    let expired = Notice::error(
        "The reset offer has expired (it lasts a few minutes after you sign in with a \
         recovery code). You can still turn MFA off below with one of your recovery codes.",
    );
    let Some(token) = st.take_step_up(&s.sess) else {
        return render_settings(&st, &s, &[expired], StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    match st.mfa().disable(&s.user, Reauth::StepUp(&token)).await {
        Ok(()) => {}
        Err(Error::StepUpInvalid) => {
            let s = refresh(&st, s).await?;
            return render_settings(&st, &s, &[expired], StatusCode::UNPROCESSABLE_ENTITY).await;
        }
        Err(e) if user_facing(&e) => {
            let s = refresh(&st, s).await?;
            return render_settings(&st, &s, &[Notice::error(message(&e))], status_for(&e)).await;
        }
        Err(e) => return Err(e.into()),
    }
    // This session alone carries on (and owns the new setup); the others are signed out.
    let (user_id, id_hash) = (s.account.id, s.sess.id_hash);
    st.db()
        .call(move |c| {
            let tx = c.transaction()?;
            db::set_generation(&tx, &id_hash, None)?;
            db::set_setup_owner(&tx, &id_hash, true)?;
            db::set_mfa_required(&tx, user_id, true)?;
            db::end_other_sessions(&tx, user_id, &id_hash)?;
            tx.commit()
        })
        .await?;
    match st.mfa().begin_enrollment(&s.user, &s.account.email).await {
        Ok(_) => {
            st.set_flash(
                &s.sess,
                Notice::success(
                    "Two-factor authentication was reset: your old authenticator and recovery \
                     codes no longer work. Set up your new device now.",
                ),
            )
            .await?;
            Ok(redirect("/mfa/setup"))
        }
        Err(e) if user_facing(&e) => {
            st.set_flash(&s.sess, Notice::error(message(&e))).await?;
            Ok(redirect("/settings"))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_as_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(1_800_000_120), "2027-01-15 08:02 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn library_messages_become_sentences() {
        assert_eq!(
            message(&Error::ChallengeExpired),
            "This sign-in attempt expired: sign in again."
        );
        assert!(user_facing(&Error::Locked));
        assert_eq!(status_for(&Error::Locked), StatusCode::LOCKED);
        assert!(!user_facing(&Error::Contention));
    }

    #[test]
    fn emails_are_checked() {
        assert!(valid_email("alice@example.com"));
        assert!(!valid_email("alice"));
        assert!(!valid_email("a:b@example.com"));
        assert!(!valid_email("a b@example.com"));
        assert!(!valid_email("@example.com"));
        assert_eq!(normalize_email("  Alice@Example.COM "), "alice@example.com");
        for c in [
            '\u{00AD}', '\u{061C}', '\u{180E}', '\u{200B}', '\u{200F}', '\u{202A}', '\u{202E}',
            '\u{2060}', '\u{2064}', '\u{2066}', '\u{206F}', '\u{FEFF}',
        ] {
            assert!(!valid_email(&format!("ali{c}ce@example.com")), "{c:?}");
            assert!(!valid_email(&format!("alice@example.com{c}")), "{c:?}");
        }
        // Unicode is refused: look-alikes, two normalization forms, invisible marks.
        for email in [
            "émile@exemple.fr",
            "e\u{301}mile@exemple.fr",
            "alic\u{435}@example.com",
            "alice\u{E0020}@example.com",
            "alice\u{3164}@example.com",
            "alice\u{34F}@example.com",
            "alice\u{FE0F}@example.com",
        ] {
            assert!(!valid_email(email), "{email:?}");
        }
    }

    #[test]
    fn form_bodies_must_decode_to_utf8() {
        assert!(form_is_utf8(b"csrf=x&password=caf%C3%A9+ok"));
        assert!(form_is_utf8(b"a=%zz&b=%4"));
        assert!(!form_is_utf8(b"password=%FF%FF"));
        assert!(!form_is_utf8(b"a=%C3&b=%A9"));
        assert!(!form_is_utf8(b"password=\xff"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashing_runs_no_more_than_the_permits_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let limiter = HashLimiter::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (limiter, running, most) = (limiter.clone(), running.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                let permit = limiter.permit().await.unwrap();
                limiter
                    .run(permit, move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(30));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                    .unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert!(HashLimiter::per_core().permits.available_permits() >= 1);
    }

    #[test]
    fn wrong_passwords_start_a_doubling_delay_after_five() {
        assert_eq!(db::login_delay(5), None);
        assert_eq!(db::login_delay(6), Some(30));
        assert_eq!(db::login_delay(7), Some(60));
        assert_eq!(db::login_delay(10), Some(480));
        assert_eq!(db::login_delay(11), Some(900));
        assert_eq!(db::login_delay(1000), Some(900));
    }
}

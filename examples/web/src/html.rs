//! The pages: plain HTML built with `format!`, every interpolated value escaped with [`esc`].
//! No JavaScript anywhere; the only style sheet is [`STYLE`], served at `/style.css`.

use std::fmt::Write as _;

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The kind of a message box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Something failed: announced at once (`role="alert"`).
    Error,
    /// Needs attention, e.g. few recovery codes left (`role="alert"`).
    Warning,
    /// Something worked (`role="status"`).
    Success,
    /// For information (`role="status"`).
    Info,
}

impl Tone {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Tone::Error => "error",
            Tone::Warning => "warning",
            Tone::Success => "success",
            Tone::Info => "info",
        }
    }

    pub(crate) fn parse(s: &str) -> Tone {
        match s {
            "error" => Tone::Error,
            "warning" => Tone::Warning,
            "success" => Tone::Success,
            _ => Tone::Info,
        }
    }
}

/// A message shown at the top of a page or of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Its kind.
    pub tone: Tone,
    /// Plain text (escaped when rendered).
    pub text: String,
}

impl Notice {
    /// An error message.
    pub fn error(text: impl Into<String>) -> Self {
        Notice {
            tone: Tone::Error,
            text: text.into(),
        }
    }

    /// A warning.
    pub fn warning(text: impl Into<String>) -> Self {
        Notice {
            tone: Tone::Warning,
            text: text.into(),
        }
    }

    /// A success message.
    pub fn success(text: impl Into<String>) -> Self {
        Notice {
            tone: Tone::Success,
            text: text.into(),
        }
    }

    /// An informational message.
    pub fn info(text: impl Into<String>) -> Self {
        Notice {
            tone: Tone::Info,
            text: text.into(),
        }
    }
}

fn notices(list: &[Notice]) -> String {
    let mut out = String::new();
    for n in list {
        let role = match n.tone {
            Tone::Error | Tone::Warning => "alert",
            Tone::Success | Tone::Info => "status",
        };
        let _ = write!(
            out,
            r#"<div class="alert {}" role="{role}">{}</div>"#,
            n.tone.as_str(),
            esc(&n.text)
        );
    }
    out
}

/// Who is looking at the page, for the header.
pub enum Viewer<'a> {
    /// Not signed in (or only half-way, at the second step).
    Anonymous,
    /// Signed in: the header shows the email and a sign-out button.
    SignedIn { email: &'a str, csrf: &'a str },
}

/// The page frame around `body`.
pub fn layout(title: &str, viewer: &Viewer<'_>, body: &str) -> String {
    let right = match viewer {
        Viewer::Anonymous => String::new(),
        Viewer::SignedIn { email, csrf } => format!(
            r#"<div class="who"><span class="muted">{}</span>
<form method="post" action="/logout" class="inline">{}<button type="submit" class="link">Sign out</button></form></div>"#,
            esc(email),
            csrf_field(csrf)
        ),
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title} · Example app</title>
<link rel="stylesheet" href="/style.css">
</head>
<body>
<header class="top"><div class="inner"><a class="brand" href="/"><span class="logo" aria-hidden="true">◆</span> Example app</a>{right}</div></header>
<main>
{body}
</main>
<footer>A demonstration of the <code>totp-mfa</code> crate. Works without JavaScript.</footer>
</body>
</html>
"#,
        title = esc(title),
    )
}

/// The hidden anti-CSRF field every POST form carries.
pub fn csrf_field(csrf: &str) -> String {
    format!(r#"<input type="hidden" name="csrf" value="{}">"#, esc(csrf))
}

/// The six-digit code field, with the attributes that let phones and password managers help.
fn code_input(id: &str, name: &str, required: bool, autofocus: bool) -> String {
    format!(
        r#"<input class="code" type="text" id="{id}" name="{name}" autocomplete="one-time-code" inputmode="numeric" pattern="[0-9]*" maxlength="8" spellcheck="false" aria-describedby="{id}-hint"{}{}>"#,
        if required { " required" } else { "" },
        if autofocus { " autofocus" } else { "" },
    )
}

fn recovery_input(id: &str, name: &str, required: bool, autofocus: bool) -> String {
    format!(
        r#"<input class="recovery" type="text" id="{id}" name="{name}" autocomplete="off" autocapitalize="characters" spellcheck="false" maxlength="64" placeholder="XXXX-XXXX-XXXX-XXXX" aria-describedby="{id}-hint"{}{}>"#,
        if required { " required" } else { "" },
        if autofocus { " autofocus" } else { "" },
    )
}

/// Sign-in form.
pub fn login(csrf: &str, email: &str, notes: &[Notice]) -> String {
    let body = format!(
        r#"<section class="card narrow">
<h1>Sign in</h1>
{notes}
<form method="post" action="/login">
{csrf}
<label for="email">Email</label>
<input type="email" id="email" name="email" value="{email}" autocomplete="username" required autofocus>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
<p class="alt">New here? <a href="/signup">Create an account</a></p>
</section>"#,
        notes = notices(notes),
        csrf = csrf_field(csrf),
        email = esc(email),
    );
    layout("Sign in", &Viewer::Anonymous, &body)
}

/// Sign-up form.
pub fn signup(csrf: &str, email: &str, notes: &[Notice]) -> String {
    let body = format!(
        r#"<section class="card narrow">
<h1>Create an account</h1>
{notes}
<form method="post" action="/signup">
{csrf}
<label for="email">Email</label>
<input type="email" id="email" name="email" value="{email}" autocomplete="username" maxlength="254" required autofocus>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="new-password" minlength="{min}" maxlength="{max}" required aria-describedby="password-hint">
<p class="hint" id="password-hint">At least {min} characters. A long passphrase is best.</p>
<button type="submit">Create account</button>
</form>
<p class="alt">Already have an account? <a href="/login">Sign in</a></p>
</section>"#,
        notes = notices(notes),
        csrf = csrf_field(csrf),
        email = esc(email),
        min = crate::app::MIN_PASSWORD_CHARS,
        max = crate::app::MAX_PASSWORD_CHARS,
    );
    layout("Create an account", &Viewer::Anonymous, &body)
}

/// The second step of sign-in: the app code.
pub fn challenge(csrf: &str, email: &str, expires: &str, notes: &[Notice]) -> String {
    let body = format!(
        r#"<section class="card narrow">
<h1>Two-factor authentication</h1>
<p class="lead">Signing in as <strong>{email}</strong>.</p>
{notes}
<form method="post" action="/login/verify">
{csrf}
<label for="code">Authentication code</label>
{input}
<p class="hint" id="code-hint">Open your authenticator app and enter the 6-digit code it shows for this site.</p>
<button type="submit">Verify</button>
</form>
<hr>
<p><strong>Lost your device?</strong> <a href="/login/recovery">Use a recovery code instead</a>.</p>
<p class="muted small">This sign-in attempt is valid until {expires}.</p>
<form method="post" action="/logout">{csrf}<button type="submit" class="link">Cancel and start over</button></form>
</section>"#,
        notes = notices(notes),
        csrf = csrf_field(csrf),
        email = esc(email),
        input = code_input("code", "code", true, true),
        expires = esc(expires),
    );
    layout("Two-factor authentication", &Viewer::Anonymous, &body)
}

/// The second step of sign-in with a recovery code.
pub fn recovery_login(csrf: &str, email: &str, expires: &str, notes: &[Notice]) -> String {
    let body = format!(
        r#"<section class="card narrow">
<h1>Use a recovery code</h1>
<p class="lead">Signing in as <strong>{email}</strong>.</p>
{notes}
<form method="post" action="/login/recovery">
{csrf}
<label for="recovery_code">Recovery code</label>
{input}
<p class="hint" id="recovery_code-hint">One of the codes you saved when you set up two-factor authentication. Each code works once; dashes and spaces are optional.</p>
<button type="submit">Sign in with recovery code</button>
</form>
<hr>
<p><a href="/login/verify">Use your authenticator app instead</a></p>
<p class="muted small">This sign-in attempt is valid until {expires}.</p>
<form method="post" action="/logout">{csrf}<button type="submit" class="link">Cancel and start over</button></form>
</section>"#,
        notes = notices(notes),
        csrf = csrf_field(csrf),
        email = esc(email),
        input = recovery_input("recovery_code", "recovery_code", true, true),
        expires = esc(expires),
    );
    layout("Use a recovery code", &Viewer::Anonymous, &body)
}

/// The MFA part of the settings page.
pub enum MfaView {
    /// MFA is off.
    Off,
    /// A setup was started and not finished.
    Pending {
        expires: String,
        /// This session began the setup (only it may continue it).
        here: bool,
    },
    /// MFA is on.
    On {
        recovery_codes_left: usize,
        low: bool,
        /// The user just signed in with a recovery code: offer the reset.
        can_reset: bool,
        locked: bool,
    },
}

/// A "prove it's you" block: the app code, or (folded away) a recovery code.
fn reauth_fields(prefix: &str) -> String {
    format!(
        r#"<label for="{prefix}-code">Code from your authenticator app</label>
{code}
<p class="hint" id="{prefix}-code-hint">A fresh code is needed for this change.</p>
<details>
<summary>Use a recovery code instead</summary>
<label for="{prefix}-recovery">Recovery code</label>
{recovery}
<p class="hint" id="{prefix}-recovery-hint">Spends one of your recovery codes.</p>
</details>"#,
        code = code_input(&format!("{prefix}-code"), "code", false, false),
        recovery = recovery_input(&format!("{prefix}-recovery"), "recovery_code", false, false),
    )
}

/// Security settings.
pub fn settings(csrf: &str, email: &str, mfa: &MfaView, notes: &[Notice]) -> String {
    let section = match mfa {
        MfaView::Off => format!(
            r#"<div class="row between"><h2>Two-factor authentication</h2><span class="badge off">Off</span></div>
<p>Protect your account with a code from an authenticator app (Google Authenticator, Microsoft Authenticator, 1Password, Authy...) in addition to your password.</p>
<form method="post" action="/mfa/enable">{csrf}<button type="submit">Enable MFA</button></form>"#,
            csrf = csrf_field(csrf)
        ),
        MfaView::Pending {
            expires,
            here: true,
        } => format!(
            r#"<div class="row between"><h2>Two-factor authentication</h2><span class="badge pending">Setup not finished</span></div>
<p>You started setting up two-factor authentication. Finish before {expires}, or start again with a new key.</p>
<div class="row"><a class="button" href="/mfa/setup">Continue setup</a>
<form method="post" action="/mfa/enable" class="inline">{csrf}<button type="submit" class="secondary">Start again</button></form></div>"#,
            csrf = csrf_field(csrf),
            expires = esc(expires)
        ),
        MfaView::Pending {
            expires,
            here: false,
        } => format!(
            r#"<div class="row between"><h2>Two-factor authentication</h2><span class="badge pending">Setup not finished</span></div>
<p>Two-factor authentication is being set up in another browser or tab, until {expires}; only that one can finish it. You can start again here with a new key instead (the other setup is then cancelled and the other browser signed out).</p>
<div class="row"><form method="post" action="/mfa/enable" class="inline">{csrf}<button type="submit" class="secondary">Start again here</button></form></div>"#,
            csrf = csrf_field(csrf),
            expires = esc(expires)
        ),
        MfaView::On {
            recovery_codes_left,
            low,
            can_reset,
            locked,
        } => {
            let mut s = String::new();
            let _ = write!(
                s,
                r#"<div class="row between"><h2>Two-factor authentication</h2><span class="badge on">On</span></div>
<p>Signing in needs your password and a code from your authenticator app.</p>"#
            );
            if *locked {
                s.push_str(r#"<div class="alert warning" role="alert">Two-factor sign-in is locked after too many wrong codes. Contact support to unlock it.</div>"#);
            }
            if *can_reset {
                let _ = write!(
                    s,
                    r#"<div class="panel reset">
<h3>Lost your device?</h3>
<p>You just signed in with a recovery code. You can reset two-factor authentication now and set it up on a new device: your old authenticator and all your recovery codes stop working.</p>
<form method="post" action="/mfa/reset">{csrf}<button type="submit">Reset MFA and set up a new device</button></form>
</div>"#,
                    csrf = csrf_field(csrf)
                );
            }
            let codes_class = if *low { "warning-text" } else { "" };
            let _ = write!(
                s,
                r#"<h3>Recovery codes</h3>
<p class="{codes_class}"><strong>{recovery_codes_left}</strong> unused recovery code{plural} left.{low_text}</p>
<details class="action">
<summary>Generate new recovery codes</summary>
<form method="post" action="/mfa/recovery-codes">
{csrf}
<p>Your current codes stop working as soon as the new ones are shown.</p>
{fields}
<button type="submit">Generate new codes</button>
</form>
</details>
<h3>Turn off</h3>
<details class="action">
<summary>Disable MFA</summary>
<form method="post" action="/mfa/disable">
{csrf}
<p>Your account will be protected by your password only.</p>
{fields2}
<button type="submit" class="danger">Disable MFA</button>
</form>
</details>"#,
                plural = if *recovery_codes_left == 1 { "" } else { "s" },
                low_text = if *low {
                    " You are running low: generate new ones."
                } else {
                    ""
                },
                csrf = csrf_field(csrf),
                fields = reauth_fields("regen"),
                fields2 = reauth_fields("disable"),
            );
            s
        }
    };
    let body = format!(
        r#"<h1>Security settings</h1>
<p class="lead">Signed in as <strong>{email}</strong>.</p>
{notes}
<section class="card" aria-labelledby="mfa-heading" id="mfa">
{section}
</section>"#,
        email = esc(email),
        notes = notices(notes),
    )
    .replacen("<h2>", r#"<h2 id="mfa-heading">"#, 1);
    layout(
        "Security settings",
        &Viewer::SignedIn { email, csrf },
        &body,
    )
}

/// What the setup page shows of a pending enrollment.
pub struct SetupView<'a> {
    pub svg: &'a str,
    pub manual_key: &'a str,
    pub issuer: &'a str,
    pub account: &'a str,
    pub expires: String,
    pub works_with_every_app: bool,
    pub params: String,
}

/// The enrollment page: QR code, manual key, confirmation code.
pub fn setup(csrf: &str, email: &str, view: &SetupView<'_>, notes: &[Notice]) -> String {
    // The crate's SVG is an inline `<svg role="img" aria-label=...>` element, ready to embed.
    let svg = view.svg;
    let params_note = if view.works_with_every_app {
        String::new()
    } else {
        format!(
            r#"<div class="alert warning" role="alert">This site uses {} codes, which some apps (Google Authenticator among them) ignore. If the code is refused, try another app.</div>"#,
            esc(&view.params)
        )
    };
    let body = format!(
        r#"<section class="card">
<h1>Set up two-factor authentication</h1>
{notes}
{params_note}
<ol class="steps">
<li><h2>Scan the QR code</h2>
<p>Open your authenticator app, add an account, and scan this code.</p>
<div class="qr">{svg}</div>
<details id="manual">
<summary>Can't scan it? Enter the key manually</summary>
<dl class="manual">
<dt>Account</dt><dd>{issuer}: {account}</dd>
<dt>Key</dt><dd><code class="key" id="manual-key">{key}</code></dd>
<dt>Type</dt><dd>Time-based, {params}</dd>
</dl>
</details>
</li>
<li><h2>Enter the code</h2>
<form method="post" action="/mfa/activate">
{csrf}
<label for="code">6-digit code from the app</label>
{input}
<p class="hint" id="code-hint">The code changes every 30 seconds; enter the one shown now.</p>
<button type="submit">Activate MFA</button>
</form>
</li>
</ol>
<p class="muted small">This setup expires at {expires}. <a href="/settings">Cancel</a></p>
</section>"#,
        notes = notices(notes),
        key = esc(view.manual_key),
        issuer = esc(view.issuer),
        account = esc(view.account),
        params = esc(&view.params),
        csrf = csrf_field(csrf),
        input = code_input("code", "code", true, true),
        expires = esc(&view.expires),
    );
    layout(
        "Set up two-factor authentication",
        &Viewer::SignedIn { email, csrf },
        &body,
    )
}

/// The recovery codes, shown once.
pub fn recovery_codes(
    csrf: &str,
    email: &str,
    codes: &[&str],
    heading: &str,
    notes: &[Notice],
) -> String {
    let mut list = String::new();
    for c in codes {
        let _ = write!(list, "<li><code>{}</code></li>", esc(c));
    }
    let joined = codes.join(" ");
    let body = format!(
        r#"<section class="card">
<h1>{heading}</h1>
{notes}
<div class="alert warning" role="alert"><strong>Save these codes now: they are shown only once.</strong> If you lose your phone, each code lets you sign in one time. Keep them somewhere safe, such as a password manager or a printed copy, not on the same phone.</div>
<ol class="codes" id="recovery-codes">{list}</ol>
<div class="row">
<form method="post" action="/mfa/recovery-codes/download" class="inline">
{csrf}
<input type="hidden" name="codes" value="{joined}">
<button type="submit" class="secondary">Download as a text file</button>
</form>
<a class="button" href="/settings">I have saved my codes</a>
</div>
</section>"#,
        heading = esc(heading),
        notes = notices(notes),
        csrf = csrf_field(csrf),
        joined = esc(&joined),
    );
    layout(heading, &Viewer::SignedIn { email, csrf }, &body)
}

/// A page with a message and a way on.
pub fn message(
    title: &str,
    text: &str,
    link: (&str, &str),
    viewer: &Viewer<'_>,
    tone: Tone,
) -> String {
    let body = format!(
        r#"<section class="card narrow">
<h1>{title}</h1>
{notes}
<p><a class="button" href="{href}">{label}</a></p>
</section>"#,
        title = esc(title),
        notes = notices(&[Notice {
            tone,
            text: text.to_owned()
        }]),
        href = esc(link.0),
        label = esc(link.1),
    );
    layout(title, viewer, &body)
}

/// The style sheet.
pub const STYLE: &str = r#":root {
  color-scheme: light;
  --fg: #1d2330; --muted: #5b6475; --bg: #eef1f6; --card: #fff; --border: #d5dae3;
  --accent: #2456d6; --accent-dark: #1b43aa; --danger: #b42318;
}
* { box-sizing: border-box; }
html { background: var(--bg); }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; color: var(--fg); }
a { color: var(--accent); }
header.top { background: #fff; border-bottom: 1px solid var(--border); }
header.top .inner { max-width: 44rem; margin: 0 auto; padding: .75rem 1rem; display: flex; align-items: center; justify-content: space-between; gap: 1rem; }
.brand { font-weight: 700; color: var(--fg); text-decoration: none; font-size: 1.05rem; }
.logo { color: var(--accent); }
.who { display: flex; gap: .75rem; align-items: baseline; font-size: .95rem; }
main { max-width: 44rem; margin: 2rem auto 0; padding: 0 1rem; }
.card { background: var(--card); border: 1px solid var(--border); border-radius: 12px; padding: 1.5rem 1.75rem; box-shadow: 0 1px 3px rgba(16, 24, 40, .06); margin-bottom: 1.25rem; }
.card.narrow { max-width: 28rem; margin-left: auto; margin-right: auto; }
h1 { font-size: 1.55rem; line-height: 1.25; margin: 0 0 .75rem; }
h2 { font-size: 1.15rem; margin: 0 0 .5rem; }
h3 { font-size: 1rem; margin: 1.5rem 0 .35rem; }
.lead { color: var(--muted); margin-top: -.25rem; }
label { display: block; font-weight: 600; margin: 1rem 0 .35rem; }
input[type=email], input[type=password], input[type=text] { width: 100%; padding: .6rem .75rem; font: inherit; color: inherit; border: 1px solid #b8c0cc; border-radius: 8px; background: #fff; }
input:focus-visible, button:focus-visible, a:focus-visible, summary:focus-visible { outline: 3px solid rgba(36, 86, 214, .45); outline-offset: 2px; }
input.code { font: 600 1.5rem/1.2 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; letter-spacing: .3em; width: 11ch; padding-left: .9rem; }
input.recovery { font: 600 1.1rem ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; letter-spacing: .05em; max-width: 22rem; }
.hint { color: var(--muted); font-size: .9rem; margin: .35rem 0 0; }
button, a.button { display: inline-block; font: inherit; font-weight: 600; border: 1px solid transparent; border-radius: 8px; padding: .6rem 1.15rem; cursor: pointer; background: var(--accent); color: #fff; margin-top: 1rem; text-decoration: none; }
button:hover, a.button:hover { background: var(--accent-dark); }
button.secondary { background: #fff; color: var(--fg); border-color: #b8c0cc; }
button.secondary:hover { background: #f2f4f7; }
button.danger { background: var(--danger); }
button.danger:hover { background: #912018; }
button.link { background: none; color: var(--accent); padding: 0; margin: 0; border: 0; text-decoration: underline; font-weight: 500; }
button.link:hover { background: none; color: var(--accent-dark); }
form.inline { display: inline; margin: 0; }
.alert { border-radius: 8px; padding: .75rem 1rem; margin: 0 0 1rem; border: 1px solid; }
.alert.error { background: #fef3f2; border-color: #fecdca; color: #7a271a; }
.alert.success { background: #ecfdf3; border-color: #abefc6; color: #054f31; }
.alert.warning { background: #fffaeb; border-color: #fedf89; color: #7a2e0e; }
.alert.info { background: #eff4ff; border-color: #c7d7fe; color: #1f3a8a; }
.qr { margin: .75rem 0; }
.qr svg { display: block; width: 200px; height: 200px; border: 1px solid var(--border); border-radius: 8px; }
details { margin: .75rem 0; }
summary { cursor: pointer; color: var(--accent); font-weight: 600; }
details.action { border: 1px solid var(--border); border-radius: 8px; padding: .6rem .9rem; }
details.action[open] { padding-bottom: 1rem; }
details.action form > p:first-of-type { margin-top: .5rem; }
dl.manual { display: grid; grid-template-columns: max-content 1fr; gap: .4rem 1rem; align-items: baseline; margin: .75rem 0 0; }
dl.manual dt { color: var(--muted); }
dl.manual dd { margin: 0; }
.key { font: 600 1.1rem ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; letter-spacing: .04em; background: #f6f8fb; border: 1px dashed #b8c0cc; border-radius: 6px; padding: .3rem .55rem; user-select: all; word-break: break-word; }
ol.steps { padding-left: 1.3rem; margin: 0; }
ol.steps > li { margin: 1.25rem 0 0; }
ol.steps > li::marker { font-weight: 700; color: var(--accent); }
ol.codes { columns: 2; column-gap: 2.5rem; font: 600 1.05rem/1.9 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; background: #f6f8fb; border: 1px solid var(--border); border-radius: 8px; padding: .9rem 1rem .9rem 2.6rem; margin: 1rem 0 0; }
ol.codes code { font: inherit; }
.badge { display: inline-block; padding: .1rem .6rem; border-radius: 999px; font-size: .85rem; font-weight: 700; }
.badge.on { background: #dcfae6; color: #067647; }
.badge.off { background: #f2f4f7; color: #475467; }
.badge.pending { background: #fef0c7; color: #93370d; }
.row { display: flex; gap: .75rem; align-items: center; flex-wrap: wrap; }
.row.between { justify-content: space-between; margin-bottom: .5rem; }
.row.between h2 { margin: 0; }
.row .button, .row button { margin-top: 1rem; }
.panel.reset { background: #eff4ff; border: 1px solid #c7d7fe; border-radius: 8px; padding: 1rem 1.1rem; margin: 1rem 0; }
.panel.reset h3 { margin-top: 0; }
.panel.reset p { margin-bottom: 0; }
.warning-text { color: #7a2e0e; }
.muted { color: var(--muted); }
.small { font-size: .9rem; }
.alt { margin: 1.25rem 0 0; }
hr { border: 0; border-top: 1px solid var(--border); margin: 1.5rem 0 1rem; }
footer { text-align: center; color: var(--muted); font-size: .85rem; margin: 2rem 1rem; }
"#;

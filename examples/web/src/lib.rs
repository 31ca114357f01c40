//! A complete web example for `totp-mfa` on axum: sign-up and password sign-in, enabling
//! TOTP with a QR code, recovery codes shown once, the second sign-in step, the lost-device
//! reset, regenerating codes and turning MFA off.
//!
//! Run it with `cargo run -p totp-mfa-web` and open the printed URL. The same functions
//! start it in the tests ([`spawn`]) or give its router ([`router`]).

#![forbid(unsafe_code)]

mod app;
mod db;
pub mod html;
mod keys;
mod session;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

pub use app::{AppError, AppState, ISSUER};
pub use keys::{SealKey, key_path};

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The port on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// The SQLite file for accounts, sessions and MFA records (created if missing).
    pub db_path: PathBuf,
    /// TLS is terminated in front of this server (a reverse proxy): mark the session
    /// cookie `Secure` (and name it `__Host-sid`) and send HSTS.
    pub behind_tls: bool,
    /// The key that seals the TOTP secrets in the database. `None`: the key file beside
    /// the database ([`key_path`]), created on first run.
    pub sealing_key: Option<SealKey>,
}

impl Config {
    /// The default port.
    pub const DEFAULT_PORT: u16 = 3000;
    /// The default database file, in the current directory.
    pub const DEFAULT_DB: &'static str = "totp-mfa-web.db";

    /// Reads `--port N`, `--db PATH` and `--help` from `args`, with the environment
    /// (`PORT`, `TOTP_MFA_WEB_DB`, `TOTP_MFA_WEB_BEHIND_TLS=1`) as defaults, and the sealing
    /// key from `TOTP_MFA_WEB_SEALING_KEY`. `Ok(None)` means help was asked for.
    ///
    /// # Errors
    /// A message for a bad argument or a malformed sealing key.
    pub fn from_args(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Config>, String> {
        let mut port = match env("PORT") {
            Some(p) => parse_port(&p)?,
            None => Self::DEFAULT_PORT,
        };
        let mut db_path =
            PathBuf::from(env("TOTP_MFA_WEB_DB").unwrap_or_else(|| Self::DEFAULT_DB.to_owned()));
        let behind_tls = matches!(
            env("TOTP_MFA_WEB_BEHIND_TLS").as_deref().map(str::trim),
            Some("1" | "true" | "yes")
        );
        let sealing_key = match env("TOTP_MFA_WEB_SEALING_KEY") {
            Some(hex) => Some(
                SealKey::from_hex(&zeroize::Zeroizing::new(hex))
                    .map_err(|e| format!("TOTP_MFA_WEB_SEALING_KEY is malformed: {e}"))?,
            ),
            None => None,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--port" => port = parse_port(&args.next().ok_or("--port needs a number")?)?,
                "--db" => db_path = PathBuf::from(args.next().ok_or("--db needs a path")?),
                "-h" | "--help" => return Ok(None),
                other => {
                    if let Some(p) = other.strip_prefix("--port=") {
                        port = parse_port(p)?;
                    } else if let Some(p) = other.strip_prefix("--db=") {
                        db_path = PathBuf::from(p);
                    } else {
                        return Err(format!("unknown argument {other:?} (try --help)"));
                    }
                }
            }
        }
        Ok(Some(Config {
            port,
            db_path,
            behind_tls,
            sealing_key,
        }))
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("invalid port {text:?}: expected 0 to 65535"))
}

/// The usage text.
pub const USAGE: &str = "\
totp-mfa-web: a web example for the totp-mfa crate

USAGE: cargo run -p totp-mfa-web -- [--port N] [--db PATH]

  --port N    port on 127.0.0.1 (default 3000; 0 picks a free one); env PORT
  --db PATH   SQLite file (default ./totp-mfa-web.db); env TOTP_MFA_WEB_DB

  TOTP_MFA_WEB_BEHIND_TLS=1   TLS is terminated in front of this server: Secure cookies, HSTS
  TOTP_MFA_WEB_SEALING_KEY    64 hex characters: the key sealing the TOTP secrets (default:
                              the file <db>.key, created with a random key on first run)
";

/// The application's router, over the database file of `config`.
///
/// # Errors
/// When the database cannot be opened, or the sealing key file is malformed or missing
/// beside a database that holds sealed records.
pub fn router(config: &Config) -> Result<axum::Router, AppError> {
    let key = match &config.sealing_key {
        Some(k) => k.clone(),
        None => keys::load_or_create(&config.db_path)?,
    };
    app::build(&config.db_path, config.behind_tls, &key)
}

/// A server running in the background.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The server task.
    pub task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// The base URL, with a trailing slash.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

/// Starts the server on 127.0.0.1 in a background task.
///
/// # Errors
/// When the database cannot be opened or the port cannot be bound.
pub async fn spawn(config: &Config) -> Result<Running, AppError> {
    let router = router(config)?;
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, config.port))
        .await
        .map_err(|e| AppError::new(format!("binding 127.0.0.1:{}: {e}", config.port)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| AppError::new(format!("local address: {e}")))?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            eprintln!("[totp-mfa-web] server error: {e}");
        }
    });
    Ok(Running { addr, task })
}

/// Runs the server until Ctrl-C, printing its URL.
///
/// # Errors
/// When the database cannot be opened or the port cannot be bound.
pub async fn serve(config: &Config) -> Result<(), AppError> {
    let router = router(config)?;
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, config.port))
        .await
        .map_err(|e| AppError::new(format!("binding 127.0.0.1:{}: {e}", config.port)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| AppError::new(format!("local address: {e}")))?;
    println!("totp-mfa-web listening on http://{addr}/");
    println!("  database: {}", config.db_path.display());
    if config.behind_tls {
        println!("  TLS terminated in front: Secure cookies and HSTS are on");
    }
    println!("  press Ctrl-C to stop");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| AppError::new(format!("server: {e}")))
}

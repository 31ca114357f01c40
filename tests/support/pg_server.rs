//! A throwaway PostgreSQL server, for `tests/postgres.rs` and `benches/scale.rs` (each
//! includes this file as a module with `#[path]`; it is not a test target of its own).
//!
//! The server comes from `initdb` and `pg_ctl`, found on `PATH` or under
//! `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package puts them there, off `PATH`).
//! As root, they run as the `postgres` OS user, since `initdb` refuses root. It listens on
//! a free loopback port, lives in a temporary directory, and is stopped and removed by a
//! watchdog when the process that started it exits, however it exits.

// Each includer uses a different part of it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Where `initdb` and `pg_ctl` are.
pub fn postgres_bin_dir() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(dir) = std::env::split_paths(&path).find(|d| has_both(d)) {
            return Some(dir);
        }
    }
    // Debian and Ubuntu: /usr/lib/postgresql/<major>/bin, not on PATH. Take the newest.
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_both(&bin).then_some((major, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `runuser` (util-linux), which may be in an `sbin` directory that is not on `PATH`.
fn runuser() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).find(|d| d.join("runuser").is_file()));
    match on_path {
        Some(dir) => dir.join("runuser"),
        None => ["/usr/sbin/runuser", "/sbin/runuser"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("runuser")),
    }
}

/// A command that runs `program` as the `postgres` OS user when we are root.
fn pg_command(as_postgres: bool, program: &Path) -> Command {
    if as_postgres {
        let mut c = Command::new(runuser());
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut cmd: Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

const DIR_PREFIX: &str = "totp-mfa-pg-";

/// A throwaway PostgreSQL server, in a temporary directory, on a free loopback port.
///
/// `tests/postgres.rs` starts one for every test of its binary, each test in its own
/// database (a server per test cost about 1.5 s of `initdb` each); `benches/scale.rs` starts
/// one for its PostgreSQL rows. It is stopped (`pg_ctl stop -m immediate`) and its
/// directory removed when the process ends, however it ends (all tests done, a test
/// failed, the process was killed), or when the `PgServer` is dropped, by a watchdog: a
/// small `sh` process spawned first, which blocks reading a pipe whose only writer is this
/// process. When this process exits (or drops the writer) the pipe closes, the read
/// returns, and the watchdog stops the server and removes the directory.
pub struct PgServer {
    /// The temporary directory: the data directory (`data`), the log (`server.log`) and
    /// the socket.
    pub dir: PathBuf,
    /// The loopback port it listens on.
    pub port: u16,
    /// Keeps the watchdog's pipe open for as long as the server is wanted.
    _watchdog: std::process::ChildStdin,
}

impl PgServer {
    /// The settings the tests run with: no durability (fsync, synchronous commit and full
    /// page writes off: a crash loses the throwaway data anyway), small shared buffers, and
    /// room for the connections of many tests at once.
    pub const TEST_SETTINGS: &str = "-c fsync=off -c synchronous_commit=off \
        -c full_page_writes=off -c shared_buffers=32MB -c max_connections=300";

    /// Starts a server with [`PgServer::TEST_SETTINGS`].
    pub fn start(bin: PathBuf) -> PgServer {
        Self::start_with(bin, Self::TEST_SETTINGS)
    }

    /// Starts a server with `settings` (`-c name=value ...`, as `postgres` takes them)
    /// added to the connection settings and the log line prefix, over `initdb`'s
    /// `postgresql.conf`.
    pub fn start_with(bin: PathBuf, settings: &str) -> PgServer {
        reap_stale_servers(&bin);
        let started = Instant::now();
        let as_postgres = running_as_root();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}-{nanos}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let data = dir.join("data");

        // The watchdog first, so that nothing below can be left behind.
        let mut watchdog = Command::new("sh");
        watchdog
            .arg("-c")
            .arg(r#"read _ignored; "$@" >/dev/null 2>&1; rm -rf -- "$TOTP_MFA_PG_DIR""#)
            .arg("watchdog");
        if as_postgres {
            watchdog.arg(runuser()).args(["-u", "postgres", "--"]);
        }
        watchdog
            .arg(bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "-t", "30", "stop"])
            .env("TOTP_MFA_PG_DIR", &dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let watchdog = watchdog.spawn().unwrap().stdin.take().unwrap();

        if as_postgres {
            let mut chown = Command::new("chown");
            chown.arg("postgres:postgres").arg(&dir);
            run(chown, "chown").unwrap();
        }
        let mut initdb = pg_command(as_postgres, &bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8"])
            .args(["--locale=C", "--no-sync"]);
        run(initdb, "initdb").unwrap();

        // A port that was free a moment ago may be taken before the server binds it: retry.
        let log = dir.join("server.log");
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            // Every log line starts with its database's name (see `PgServer::log_of`).
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k {} {settings} \
                 -c log_line_prefix=%d:",
                dir.display()
            );
            let mut start = pg_command(as_postgres, &bin.join("pg_ctl"));
            start
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "-o", &options, "start"]);
            match run(start, "pg_ctl start") {
                Ok(()) => {
                    eprintln!(
                        "PostgreSQL from {} started on 127.0.0.1:{port} in {:?}",
                        bin.display(),
                        started.elapsed()
                    );
                    return PgServer {
                        dir,
                        port,
                        _watchdog: watchdog,
                    };
                }
                Err(e) => {
                    let log = std::fs::read_to_string(&log).unwrap_or_default();
                    last_error = format!("{e}\nserver log:\n{log}");
                }
            }
        }
        panic!("could not start PostgreSQL: {last_error}");
    }

    /// A connection string for `db` as the superuser.
    pub fn url(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={db}",
            self.port
        )
    }

    /// A raw connection, to inspect or tamper with the database behind the store's back.
    pub async fn raw(&self, db: &str) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url(db), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    }

    pub async fn create_database(&self, db: &str) {
        self.raw("postgres")
            .await
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
    }

    /// A new database for one test, named after it.
    pub fn database(&self, test: &str) -> String {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!("{test}_{}", COUNTER.fetch_add(1, Ordering::Relaxed));
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(self.create_database(&name));
        name
    }

    /// The server's log lines about database `db`.
    pub fn log_of(&self, db: &str) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let prefix = format!("{db}:");
        log.lines()
            .filter(|l| l.starts_with(&prefix))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Servers whose test process and watchdog were both killed (a `kill -9` of the process
/// group, say): stopped and removed by the next run.
fn reap_stale_servers(bin: &Path) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let mut stop = pg_command(running_as_root(), &bin.join("pg_ctl"));
        stop.arg("-D").arg(entry.path().join("data")).args([
            "-m",
            "immediate",
            "-w",
            "-t",
            "30",
            "stop",
        ]);
        let _ = stop.stdout(Stdio::null()).stderr(Stdio::null()).status();
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

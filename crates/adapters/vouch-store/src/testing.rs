//! A throw-away PostgreSQL server for tests (feature `testing`).
//!
//! [`TempPostgres::start`] runs Debian's PostgreSQL binaries (`/usr/lib/postgresql/*/bin`, or
//! `$VOUCH_PG_BIN`; install with `scripts/deps.sh`): `initdb` into a fresh temporary
//! directory, then `postgres -D DIR -k DIR -h 127.0.0.1 -p PORT` on a free loopback port
//! (never a fixed port, never a non-loopback address). As root it drops to the `postgres`
//! user with `setpriv` (the directory is handed to that user). The server runs under a small
//! `sh` watchdog that stops it when [`TempPostgres`] is dropped (SIGTERM to the watchdog) and
//! also when the test process exits without running destructors (statics), so no server or
//! directory outlives its test binary. [`TempPostgres::create_database`] gives each test its own
//! database; [`TempPostgres::stop`] and [`TempPostgres::restart`] take the server down and
//! bring it back on the same data and port (fault tests).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::Connection as _;

/// Why a test server could not start.
#[derive(Debug, thiserror::Error)]
pub enum TempPostgresError {
    /// The PostgreSQL server binaries are not installed.
    #[error("PostgreSQL binaries not found (looked in {0}); run scripts/deps.sh")]
    NotInstalled(String),
    /// A step failed.
    #[error("{step}: {detail}")]
    Step {
        /// Which step.
        step: &'static str,
        /// What happened.
        detail: String,
    },
}

fn step(step: &'static str, detail: impl ToString) -> TempPostgresError {
    TempPostgresError::Step {
        step,
        detail: detail.to_string(),
    }
}

/// A running PostgreSQL server in a temporary directory; stopped on drop.
#[derive(Debug)]
pub struct TempPostgres {
    dir: tempfile::TempDir,
    /// The running server's watchdog; `None` while [`TempPostgres::stop`]ped.
    watchdog: Option<Child>,
    port: u16,
    bin: PathBuf,
    root: bool,
}

fn find_bin_dir() -> Result<PathBuf, TempPostgresError> {
    if let Some(dir) = std::env::var_os("VOUCH_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
        .into_iter()
        .rev()
        .find(|d| d.join("initdb").is_file())
        .ok_or_else(|| TempPostgresError::NotInstalled(root.display().to_string()))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// `cmd args...`, as the postgres user when we are root.
fn as_postgres(root: bool, program: &Path) -> Command {
    if root {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--clear-groups",
            "--",
        ])
        .arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> Result<u16, TempPostgresError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| step("free port", e))?;
    Ok(l.local_addr().map_err(|e| step("free port", e))?.port())
}

impl TempPostgres {
    /// initdb, start on a free loopback port, wait until it accepts connections.
    pub fn start() -> Result<Self, TempPostgresError> {
        let bin = find_bin_dir()?;
        let root = is_root();
        let dir = tempfile::Builder::new()
            .prefix("vouch-pg-")
            .tempdir()
            .map_err(|e| step("temp dir", e))?;
        let data = dir.path().join("data");
        if root {
            let out = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .output()
                .map_err(|e| step("chown", e))?;
            if !out.status.success() {
                return Err(step("chown", String::from_utf8_lossy(&out.stderr)));
            }
        }
        let out = as_postgres(root, &bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
            .output()
            .map_err(|e| step("initdb", e))?;
        if !out.status.success() {
            return Err(step("initdb", String::from_utf8_lossy(&out.stderr)));
        }
        let port = free_port()?;
        let mut pg = Self {
            dir,
            watchdog: None,
            port,
            bin,
            root,
        };
        pg.run_server()?;
        Ok(pg)
    }

    /// Start the server on this directory and port under a watchdog, and wait until it
    /// accepts connections.
    fn run_server(&mut self) -> Result<(), TempPostgresError> {
        let mut server = as_postgres(self.root, &self.bin.join("postgres"));
        server
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-k")
            .arg(self.dir.path())
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-F"]);
        // The watchdog: start the server, stop it on SIGTERM or when this process is gone.
        let script = r#"
"$@" >>"$LOG" 2>&1 &
pg=$!
trap 'kill -INT $pg 2>/dev/null; wait $pg; exit 0' TERM INT
while kill -0 "$WATCH" 2>/dev/null && kill -0 $pg 2>/dev/null; do sleep 0.2; done
kill -INT $pg 2>/dev/null; wait $pg
# The test process is gone (a static server is never dropped): remove the directory too.
rm -rf "$DIR"
"#;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .arg("vouch-pg-watchdog")
            .arg(server.get_program())
            .args(server.get_args())
            .env("WATCH", std::process::id().to_string())
            .env("LOG", self.dir.path().join("server.log"))
            .env("DIR", self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.watchdog = Some(cmd.spawn().map_err(|e| step("start postgres", e))?);
        self.wait_ready()
    }

    /// Stop the server (fast shutdown: clients are disconnected) and wait until it has
    /// exited; the data directory and port are kept for [`TempPostgres::restart`].
    pub fn stop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            // SIGTERM to the watchdog, which stops the server and waits for it.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(watchdog.id().to_string())
                .status();
            let _ = watchdog.wait();
        }
    }

    /// Start a [`TempPostgres::stop`]ped server again on the same data and port, and wait
    /// until it accepts connections. Nothing happens if it is running.
    pub fn restart(&mut self) -> Result<(), TempPostgresError> {
        if self.watchdog.is_some() {
            return Ok(());
        }
        self.run_server()
    }

    fn wait_ready(&self) -> Result<(), TempPostgresError> {
        let deadline = Instant::now()
            .checked_add(Duration::from_secs(30))
            .ok_or_else(|| step("wait", "clock"))?;
        loop {
            let ok = Command::new(self.bin.join("pg_isready"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
                return Err(step("postgres did not become ready in 30 s", log));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The loopback port the server listens on.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// URL of a database on this server.
    #[must_use]
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Create a fresh, uniquely named database and return its URL.
    pub async fn create_database(&self) -> Result<String, TempPostgresError> {
        let name = format!("vouch_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .map_err(|e| step("connect", e))?;
        // The name is ours (a fresh uuid), not input.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .map_err(|e| step("create database", e))?;
        conn.close().await.map_err(|e| step("disconnect", e))?;
        Ok(self.url(&name))
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

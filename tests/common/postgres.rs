//! A real PostgreSQL server for the database tests, started by the test itself: Debian's
//! `postgresql` package (`scripts/setup.sh test` installs it), `initdb` into a temporary
//! directory (as the `postgres` user when the tests run as root: initdb refuses root), on a free
//! loopback port, trust authentication, no durability (a test database). Stopped and deleted
//! when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct PgServer {
    dir: PathBuf,
    pub port: u16,
    child: Child,
}

/// The directory of the server's programs (`/usr/lib/postgresql/<version>/bin`).
fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .filter(|p| p.join("initdb").exists() && p.join("postgres").exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().expect(
        "PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb): run scripts/setup.sh test \
         (Debian's postgresql package)",
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program args…`, as the `postgres` user when we are root.
fn command(program: &Path, root: bool) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Whether the server of `data` is up and accepting connections on `port` (the lines of
/// `postmaster.pid`: pid, directory, start time, port, socket directory, address, shared
/// memory key, status).
fn ready_on(data: &Path, port: u16) -> bool {
    std::fs::read_to_string(data.join("postmaster.pid")).is_ok_and(|s| {
        let lines: Vec<&str> = s.lines().collect();
        lines.get(3).map(|l| l.trim()) == Some(port.to_string().as_str())
            && lines.get(7).is_some_and(|l| l.trim() == "ready")
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PgServer {
    pub fn start() -> PgServer {
        let bin = bin_dir();
        let root = is_root();
        let dir = std::env::temp_dir().join(format!(
            "wxpay-pg-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        if root {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(status.success(), "chown of {}", dir.display());
        }
        let out = command(&bin.join("initdb"), root)
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The port was free a moment before the server binds it: if another process takes
        // it first, the server exits, and it is started again on another one.
        for _ in 0..5 {
            let port = free_port();
            let mut child = command(&bin.join("postgres"), root)
                .arg("-D")
                .arg(&data)
                .args(["-p", &port.to_string(), "-k"])
                .arg(&dir)
                .args([
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // the port was taken: another one
                }
                // Ready as this very server: its own postmaster.pid (in our data directory)
                // names the port and says "ready" once it accepts connections on it.
                if ready_on(&data, port) {
                    return PgServer { dir, port, child };
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    panic!("PostgreSQL did not start in 30 s");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("PostgreSQL did not start on any of 5 free ports");
    }

    /// A new, empty database on this server; its URL.
    pub async fn database(&self, name: &str) -> String {
        use sqlx::Connection;
        let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        // The port answers a moment before the server accepts sessions.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut conn = loop {
            match sqlx::PgConnection::connect(&admin).await {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot connect to the test PostgreSQL: {e}"),
            }
        };
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .unwrap();
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // The server's own pid (the child may be `runuser`): a fast shutdown (SIGINT), then
        // wait, and remove the files.
        let pid = std::fs::read_to_string(self.dir.join("data/postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().map(str::to_string))
            .unwrap_or_else(|| self.child.id().to_string());
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

//! A real Redis for the replica tests, started by the test itself: Debian's `redis-server`
//! (`scripts/setup.sh test` installs it) on a free loopback port, no persistence. Killed when
//! dropped.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    child: Child,
}

impl RedisServer {
    /// On a free port. The port was free a moment before the server binds it: if another
    /// process takes it first, the server exits, and it is started again on another one.
    pub fn start() -> RedisServer {
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if let Some(server) = Self::try_start(port) {
                return server;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// On `port` (to restart one where it was).
    pub fn start_on(port: u16) -> RedisServer {
        Self::try_start(port)
            .unwrap_or_else(|| panic!("redis-server could not start on port {port} (taken?)"))
    }

    /// Started and answering on `port` as this very process (its `INFO` names its pid: a
    /// server of someone else's on that port is not taken for ours); `None` if it exited.
    fn try_start(port: u16) -> Option<RedisServer> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
            ])
            .arg(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "redis-server is not installed: run scripts/setup.sh test (Debian's redis-server)",
            );
        let mut server = RedisServer { port, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(_)) = server.child.try_wait() {
                return None; // the port was taken
            }
            if server.answering_pid() == Some(server.child.id()) {
                return Some(server);
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start in 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The `process_id` of the server answering on the port, if one does.
    fn answering_pid(&self) -> Option<u32> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        s.write_all(b"INFO server\r\n").ok()?;
        let mut reply = String::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(rest) = reply.split("process_id:").nth(1) {
                if let Some((pid, _)) = rest.split_once("\r\n") {
                    return pid.trim().parse().ok();
                }
            }
            let n = s.read(&mut buf).ok()?;
            if n == 0 {
                return None;
            }
            reply.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

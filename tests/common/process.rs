//! Child processes for the tests that run the real binary: every wait has a deadline, a process
//! is killed when its handle drops (a failing test leaves nothing running), and ports are the
//! ones the process itself bound and printed (never reserved by the test and then released).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running process whose standard output and error are collected line by line.
pub struct Proc {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn collect(
    stream: impl Read + Send + 'static,
    lines: Arc<Mutex<Vec<String>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            lines.lock().unwrap().push(line);
        }
    })
}

impl Proc {
    /// Starts `cmd` with its output piped (and no standard input).
    pub fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), lines.clone()),
            collect(child.stderr.take().unwrap(), lines.clone()),
        ];
        Proc {
            child,
            lines,
            readers,
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Everything printed so far, one line each.
    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// The first printed line containing `needle`, waiting up to `timeout` for it. Panics with
    /// the output so far if it does not come, or if the process ends first.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let find = |lines: &Mutex<Vec<String>>| {
            lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
                .cloned()
        };
        loop {
            if let Some(l) = find(&self.lines) {
                return l;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the readers take the last lines, then look once more.
                std::thread::sleep(Duration::from_millis(100));
                if let Some(l) = find(&self.lines) {
                    return l;
                }
                panic!(
                    "the process ended ({status}) before printing {needle:?}:\n{}",
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no line with {needle:?} within {timeout:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The port in the first line that names `http://127.0.0.1:PORT` after `needle`.
    pub fn wait_for_port(&mut self, needle: &str, timeout: Duration) -> u16 {
        let line = self.wait_for_line(needle, timeout);
        port_in(&line).unwrap_or_else(|| panic!("no http://127.0.0.1:PORT in {line:?}"))
    }

    /// Sends a signal (e.g. "TERM") to the process.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// Waits up to `timeout` for the process to end; kills it and panics if it does not.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let status = wait_with_deadline(&mut self.child, timeout).unwrap_or_else(|| {
            panic!(
                "the process did not end within {timeout:?}:\n{}",
                self.output()
            )
        });
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        status
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `child` until it ends or `timeout` passes (then kills it and returns `None`).
fn wait_with_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cmd` to its end, within `timeout` (a process that keeps running instead of stopping
/// is killed and fails the test). Returns its exit status and everything it printed.
pub fn run_to_end(cmd: Command, timeout: Duration) -> (ExitStatus, String) {
    let mut p = Proc::spawn(cmd);
    let status = p.wait(timeout);
    (status, p.output())
}

/// The port of the first `http://127.0.0.1:PORT` in `text`.
pub fn port_in(text: &str) -> Option<u16> {
    let rest = &text[text.find("http://127.0.0.1:")? + "http://127.0.0.1:".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The dashboard binary at `bin` with no setting inherited from the environment (credentials,
/// the demo's and the dashboard's settings, addresses, stores).
pub fn dashboard_command(bin: &str) -> Command {
    let mut cmd = Command::new(bin);
    for (k, _) in std::env::vars() {
        if k.starts_with("WECHATPAY_")
            || k.starts_with("DASHBOARD_")
            || k.starts_with("DEMO_")
            || k.starts_with("LEPTOS_SITE_ADDR")
            || k == "LOG_FORMAT"
            || k == "DATA_DIR"
            || k == "DATABASE_URL"
            || k == "HISTORY_DAYS"
            || k == "CACHE_TTL_SECS"
            || k == "REDIS_URL"
        {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Points the dashboard `cmd` at the simulator at `base_url`, in public-key mode, with the key
/// files in `keys_dir` (written by `simulate --keys-dir` or `SimKeys::load_or_create`).
pub fn simulator_credentials<'a>(
    cmd: &'a mut Command,
    keys_dir: &Path,
    base_url: &str,
) -> &'a mut Command {
    use wxpay_devices::simulator::keys as k;
    let read = |name: &str| {
        std::fs::read_to_string(keys_dir.join(name))
            .expect("the simulator's key files")
            .trim()
            .to_string()
    };
    cmd.env("WECHATPAY_MCHID", read(k::MCHID_FILE))
        .env(
            "WECHATPAY_MERCHANT_SERIAL_NO",
            read(k::MERCHANT_SERIAL_FILE),
        )
        .env(
            "WECHATPAY_MERCHANT_PRIVATE_KEY",
            keys_dir.join(k::MERCHANT_KEY_FILE),
        )
        .env(
            "WECHATPAY_PUBLIC_KEY",
            keys_dir.join(k::PLATFORM_PUBLIC_KEY_FILE),
        )
        .env(
            "WECHATPAY_PUBLIC_KEY_ID",
            read(k::PLATFORM_PUBLIC_KEY_ID_FILE),
        )
        .env("WECHATPAY_BASE_URL", base_url)
}

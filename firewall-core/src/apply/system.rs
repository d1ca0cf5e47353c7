//! The host as `apply` sees it: run a tool (with stdin), read and write
//! `ip_forward`, the effective uid. A trait so that the error paths can be
//! unit-tested with a mock; [`Host`] is the real thing.

use std::fs::File;
use std::io::{self, Read, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What a tool run produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOutput {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl RunOutput {
    /// Whether the tool exited with 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// The operations `apply` needs from the host.
pub(crate) trait System: Sync {
    /// The effective uid of this process.
    fn euid(&self) -> io::Result<u32>;
    /// Where `tool` is on `PATH`, if anywhere.
    fn find(&self, tool: &str) -> Option<PathBuf>;
    /// Runs `tool args...`, feeding `stdin` (or nothing), and waits for it; a
    /// tool still running after its timeout is killed (`io::ErrorKind::TimedOut`
    /// carrying a [`ToolTimeout`]).
    fn run(&self, tool: &str, args: &[&str], stdin: Option<&str>) -> io::Result<RunOutput>;
    /// [`System::run`], with the child's stdout on a copy of `hold` (the
    /// applier lock): the child holds the lock until it exits, even if this
    /// process dies first (see [`super::lock`]). Its stdout is not captured.
    fn run_holding(
        &self,
        tool: &str,
        args: &[&str],
        stdin: Option<&str>,
        hold: &File,
    ) -> io::Result<RunOutput> {
        let _ = hold;
        self.run(tool, args, stdin)
    }
    /// [`System::run`] without input, with the child's stdin on a copy of
    /// `hold` (the applier lock), stdout and stderr captured: for a tool that
    /// reads its input from a file it is given (`nft -f FILE`) and whose output
    /// is needed (`nft -e -j`'s echo). The child holds the lock until it
    /// exits, as with [`System::run_holding`].
    fn run_capturing_holding(
        &self,
        tool: &str,
        args: &[&str],
        hold: &File,
    ) -> io::Result<RunOutput> {
        let _ = hold;
        self.run(tool, args, None)
    }
    /// The per-network-namespace state prefix (`/run/firewall/net-<inode>`, see [`super::lock`]).
    fn state_prefix(&self) -> io::Result<PathBuf>;
    /// Starts `tool args...` with stdin, stdout and stderr on `/dev/null` and
    /// waits for it (for `setsid -f`, which returns once the detached child is
    /// forked: that child must not hold our pipes, or reading them would wait
    /// for the whole failsafe window).
    fn run_detached(&self, tool: &str, args: &[&str]) -> io::Result<Option<i32>>;
    /// `/proc/sys/net/ipv4/ip_forward`, trimmed.
    fn read_ip_forward(&self) -> io::Result<String>;
    /// Writes `/proc/sys/net/ipv4/ip_forward`.
    fn write_ip_forward(&self, value: &str) -> io::Result<()>;
    /// The network interfaces of this host (of this network namespace).
    fn interfaces(&self) -> io::Result<Vec<String>>;
    /// The text of the file at `path` (`/boot/config-...`, `modules.dep`).
    fn read_file(&self, path: &str) -> io::Result<String>;
    /// The text of the gzip-compressed file at `path` (`/proc/config.gz`),
    /// decompressed in this process.
    fn read_gz(&self, path: &str) -> io::Result<String>;
    /// Whether `path` exists (`/sys/module/NAME`).
    fn exists(&self, path: &str) -> bool;
}

/// This machine (in the network namespace this process runs in).
pub(crate) struct Host;

/// How long `iptables-restore` and friends wait for the xtables lock (`-w`).
pub(crate) const LOCK_WAIT_SECS: &str = "10";

/// The longest any one tool may run before it is killed: the rollback
/// program runs several bounded tools in a row, so it gets more.
pub(crate) fn timeout_for(tool: &str) -> Duration {
    match tool {
        "bash" => Duration::from_secs(300),
        "ip" => Duration::from_secs(10),
        _ => Duration::from_secs(60),
    }
}

/// A tool that did not finish in time and was killed: the payload of the
/// `io::ErrorKind::TimedOut` error a tool run returns then (see
/// [`super::ApplyError::timed_out`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolTimeout {
    /// The tool.
    pub tool: String,
    /// How long it was given.
    pub after: Duration,
}

impl std::fmt::Display for ToolTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} did not finish within {} s and was killed (a hung kernel or a lock held by another program?)",
            self.tool,
            self.after.as_secs()
        )
    }
}

impl std::error::Error for ToolTimeout {}

/// What a tool's stdin is.
enum Input<'a> {
    /// `/dev/null`.
    Nothing,
    /// This text, through a pipe.
    Text(&'a str),
    /// This file (a copy of the applier lock, see [`System::run_capturing_holding`]).
    File(File),
}

/// Runs `tool` with `stdout` (captured when piped), feeding `stdin`, reading
/// its outputs; kills it after `limit`.
fn run_bounded(
    tool: &str,
    args: &[&str],
    stdin: Input<'_>,
    limit: Duration,
    stdout: Stdio,
) -> io::Result<RunOutput> {
    let deadline = Instant::now() + limit;
    let (stdin, text) = match stdin {
        Input::Nothing => (Stdio::null(), None),
        Input::Text(t) => (Stdio::piped(), Some(t)),
        Input::File(f) => (Stdio::from(f), None),
    };
    let mut child = Command::new(tool)
        .args(args)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()?;
    // Feed stdin from a thread while the outputs are read on two others, so
    // that a tool that writes a lot before reading all its input cannot
    // deadlock us, and this thread can keep the time.
    let feeder = match (text, child.stdin.take()) {
        (Some(text), Some(mut pipe)) => {
            let text = text.to_string();
            Some(std::thread::spawn(move || {
                // A tool that exits early closes the pipe: its exit status tells why.
                let _ = pipe.write_all(text.as_bytes());
            }))
        }
        _ => None,
    };
    let (tx, rx) = mpsc::channel::<()>();
    let reader = |pipe: Option<Box<dyn Read + Send>>, tx: mpsc::Sender<()>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            let _ = tx.send(());
            buf
        })
    };
    let out_reader = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        tx.clone(),
    );
    let err_reader = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        tx,
    );
    // Both outputs closed (normally: the tool exited), then its status.
    let mut closed = 0;
    let mut status = None;
    while closed < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(()) => closed += 1,
            Err(_) => break,
        }
    }
    let mut pause = Duration::from_micros(200);
    while status.is_none() {
        status = child.try_wait()?;
        if status.is_some() || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            ToolTimeout {
                tool: tool.to_string(),
                after: limit,
            },
        ));
    };
    if let Some(f) = feeder {
        let _ = f.join();
    }
    // The tool has exited; a grandchild that kept a pipe open is not waited for.
    let out = if closed == 2 {
        out_reader.join().unwrap_or_default()
    } else {
        Vec::new()
    };
    let err = if closed == 2 {
        err_reader.join().unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok(RunOutput {
        code: status.code(),
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    })
}

fn input(stdin: Option<&str>) -> Input<'_> {
    stdin.map_or(Input::Nothing, Input::Text)
}

/// The text of gzip data, lossily decoded. In this process (the kernel
/// check reads `/proc/config.gz` on every apply; a `gzip -dc` process cost
/// 2-4 ms of it).
pub(crate) fn gunzip(bytes: &[u8]) -> io::Result<String> {
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut text)?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

impl System for Host {
    fn euid(&self) -> io::Result<u32> {
        // No libc (the crate forbids unsafe): /proc/self/status has "Uid: real effective saved fs".
        let status = std::fs::read_to_string("/proc/self/status")?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|u| u.parse().ok())
            .ok_or_else(|| io::Error::other("no Uid line in /proc/self/status"))
    }

    fn find(&self, tool: &str) -> Option<PathBuf> {
        let path =
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
        std::env::split_paths(&path)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
    }

    fn run(&self, tool: &str, args: &[&str], stdin: Option<&str>) -> io::Result<RunOutput> {
        run_bounded(tool, args, input(stdin), timeout_for(tool), Stdio::piped())
    }

    fn run_holding(
        &self,
        tool: &str,
        args: &[&str],
        stdin: Option<&str>,
        hold: &File,
    ) -> io::Result<RunOutput> {
        run_bounded(
            tool,
            args,
            input(stdin),
            timeout_for(tool),
            Stdio::from(hold.try_clone()?),
        )
    }

    fn run_capturing_holding(
        &self,
        tool: &str,
        args: &[&str],
        hold: &File,
    ) -> io::Result<RunOutput> {
        run_bounded(
            tool,
            args,
            Input::File(hold.try_clone()?),
            timeout_for(tool),
            Stdio::piped(),
        )
    }

    fn state_prefix(&self) -> io::Result<PathBuf> {
        super::lock::state_prefix()
    }

    fn run_detached(&self, tool: &str, args: &[&str]) -> io::Result<Option<i32>> {
        let mut child = Command::new(tool)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        // `setsid -f` returns as soon as it forked; bounded all the same.
        let limit = Duration::from_secs(10);
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status.code());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    ToolTimeout {
                        tool: tool.to_string(),
                        after: limit,
                    },
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn read_ip_forward(&self) -> io::Result<String> {
        Ok(std::fs::read_to_string(IP_FORWARD)?.trim().to_string())
    }

    fn write_ip_forward(&self, value: &str) -> io::Result<()> {
        std::fs::write(IP_FORWARD, format!("{value}\n"))
    }

    fn interfaces(&self) -> io::Result<Vec<String>> {
        super::interfaces::read_host()
    }

    fn read_file(&self, path: &str) -> io::Result<String> {
        let bytes = std::fs::read(path)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn read_gz(&self, path: &str) -> io::Result<String> {
        gunzip(&std::fs::read(path)?)
    }

    fn exists(&self, path: &str) -> bool {
        std::path::Path::new(path).exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hung_tool_is_killed_at_its_timeout() {
        let started = Instant::now();
        let e = run_bounded(
            "sleep",
            &["30"],
            Input::Nothing,
            Duration::from_millis(300),
            Stdio::piped(),
        )
        .expect_err("sleep 30 finished within 300 ms");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        let t = e
            .get_ref()
            .and_then(|i| i.downcast_ref::<ToolTimeout>())
            .expect("a ToolTimeout payload");
        assert_eq!(t.tool, "sleep");
        assert_eq!(t.after, Duration::from_millis(300));
        assert!(t.to_string().contains("sleep did not finish"), "{t}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        // Also with stdin that is never read.
        let e = run_bounded(
            "sleep",
            &["30"],
            Input::Text("x\n"),
            Duration::from_millis(200),
            Stdio::piped(),
        );
        assert!(matches!(e, Err(ref e) if e.kind() == io::ErrorKind::TimedOut));
    }

    #[test]
    fn a_tool_that_finishes_gives_its_output() {
        let out = run_bounded(
            "sh",
            &["-c", "cat; echo err >&2; exit 3"],
            Input::Text("in\n"),
            Duration::from_secs(20),
            Stdio::piped(),
        )
        .expect("sh runs");
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, "in\n");
        assert_eq!(out.stderr, "err\n");
        let big = "x".repeat(1 << 20);
        let out = run_bounded(
            "cat",
            &[],
            Input::Text(&big),
            Duration::from_secs(20),
            Stdio::piped(),
        )
        .expect("cat");
        assert_eq!(out.stdout.len(), big.len());
    }

    /// The load's child gets the lock as its stdin (so it holds the lock
    /// until it exits) and its stdout is captured (the echo).
    #[test]
    fn a_capturing_child_holds_the_lock_on_its_stdin() {
        let path = std::env::temp_dir().join(format!("fw-hold-{}", std::process::id()));
        let file = File::create(&path).unwrap();
        let out = Host
            .run_capturing_holding("sh", &["-c", "readlink /proc/self/fd/0; echo e >&2"], &file)
            .unwrap();
        assert!(out.success(), "{out:?}");
        assert_eq!(out.stdout.trim(), path.display().to_string());
        assert_eq!(out.stderr, "e\n");
        let _ = std::fs::remove_file(&path);
    }

    /// `/proc/config.gz` is read in this process: what `gzip` compressed
    /// comes back (also several members, as `zcat` reads them).
    #[test]
    fn gzip_is_read_in_process() {
        let text = "CONFIG_NF_TABLES=y\n# CONFIG_X is not set\n".repeat(500);
        let dir = std::env::temp_dir().join(format!("fw-gz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plain = dir.join("config");
        std::fs::write(&plain, &text).unwrap();
        let st = Command::new("gzip")
            .arg("-kf")
            .arg(&plain)
            .status()
            .expect("gzip");
        assert!(st.success());
        let packed = dir.join("config.gz");
        assert_eq!(Host.read_gz(&packed.to_string_lossy()).unwrap(), text);
        let mut two = std::fs::read(&packed).unwrap();
        two.extend(std::fs::read(&packed).unwrap());
        assert_eq!(gunzip(&two).unwrap(), format!("{text}{text}"));
        assert!(gunzip(b"not gzip").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

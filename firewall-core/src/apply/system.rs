//! The host as `apply` sees it: run a tool (with stdin), read and write
//! `ip_forward`, the effective uid. A trait so that the error paths can be
//! unit-tested with a mock; [`Host`] is the real thing.

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};

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
    /// Runs `tool args...`, feeding `stdin` (or nothing), and waits for it.
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
}

/// This machine (in the network namespace this process runs in).
pub(crate) struct Host;

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
        run_with(tool, args, stdin, Stdio::piped())
    }

    fn run_holding(
        &self,
        tool: &str,
        args: &[&str],
        stdin: Option<&str>,
        hold: &File,
    ) -> io::Result<RunOutput> {
        run_with(tool, args, stdin, Stdio::from(hold.try_clone()?))
    }

    fn state_prefix(&self) -> io::Result<PathBuf> {
        super::lock::state_prefix()
    }

    fn run_detached(&self, tool: &str, args: &[&str]) -> io::Result<Option<i32>> {
        let status = Command::new(tool)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        Ok(status.code())
    }

    fn read_ip_forward(&self) -> io::Result<String> {
        Ok(std::fs::read_to_string(IP_FORWARD)?.trim().to_string())
    }

    fn write_ip_forward(&self, value: &str) -> io::Result<()> {
        std::fs::write(IP_FORWARD, format!("{value}\n"))
    }
}

/// Runs `tool args...` with `stdout` (when piped: captured), feeding `stdin`.
fn run_with(
    tool: &str,
    args: &[&str],
    stdin: Option<&str>,
    stdout: Stdio,
) -> io::Result<RunOutput> {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()?;
    // Feed stdin from a thread while reading the outputs here, so that a tool
    // that writes a lot before reading all its input cannot deadlock us.
    let feeder = match (stdin, child.stdin.take()) {
        (Some(text), Some(mut pipe)) => {
            let text = text.to_string();
            Some(std::thread::spawn(move || {
                // A tool that exits early closes the pipe: its exit status tells why.
                let _ = pipe.write_all(text.as_bytes());
            }))
        }
        _ => None,
    };
    let mut stderr_pipe = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(p) = stderr_pipe.as_mut() {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    });
    let mut out = Vec::new();
    if let Some(p) = child.stdout.as_mut() {
        p.read_to_end(&mut out)?;
    }
    let status = child.wait()?;
    if let Some(f) = feeder {
        let _ = f.join();
    }
    let err = err_reader.join().unwrap_or_default();
    Ok(RunOutput {
        code: status.code(),
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    })
}

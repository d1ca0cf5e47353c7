//! The one bounded command runner of the tests: every tool the tests start
//! runs under `timeout -k 5 SECS`, through [`run`] (wait for it) or
//! [`spawn`] (keep it running, e.g. a process to be killed on purpose).

use std::io::Write as _;
use std::process::{Child, Command, Output, Stdio};
use std::thread;

/// Upper bound for any one command the harness runs (ip, iptables-restore,
/// nft, bash, ...) unless the caller gives another.
pub const COMMAND_TIMEOUT_SECS: u32 = 60;

/// The `Command` that runs `args` (program first) under `timeout -k 5 secs`:
/// SIGTERM after `secs`, SIGKILL 5 s later.
pub fn bounded(args: &[&str], secs: u32) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.arg("-k").arg("5").arg(secs.to_string()).args(args);
    cmd
}

/// Runs `args` (program first) bounded by `secs`, with `stdin` fed if given
/// (else `/dev/null`), and returns its output; `Err` if it cannot be started
/// (e.g. no `timeout`).
pub fn try_run(args: &[&str], stdin: Option<&str>, secs: u32) -> Result<Output, String> {
    let mut cmd = bounded(args, secs);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start `timeout {}`: {e}", args.join(" ")))?;
    let writer = match (stdin, child.stdin.take()) {
        (Some(text), Some(mut pipe)) => {
            let text = text.to_owned();
            // A writer thread, so a command that does not read cannot block us.
            Some(thread::spawn(move || {
                let _ = pipe.write_all(text.as_bytes());
            }))
        }
        _ => None,
    };
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for `{}`: {e}", args.join(" ")));
    if let Some(w) = writer {
        let _ = w.join();
    }
    out
}

/// [`try_run`], panicking if the command cannot be started at all (a
/// command that runs and fails is returned: check `status`).
pub fn run(args: &[&str], stdin: Option<&str>, secs: u32) -> Output {
    try_run(args, stdin, secs).unwrap_or_else(|e| panic!("{e}"))
}

/// Starts `args` (program first) bounded by `secs` with the given stdio and
/// returns it running. The caller kills it by its pid (or lets the bound do
/// it) and waits for it.
pub fn spawn(args: &[&str], secs: u32, stdin: Stdio, stdout: Stdio, stderr: Stdio) -> Child {
    bounded(args, secs)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `timeout {}`: {e}", args.join(" ")))
}

/// Describes a finished command for assertion messages.
pub fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `text` with line numbers, as iptables-restore and nft count them.
pub fn numbered(text: &str) -> String {
    text.lines()
        .enumerate()
        .map(|(i, l)| format!("{:4} {l}\n", i + 1))
        .collect()
}

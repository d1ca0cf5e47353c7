//! The apply-time lockout check: when this process runs inside an SSH session,
//! refuse a policy under which a new connection like this session's (same
//! source, same port) would not be accepted.
//!
//! The existing connection itself would survive (established connections are
//! accepted), which is exactly the trap: the admin logs out and cannot log in again.

use super::system::System;
use crate::model::{Model, Port};
use crate::render::guard;
use std::fmt;
use std::net::IpAddr;

/// An SSH session as `sshd` describes it in `SSH_CONNECTION`
/// (`client-ip client-port server-ip server-port`) or `SSH_CLIENT`
/// (`client-ip client-port server-port`).
///
/// ```
/// use firewall_core::apply::SshSession;
/// let s = SshSession::parse_connection("203.0.113.9 50000 198.51.100.1 22").unwrap();
/// assert_eq!(s.server_port, 22);
/// assert_eq!(s.to_string(), "from 203.0.113.9 port 50000 to port 22");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SshSession {
    /// The administrator's address.
    pub client: IpAddr,
    /// The administrator's port.
    pub client_port: u16,
    /// The local port sshd accepted the session on.
    pub server_port: u16,
}

impl SshSession {
    /// Parses `SSH_CONNECTION`.
    pub fn parse_connection(value: &str) -> Option<SshSession> {
        let f: Vec<&str> = value.split_whitespace().collect();
        if f.len() != 4 {
            return None;
        }
        Some(SshSession {
            client: unmap(f[0].parse().ok()?),
            client_port: f[1].parse().ok()?,
            server_port: f[3].parse().ok()?,
        })
    }

    /// Parses `SSH_CLIENT`.
    pub fn parse_client(value: &str) -> Option<SshSession> {
        let f: Vec<&str> = value.split_whitespace().collect();
        if f.len() != 3 {
            return None;
        }
        Some(SshSession {
            client: unmap(f[0].parse().ok()?),
            client_port: f[1].parse().ok()?,
            server_port: f[2].parse().ok()?,
        })
    }

    /// The session this process runs in (`None` outside SSH): from its own
    /// environment, else from its ancestors' (`sudo` drops `SSH_CONNECTION` by
    /// default, but the login shell that ran `sudo` still has it).
    pub fn from_env() -> Option<SshSession> {
        let own = |name: &str| std::env::var(name).ok();
        if let Some(s) = SshSession::from_vars(own("SSH_CONNECTION"), own("SSH_CLIENT")) {
            return Some(s);
        }
        let mut pid = parent_of("self")?;
        // Bounded: a process tree is not deeper than this in practice.
        for _ in 0..64 {
            if pid <= 1 {
                return None;
            }
            if let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) {
                let var = |name: &str| {
                    environ.split(|b| *b == 0).find_map(|kv| {
                        let kv = String::from_utf8_lossy(kv);
                        kv.strip_prefix(name)
                            .and_then(|r| r.strip_prefix('='))
                            .map(str::to_string)
                    })
                };
                if let Some(s) = SshSession::from_vars(var("SSH_CONNECTION"), var("SSH_CLIENT")) {
                    return Some(s);
                }
            }
            pid = parent_of(&pid.to_string())?;
        }
        None
    }

    fn from_vars(connection: Option<String>, client: Option<String>) -> Option<SshSession> {
        connection
            .as_deref()
            .and_then(SshSession::parse_connection)
            .or_else(|| client.as_deref().and_then(SshSession::parse_client))
    }
}

/// The parent pid of `/proc/<pid>` ("pid (comm) state ppid ...").
fn parent_of(pid: &str) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// sshd on a dual-stack socket reports IPv4 clients as `::ffff:a.b.c.d`.
fn unmap(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    }
}

impl fmt::Display for SshSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "from {} port {} to port {}",
            self.client, self.client_port, self.server_port
        )
    }
}

/// `None` when a new connection like `session` would be accepted; otherwise why not.
///
/// Decided by [`guard::decide`] (the same steps the bash script's guard runs)
/// for the interface the session arrives on (`ip -o route get CLIENT`: the
/// route back to the client; `lo` for a local address). When that route cannot
/// be read, the connection must be accepted on every interface of the host.
pub(crate) fn refusal(
    model: &Model,
    session: &SshSession,
    sys: &dyn System,
    host_ifaces: &[String],
) -> Option<String> {
    let port = Port::new(session.server_port)?;
    let (devs, known) = match route_dev(sys, session.client) {
        Some(dev) => (vec![dev], true),
        None if host_ifaces.is_empty() => (
            model.extif.iter().map(|e| e.as_str().to_string()).collect(),
            false,
        ),
        None => (host_ifaces.to_vec(), false),
    };
    for dev in devs {
        let d = guard::decide(model, &dev, session.client, port);
        if !d.accepted {
            let route = if known {
                String::new()
            } else {
                format!(
                    " (the route to {} could not be read, so every interface must accept it)",
                    session.client
                )
            };
            return Some(format!(
                "a new connection to tcp {port} arriving on {dev} ({} interface) would not be accepted{route}: {}",
                d.arrival.as_str(),
                d.why
            ));
        }
    }
    None
}

/// The interface the kernel would use to reach `addr` (`ip -o route get`).
fn route_dev(sys: &dyn System, addr: IpAddr) -> Option<String> {
    let a = addr.to_string();
    let out = sys.run("ip", &["-o", "route", "get", &a], None).ok()?;
    if !out.success() {
        return None;
    }
    let mut words = out.stdout.split_whitespace();
    while let Some(w) = words.next() {
        if w == "dev" {
            return words.next().map(str::to_string);
        }
    }
    None
}

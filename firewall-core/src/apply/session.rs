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
/// An IPv6 link-local client carries its zone: `fe80::1%eth0`. The zone is
/// the interface the session arrives on; it is kept in [`SshSession::arrival`]
/// and the guard checks that interface (no route lookup).
///
/// ```
/// use firewall_core::apply::SshSession;
/// let s = SshSession::parse_connection("203.0.113.9 50000 198.51.100.1 22").unwrap();
/// assert_eq!(s.server_port, 22);
/// assert_eq!(s.arrival, None);
/// assert_eq!(s.to_string(), "from 203.0.113.9 port 50000 to port 22");
/// let s = SshSession::parse_connection("fe80::1%eth0 50000 fe80::2%eth0 22").unwrap();
/// assert_eq!(s.client.to_string(), "fe80::1");
/// assert_eq!(s.arrival.as_deref(), Some("eth0"));
/// assert_eq!(s.to_string(), "from fe80::1%eth0 port 50000 to port 22");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSession {
    /// The administrator's address (without a `%zone`).
    pub client: IpAddr,
    /// The administrator's port.
    pub client_port: u16,
    /// The local port sshd accepted the session on.
    pub server_port: u16,
    /// The interface the session arrives on when the client address names it
    /// (the zone of an IPv6 link-local address, `fe80::1%eth0`); `None`: the
    /// guard asks the kernel for the route back to the client.
    pub arrival: Option<String>,
}

impl SshSession {
    /// Parses `SSH_CONNECTION`.
    pub fn parse_connection(value: &str) -> Option<SshSession> {
        let f: Vec<&str> = value.split_whitespace().collect();
        if f.len() != 4 {
            return None;
        }
        let (client, arrival) = client_addr(f[0])?;
        Some(SshSession {
            client,
            client_port: f[1].parse().ok()?,
            server_port: f[3].parse().ok()?,
            arrival,
        })
    }

    /// Parses `SSH_CLIENT`.
    pub fn parse_client(value: &str) -> Option<SshSession> {
        let f: Vec<&str> = value.split_whitespace().collect();
        if f.len() != 3 {
            return None;
        }
        let (client, arrival) = client_addr(f[0])?;
        Some(SshSession {
            client,
            client_port: f[1].parse().ok()?,
            server_port: f[2].parse().ok()?,
            arrival,
        })
    }

    /// The session this process runs in (`None` outside SSH): from its own
    /// environment, else from its ancestors' (`sudo` drops `SSH_CONNECTION` by
    /// default, but the login shell that ran `sudo` still has it).
    ///
    /// Also `None` when the variable is set but cannot be read; [`super::apply`]
    /// refuses that case ([`super::ApplyError::SessionUnreadable`]).
    pub fn from_env() -> Option<SshSession> {
        Self::detect().ok().flatten()
    }

    /// [`SshSession::from_env`], but a variable that is set (the first of
    /// `SSH_CONNECTION`, `SSH_CLIENT` that is not empty, in this process's
    /// environment or else the nearest ancestor's) and cannot be read is an
    /// error: `(variable, value)`.
    pub(crate) fn detect() -> Result<Option<SshSession>, (String, String)> {
        let own = |name: &str| std::env::var(name).ok();
        if let Some(s) = SshSession::from_vars(own("SSH_CONNECTION"), own("SSH_CLIENT")) {
            return s.map(Some);
        }
        let Some(mut pid) = parent_of("self") else {
            return Ok(None);
        };
        // Bounded: a process tree is not deeper than this in practice.
        for _ in 0..64 {
            if pid <= 1 {
                return Ok(None);
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
                    return s.map(Some);
                }
            }
            let Some(next) = parent_of(&pid.to_string()) else {
                return Ok(None);
            };
            pid = next;
        }
        Ok(None)
    }

    /// `None`: neither variable is set (or both are empty). Otherwise the
    /// first that is set decides: `SSH_CONNECTION`, else `SSH_CLIENT`.
    pub(crate) fn from_vars(
        connection: Option<String>,
        client: Option<String>,
    ) -> Option<Result<SshSession, (String, String)>> {
        let unreadable = |name: &str, v: &str| (name.to_string(), v.to_string());
        match (connection, client) {
            (Some(c), _) if !c.is_empty() => Some(
                SshSession::parse_connection(&c).ok_or_else(|| unreadable("SSH_CONNECTION", &c)),
            ),
            (_, Some(c)) if !c.is_empty() => {
                Some(SshSession::parse_client(&c).ok_or_else(|| unreadable("SSH_CLIENT", &c)))
            }
            _ => None,
        }
    }
}

/// A client address as sshd writes it: plain, `::ffff:`-mapped IPv4, or IPv6
/// with a `%zone` (link-local: the interface; a numeric zone is an interface
/// index, looked up in `/sys/class/net`). An unknown zone is `None`.
fn client_addr(text: &str) -> Option<(IpAddr, Option<String>)> {
    match text.split_once('%') {
        None => Some((unmap(text.parse().ok()?), None)),
        Some((addr, zone)) => {
            let addr: std::net::Ipv6Addr = addr.parse().ok()?;
            if zone.is_empty() || crate::model::Iface::new(zone).is_err() {
                return None;
            }
            let dev = if zone.bytes().all(|b| b.is_ascii_digit()) {
                iface_by_index(zone)?
            } else {
                zone.to_string()
            };
            Some((IpAddr::V6(addr), Some(dev)))
        }
    }
}

/// The interface with index `index` (`/sys/class/net/*/ifindex`).
fn iface_by_index(index: &str) -> Option<String> {
    std::fs::read_dir("/sys/class/net")
        .ok()?
        .flatten()
        .find(|e| {
            std::fs::read_to_string(e.path().join("ifindex")).is_ok_and(|i| i.trim() == index)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
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
        write!(f, "from {}", self.client)?;
        if let Some(dev) = &self.arrival {
            write!(f, "%{dev}")?;
        }
        write!(f, " port {} to port {}", self.client_port, self.server_port)
    }
}

/// `None` when a new connection like `session` would be accepted; otherwise why not.
///
/// Decided by [`guard::decide`] (the same steps the bash script's guard runs)
/// for the interface the session arrives on (the zone of a link-local client,
/// else `ip -o route get CLIENT`: the route back to the client; `lo` for a
/// local address). When that route cannot
/// be read, the connection must be accepted on every interface of the host.
pub(crate) fn refusal(
    model: &Model,
    session: &SshSession,
    sys: &dyn System,
    host_ifaces: &[String],
) -> Option<String> {
    let port = Port::new(session.server_port)?;
    let route = match &session.arrival {
        Some(dev) => Some(dev.clone()),
        None => route_dev(sys, session.client),
    };
    let (devs, known) = match route {
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

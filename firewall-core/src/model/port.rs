//! Ports and port ranges: a [`Port`] is never 0, a [`PortRange`] never runs backwards.

use std::fmt;
use std::num::NonZeroU16;

/// A TCP/UDP port, 1..=65535.
///
/// ```
/// use firewall_core::model::Port;
/// assert_eq!(Port::new(22).map(Port::get), Some(22));
/// assert!(Port::new(0).is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port(NonZeroU16);

impl Port {
    /// The port `n`, or `None` for 0.
    pub const fn new(n: u16) -> Option<Port> {
        match NonZeroU16::new(n) {
            Some(p) => Some(Port(p)),
            None => None,
        }
    }

    /// The port number.
    pub const fn get(self) -> u16 {
        self.0.get()
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}

/// An inclusive range of ports; a single port is a range of one.
///
/// ```
/// use firewall_core::model::{Port, PortRange};
/// let p = |n| Port::new(n).unwrap();
/// let r = PortRange::new(p(8000), p(8080)).unwrap();
/// assert!(r.contains(p(8042)));
/// assert!(PortRange::new(p(9), p(1)).is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    start: Port,
    end: Port,
}

impl PortRange {
    /// `start..=end`, or `None` if `start > end`.
    pub const fn new(start: Port, end: Port) -> Option<PortRange> {
        if start.get() <= end.get() {
            Some(PortRange { start, end })
        } else {
            None
        }
    }

    /// The range holding only `port`.
    pub const fn single(port: Port) -> PortRange {
        PortRange {
            start: port,
            end: port,
        }
    }

    /// First port of the range.
    pub const fn start(self) -> Port {
        self.start
    }

    /// Last port of the range (inclusive).
    pub const fn end(self) -> Port {
        self.end
    }

    /// Whether this is a single port.
    pub const fn is_single(self) -> bool {
        self.start.get() == self.end.get()
    }

    /// Whether `port` is inside the range.
    pub const fn contains(self, port: Port) -> bool {
        self.start.get() <= port.get() && port.get() <= self.end.get()
    }

    /// Whether the two ranges share at least one port.
    pub const fn overlaps(self, other: PortRange) -> bool {
        self.start.get() <= other.end.get() && other.start.get() <= self.end.get()
    }
}

impl From<Port> for PortRange {
    fn from(port: Port) -> Self {
        PortRange::single(port)
    }
}

/// Written as in the policy language: `22` or `8000..=8080`.
impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}..={}", self.start, self.end)
        }
    }
}

/// A transport protocol that has ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// The lowercase name used by the policy language, iptables and nftables.
    pub const fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Writes `22, 80, 8000..=8080`.
pub(crate) fn fmt_ports(f: &mut fmt::Formatter<'_>, ports: &[PortRange]) -> fmt::Result {
    for (i, p) in ports.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{p}")?;
    }
    Ok(())
}

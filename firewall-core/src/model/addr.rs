//! Addresses and networks: a [`Net`] has no host bits, a [`Host`] is a unicast IPv4 host.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address or network is not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrError {
    /// Not an IPv4/IPv6 address at all.
    Malformed(String),
    /// The prefix length is larger than the address family allows.
    PrefixTooLong {
        /// The prefix as written.
        prefix: String,
        /// 32 or 128.
        max: u8,
    },
    /// `198.51.100.7/24`: host bits set; `network` is what was probably meant.
    HostBits {
        /// The network with the host bits cleared.
        network: Net,
    },
    /// A NAT target that is not a single reachable IPv4 host.
    NotUnicast(String),
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrError::Malformed(s) => write!(f, "`{s}` is not an IPv4 or IPv6 address"),
            AddrError::PrefixTooLong { prefix, max } => {
                write!(
                    f,
                    "prefix /{prefix} is longer than the address (at most /{max})"
                )
            }
            AddrError::HostBits { network } => write!(
                f,
                "the network has host bits set (the address part should be {})",
                network.addr()
            ),
            AddrError::NotUnicast(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for AddrError {}

/// An IPv4 or IPv6 network with no host bits set (`198.51.100.0/24`, `2001:db8::/32`).
///
/// ```
/// use firewall_core::model::Net;
/// let n: Net = "198.51.100.0/24".parse().unwrap();
/// assert_eq!(n.to_string(), "198.51.100.0/24");
/// assert!("198.51.100.7/24".parse::<Net>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    /// `fe80::/10`: IPv6 link-local unicast addresses.
    pub const IPV6_LINK_LOCAL: Net = Net {
        addr: IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)),
        prefix: 10,
    };

    /// `::/128`: the IPv6 unspecified address (a sender that has none yet).
    pub const IPV6_UNSPECIFIED: Net = Net {
        addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        prefix: 128,
    };

    /// `ff02::1:2/128`: All_DHCP_Relay_Agents_and_Servers (RFC 8415).
    pub const IPV6_ALL_DHCP_SERVERS: Net = Net {
        addr: IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2)),
        prefix: 128,
    };

    /// `addr/prefix`, checked: the prefix fits the family and no host bits are set.
    pub fn new(addr: IpAddr, prefix: u32) -> Result<Net, AddrError> {
        let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
        let too_long = || AddrError::PrefixTooLong {
            prefix: prefix.to_string(),
            max,
        };
        let prefix = u8::try_from(prefix).map_err(|_| too_long())?;
        if prefix > max {
            return Err(too_long());
        }
        let network = Net {
            addr: mask(addr, prefix),
            prefix,
        };
        if network.addr != addr {
            return Err(AddrError::HostBits { network });
        }
        Ok(network)
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether this is an IPv4 network.
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// Whether `other` lies entirely inside `self`.
    pub fn contains_net(&self, other: &Net) -> bool {
        self.addr.is_ipv4() == other.addr.is_ipv4()
            && self.prefix <= other.prefix
            && mask(other.addr, self.prefix) == self.addr
    }

    /// The network of `prefix` bits that contains this one (`None` if `prefix`
    /// is longer than this network's own).
    ///
    /// ```
    /// use firewall_core::model::Net;
    /// let n: Net = "198.51.100.128/25".parse().unwrap();
    /// assert_eq!(n.supernet(24).unwrap().to_string(), "198.51.100.0/24");
    /// assert!(n.supernet(26).is_none());
    /// ```
    pub fn supernet(&self, prefix: u8) -> Option<Net> {
        (prefix <= self.prefix).then(|| Net {
            addr: mask(self.addr, prefix),
            prefix,
        })
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

impl std::str::FromStr for Net {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<Net, AddrError> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| AddrError::Malformed(s.to_string()))?;
        let addr: IpAddr = a.parse().map_err(|_| AddrError::Malformed(s.to_string()))?;
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AddrError::Malformed(s.to_string()));
        }
        match p.parse::<u32>() {
            Ok(prefix) => Net::new(addr, prefix),
            // More digits than any prefix: report it as written.
            Err(_) => Err(AddrError::PrefixTooLong {
                prefix: p.to_string(),
                max: if addr.is_ipv4() { 32 } else { 128 },
            }),
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A unicast IPv4 host, the only thing NAT can send a connection to.
///
/// ```
/// use firewall_core::model::Host;
/// assert!(Host::new("192.168.125.22".parse().unwrap()).is_ok());
/// assert!(Host::new("127.0.0.1".parse().unwrap()).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Host(Ipv4Addr);

impl Host {
    /// Checks that `addr` is a single unicast host.
    pub fn new(addr: Ipv4Addr) -> Result<Host, AddrError> {
        let why = if addr.is_unspecified() {
            "0.0.0.0 is \"any address\", not a host"
        } else if addr.is_loopback() {
            "127.0.0.0/8 is this machine's loopback; other hosts cannot be reached there"
        } else if addr.is_multicast() {
            "a multicast address is a group, not a host"
        } else if addr.is_broadcast() {
            "255.255.255.255 is the broadcast address, not a host"
        } else if addr.octets()[0] >= 240 {
            "240.0.0.0/4 is reserved and cannot be a host"
        } else {
            return Ok(Host(addr));
        };
        Err(AddrError::NotUnicast(why.to_string()))
    }

    /// The address.
    pub fn addr(&self) -> Ipv4Addr {
        self.0
    }
}

/// The host as a network of one address (`203.0.113.2/32`).
impl From<Host> for Net {
    fn from(host: Host) -> Net {
        Net {
            addr: IpAddr::V4(host.0),
            prefix: 32,
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

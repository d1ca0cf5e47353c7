//! The failsafe window: more than zero, at most one hour.

use std::fmt;
use std::time::Duration;

/// How long a newly applied policy waits for confirmation before the previous
/// rules come back. Always 1 second ..= 1 hour.
///
/// ```
/// use firewall_core::model::Failsafe;
/// assert_eq!(Failsafe::from_secs(10).map(|f| f.as_secs()), Some(10));
/// assert!(Failsafe::from_secs(0).is_none());
/// assert!(Failsafe::from_secs(3601).is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Failsafe(u16);

impl Failsafe {
    /// The longest window allowed: one hour.
    pub const MAX_SECS: u64 = 3600;

    /// A window of `secs` seconds, or `None` when 0 or over an hour.
    pub const fn from_secs(secs: u64) -> Option<Failsafe> {
        if secs == 0 || secs > Self::MAX_SECS {
            None
        } else {
            Some(Failsafe(secs as u16))
        }
    }

    /// A window from a [`Duration`] (whole seconds, rounded up).
    pub fn from_duration(d: Duration) -> Option<Failsafe> {
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        Failsafe::from_secs(secs)
    }

    /// Seconds in the window.
    pub const fn as_secs(self) -> u64 {
        self.0 as u64
    }

    /// The window as a [`Duration`].
    pub const fn as_duration(self) -> Duration {
        Duration::from_secs(self.0 as u64)
    }
}

/// Written as in the policy language: `90s`, or `5min` when whole minutes.
impl fmt::Display for Failsafe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 60 && self.0.is_multiple_of(60) {
            write!(f, "{}min", self.0 / 60)
        } else {
            write!(f, "{}s", self.0)
        }
    }
}

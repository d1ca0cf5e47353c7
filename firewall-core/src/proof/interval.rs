//! Sets of integers as sorted, disjoint, inclusive intervals: the address and
//! port dimensions of a packet class. Splitting a class at a rule is a few
//! intersections and differences of these, whatever the number of ports or
//! addresses they hold.

use crate::model::{Net, PortRange};
use std::net::IpAddr;

/// A set of integers (addresses as `u128`, ports), as sorted, disjoint,
/// non-adjacent inclusive intervals.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IntervalSet(Vec<(u128, u128)>);

impl IntervalSet {
    /// The empty set.
    pub fn empty() -> IntervalSet {
        IntervalSet(Vec::new())
    }

    /// `start..=end` (empty if `start > end`).
    pub fn range(start: u128, end: u128) -> IntervalSet {
        if start > end {
            IntervalSet::empty()
        } else {
            IntervalSet(vec![(start, end)])
        }
    }

    /// The set of these intervals, in any order, overlapping or not.
    pub fn of(intervals: impl IntoIterator<Item = (u128, u128)>) -> IntervalSet {
        let mut v: Vec<(u128, u128)> = intervals.into_iter().filter(|(a, b)| a <= b).collect();
        v.sort_unstable();
        let mut out: Vec<(u128, u128)> = Vec::with_capacity(v.len());
        for (a, b) in v {
            match out.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        IntervalSet(out)
    }

    /// Every port, 1..=65535.
    pub fn all_ports() -> IntervalSet {
        IntervalSet::range(1, 65535)
    }

    /// These port ranges.
    pub fn ports(ranges: &[PortRange]) -> IntervalSet {
        IntervalSet::of(
            ranges
                .iter()
                .map(|r| (u128::from(r.start().get()), u128::from(r.end().get()))),
        )
    }

    /// Every address of a family: IPv4 as `0..=2^32-1`, IPv6 as all of `u128`.
    pub fn all_addresses(v4: bool) -> IntervalSet {
        IntervalSet::range(0, if v4 { u128::from(u32::MAX) } else { u128::MAX })
    }

    /// The addresses of these networks (of one family).
    pub fn nets<'a>(nets: impl IntoIterator<Item = &'a Net>) -> IntervalSet {
        IntervalSet::of(nets.into_iter().map(net_interval))
    }

    /// The intervals, sorted.
    pub fn intervals(&self) -> &[(u128, u128)] {
        &self.0
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether it holds exactly one value, and which.
    pub fn single(&self) -> Option<u128> {
        match self.0.as_slice() {
            [(a, b)] if a == b => Some(*a),
            _ => None,
        }
    }

    /// Whether `v` is in it.
    pub fn contains(&self, v: u128) -> bool {
        let i = self.0.partition_point(|&(_, b)| b < v);
        self.0.get(i).is_some_and(|&(a, _)| a <= v)
    }

    /// The values in both.
    pub fn intersect(&self, other: &IntervalSet) -> IntervalSet {
        let (mut i, mut j, mut out) = (0, 0, Vec::new());
        while i < self.0.len() && j < other.0.len() {
            let (a1, b1) = self.0[i];
            let (a2, b2) = other.0[j];
            let (a, b) = (a1.max(a2), b1.min(b2));
            if a <= b {
                out.push((a, b));
            }
            if b1 < b2 {
                i += 1;
            } else {
                j += 1;
            }
        }
        IntervalSet(out)
    }

    /// The values of `self` not in `other`.
    pub fn minus(&self, other: &IntervalSet) -> IntervalSet {
        let mut out = Vec::new();
        let mut j = 0;
        for &(a, b) in &self.0 {
            let mut start = a;
            let mut open = true;
            while j < other.0.len() && other.0[j].1 < start {
                j += 1;
            }
            let mut k = j;
            while k < other.0.len() && other.0[k].0 <= b {
                let (c, d) = other.0[k];
                if c > start {
                    out.push((start, c - 1));
                }
                if d >= b {
                    open = false;
                    break;
                }
                start = d + 1;
                k += 1;
            }
            if open {
                out.push((start, b));
            }
        }
        IntervalSet(out)
    }
}

/// The first and last address of `net`, as integers of its family.
pub fn net_interval(net: &Net) -> (u128, u128) {
    let (addr, bits) = match net.addr() {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    };
    let host_bits = bits - u32::from(net.prefix());
    let mask = if host_bits == 0 {
        0
    } else if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    (addr & !mask, addr | mask)
}

#[cfg(test)]
mod tests {
    use super::IntervalSet;

    #[test]
    fn union_intersection_difference() {
        let a = IntervalSet::of([(10, 20), (1, 3), (4, 5), (30, 40)]);
        assert_eq!(a.intervals(), &[(1, 5), (10, 20), (30, 40)]);
        let b = IntervalSet::of([(3, 12), (35, 35)]);
        assert_eq!(a.intersect(&b).intervals(), &[(3, 5), (10, 12), (35, 35)]);
        assert_eq!(
            a.minus(&b).intervals(),
            &[(1, 2), (13, 20), (30, 34), (36, 40)]
        );
        assert!(a.minus(&a).is_empty());
        assert_eq!(
            IntervalSet::all_ports()
                .minus(&IntervalSet::of([(22, 22), (80, 80)]))
                .intervals(),
            &[(1, 21), (23, 79), (81, 65535)]
        );
        assert!(a.contains(35) && !a.contains(25) && !a.contains(0));
        let all = IntervalSet::range(0, u128::MAX);
        assert_eq!(
            all.minus(&IntervalSet::range(u128::MAX, u128::MAX))
                .intervals(),
            &[(0, u128::MAX - 1)]
        );
    }
}

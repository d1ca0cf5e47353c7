//! The SSH-session guard: what the rendered rules do with a NEW TCP connection
//! from a client to a local port, arriving on a given interface.
//!
//! The decision is written once, as a list of [`Step`]s per arrival class and
//! address family ([`steps`]), built from the same model facts the renderer in
//! [`super::iptables`] turns into rules: `INPUT` accepts `lo`, sends the
//! external interfaces (`-i EXT -g ext-in`, wildcards included) to `ext-in`,
//! then accepts the trusted interfaces (without `trust`: every other
//! interface); IPv4 `nat PREROUTING` applies `dnat` and `redirect` on the
//! external interfaces first (first match wins); `ext-in` accepts the `open`s
//! (per source network of the family) and the redirected connections; what is
//! left meets the input policy. Two interpreters read the steps: [`decide`]
//! (for `apply()`) and the bash function [`bash`] emits (for the script), so the
//! two guards cannot disagree. Tests run both on the same cases, and the kernel
//! tests check the verdict against real traffic.
//!
//! A session's `server_port` is the port sshd sees, i.e. after a `redirect`: a
//! session that came in through `redirect 22 -> 2222` shows port 2222. So a
//! connection to local port P counts as accepted when a new connection either
//! reaches P directly or reaches it through a `redirect X -> P` (the same way
//! in). A `dnat` or `redirect` *from* P sends new connections to P elsewhere:
//! that is a refusal.
//!
//! ```
//! use firewall_core::render::guard::decide;
//! let m = firewall_core::Policy::parse("extif eth0; open tcp 22 from 198.51.100.0/24;").unwrap();
//! let port = firewall_core::model::Port::new(22).unwrap();
//! assert!(decide(m.model(), "eth0", "198.51.100.7".parse().unwrap(), port).accepted);
//! assert!(!decide(m.model(), "eth0", "192.0.2.7".parse().unwrap(), port).accepted);
//! assert!(decide(m.model(), "eth1", "192.0.2.7".parse().unwrap(), port).accepted); // trusted
//! ```

use crate::model::{Model, Net, Port, PortRange, Proto};
use std::fmt::Write as _;
use std::net::IpAddr;

/// How the rendered `INPUT` chain sorts the interface a packet arrives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// `lo`: always accepted.
    Loopback,
    /// An `extif` (or a match of an `extif` wildcard): `ext-in` decides.
    External,
    /// Trusted (a `trust` interface, or any non-external one without `trust`).
    Trusted,
    /// Neither external nor trusted (only with `trust`): the input policy decides.
    Untrusted,
}

impl Arrival {
    /// `loopback`, `external`, `trusted`, `untrusted` (the bash guard's words).
    pub const fn as_str(self) -> &'static str {
        match self {
            Arrival::Loopback => "loopback",
            Arrival::External => "external",
            Arrival::Trusted => "trusted",
            Arrival::Untrusted => "untrusted",
        }
    }
}

/// `ppp+` matches `ppp0`, as `-i ppp+` does in iptables.
pub fn iface_matches(pattern: &str, dev: &str) -> bool {
    match pattern.strip_suffix('+') {
        Some(prefix) => dev.starts_with(prefix),
        None => pattern == dev,
    }
}

/// How a packet arriving on `dev` is sorted (the order of the `INPUT` chain).
pub fn arrival(model: &Model, dev: &str) -> Arrival {
    if dev == "lo" {
        Arrival::Loopback
    } else if model.extif.iter().any(|e| iface_matches(e.as_str(), dev)) {
        Arrival::External
    } else {
        match &model.trust {
            None => Arrival::Trusted,
            Some(t) if t.iter().any(|i| iface_matches(i.as_str(), dev)) => Arrival::Trusted,
            Some(_) => Arrival::Untrusted,
        }
    }
}

/// One step of the decision: when the port is in `ports` (if given) and the
/// client in `sources` (if given), the connection is accepted or not, for `why`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The local ports the step is about (`None`: any).
    pub ports: Option<Vec<PortRange>>,
    /// The client networks (of the step's family) it is about (`None`: any).
    pub sources: Option<Vec<Net>>,
    /// The verdict.
    pub accept: bool,
    /// Why, in words.
    pub why: String,
}

impl Step {
    fn new(ports: Option<Vec<PortRange>>, accept: bool, why: String) -> Step {
        Step {
            ports,
            sources: None,
            accept,
            why,
        }
    }

    fn applies(&self, client: IpAddr, port: Port) -> bool {
        self.ports
            .as_ref()
            .is_none_or(|p| p.iter().any(|r| r.contains(port)))
            && self.sources.as_ref().is_none_or(|nets| {
                let host = Net::new(client, if client.is_ipv4() { 32 } else { 128 });
                host.is_ok_and(|h| nets.iter().any(|n| n.contains_net(&h)))
            })
    }
}

fn single(p: Port) -> Vec<PortRange> {
    vec![PortRange::single(p)]
}

/// The steps for a new TCP connection arriving as `arrival` over IPv4
/// (`ipv4`) or IPv6; the first that applies decides, the last always applies.
pub fn steps(model: &Model, arrival: Arrival, ipv4: bool) -> Vec<Step> {
    let policy = model.input;
    let policy_step = |why: &str| {
        Step::new(
            None,
            !policy.blocks(),
            format!("{why} the input policy is {}", policy.as_str()),
        )
    };
    match arrival {
        Arrival::Loopback => vec![Step::new(None, true, "loopback is always accepted".into())],
        Arrival::Trusted => vec![Step::new(
            None,
            true,
            match &model.trust {
                None => "every interface that is not external is trusted".into(),
                Some(_) => "the interface is trusted".into(),
            },
        )],
        Arrival::Untrusted => vec![policy_step(
            "the interface is neither external nor in `trust`, and",
        )],
        Arrival::External => {
            let mut out = Vec::new();
            if ipv4 {
                // nat PREROUTING on the external interfaces: dnats, then
                // redirects; the first rule matching the port wins.
                let tcp_dnats = model.dnats.iter().filter(|d| d.proto == Proto::Tcp);
                let tcp_redirects: Vec<_> = model
                    .redirects
                    .iter()
                    .filter(|r| r.proto == Proto::Tcp)
                    .collect();
                let first_nat_is = |port: Port, idx: usize| {
                    !model
                        .dnats
                        .iter()
                        .any(|d| d.proto == Proto::Tcp && d.port == port)
                        && tcp_redirects.iter().position(|r| r.port == port) == Some(idx)
                };
                // In through a redirect to the port (ext-in accepts exactly those).
                for (i, r) in tcp_redirects.iter().enumerate() {
                    if first_nat_is(r.port, i) {
                        out.push(Step::new(
                            Some(single(r.to_port)),
                            true,
                            format!("`{r}` brings new connections to port {} to it", r.port),
                        ));
                    }
                }
                for d in tcp_dnats {
                    out.push(Step::new(
                        Some(single(d.port)),
                        false,
                        format!(
                            "`{d}` sends new connections to that port on to {}:{}",
                            d.to, d.to_port
                        ),
                    ));
                }
                for r in &tcp_redirects {
                    out.push(Step::new(
                        Some(single(r.port)),
                        false,
                        format!(
                            "`{r}` sends new connections to that port to local port {}",
                            r.to_port
                        ),
                    ));
                }
            }
            let tcp_opens: Vec<_> = model
                .opens
                .iter()
                .filter(|o| o.proto == Proto::Tcp)
                .collect();
            for o in &tcp_opens {
                match o.sources(ipv4) {
                    None => out.push(Step::new(Some(o.ports.clone()), true, format!("`{o}`"))),
                    Some(nets) if !nets.is_empty() => out.push(Step {
                        ports: Some(o.ports.clone()),
                        sources: Some(nets),
                        accept: true,
                        why: format!("`{o}`"),
                    }),
                    Some(_) => {}
                }
            }
            if policy.blocks() {
                for o in tcp_opens.iter().filter(|o| !o.from.is_empty()) {
                    out.push(Step::new(
                        Some(o.ports.clone()),
                        false,
                        format!("`{o}` opens it only to sources that do not include the client"),
                    ));
                }
            }
            out.push(policy_step("no `open` accepts it and"));
            out
        }
    }
}

/// What the rules do with a new TCP connection from `client` to local `port`
/// arriving on `dev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// How `dev` is sorted.
    pub arrival: Arrival,
    /// Whether the connection is accepted.
    pub accepted: bool,
    /// Why.
    pub why: String,
}

/// Evaluates [`steps`] for a new TCP connection from `client` to `port` on `dev`.
pub fn decide(model: &Model, dev: &str, client: IpAddr, port: Port) -> Decision {
    let arrival = arrival(model, dev);
    let steps = steps(model, arrival, client.is_ipv4());
    let step = steps.iter().find(|s| s.applies(client, port));
    Decision {
        arrival,
        accepted: step.is_some_and(|s| s.accept),
        why: step.map_or_else(|| "no rule decides it".into(), |s| s.why.clone()),
    }
}

/// Single-quotes `s` for bash (model values never contain `'`; this is the backstop).
fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Shell helpers of the bash guard: IPv4/IPv6 parsing and CIDR matching, port
/// ranges, the session from the environment (own or an ancestor's, as `sudo`
/// drops `SSH_CONNECTION`), and the interface towards the client.
pub const BASH_HELPERS: &str = r#"# fw_ip4 ADDR: ADDR (dotted quad) as an integer; fails for anything else.
fw_ip4() {
  local a b c d
  [[ $1 =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || return 1
  a=$((10#${BASH_REMATCH[1]}))
  b=$((10#${BASH_REMATCH[2]}))
  c=$((10#${BASH_REMATCH[3]}))
  d=$((10#${BASH_REMATCH[4]}))
  ((a <= 255 && b <= 255 && c <= 255 && d <= 255)) || return 1
  printf '%s\n' $(((a << 24) | (b << 16) | (c << 8) | d))
}

# fw_ip6 ADDR: the eight 16-bit groups of IPv6 ADDR in decimal; fails for anything else.
fw_ip6() {
  local s=$1 head tail n g v4 out=()
  local -a h=() t=() groups=()
  [[ $s == *:* && $s =~ ^[0-9A-Fa-f:.]+$ ]] || return 1
  if [[ $s == *.* ]]; then
    v4=$(fw_ip4 "${s##*:}") || return 1
    s="${s%:*}:$(printf '%x:%x' $((v4 >> 16)) $((v4 & 65535)))"
  fi
  if [[ $s == *::* ]]; then
    head=${s%%::*}
    tail=${s#*::}
    [[ $tail != *::* ]] || return 1
    [ -z "$head" ] || IFS=: read -r -a h <<<"$head"
    [ -z "$tail" ] || IFS=: read -r -a t <<<"$tail"
    n=$((8 - ${#h[@]} - ${#t[@]}))
    ((n >= 1)) || return 1
    groups=("${h[@]}")
    while ((n > 0)); do
      groups+=(0)
      n=$((n - 1))
    done
    groups+=("${t[@]}")
  else
    [[ $s != :* && $s != *: ]] || return 1
    IFS=: read -r -a groups <<<"$s"
  fi
  ((${#groups[@]} == 8)) || return 1
  for g in "${groups[@]}"; do
    [[ $g =~ ^[0-9A-Fa-f]{1,4}$ ]] || return 1
    out+=($((16#$g)))
  done
  printf '%s\n' "${out[*]}"
}

# fw_net_has NET/PREFIX ADDR: whether ADDR lies in NET (same family only).
fw_net_has() {
  local net=${1%/*} p=${1##*/} a n m bits i
  local -a ag ng
  if [[ $2 == *:* ]]; then
    [[ $net == *:* ]] || return 1
    read -r -a ag <<<"$(fw_ip6 "$2")" || return 1
    read -r -a ng <<<"$(fw_ip6 "$net")" || return 1
    ((${#ag[@]} == 8 && ${#ng[@]} == 8)) || return 1
    for i in 0 1 2 3 4 5 6 7; do
      bits=$((p - 16 * i))
      ((bits > 16)) && bits=16
      ((bits > 0)) || return 0
      m=$(((65535 << (16 - bits)) & 65535))
      (((ag[i] & m) == (ng[i] & m))) || return 1
    done
    return 0
  fi
  [[ $net != *:* ]] || return 1
  a=$(fw_ip4 "$2") || return 1
  n=$(fw_ip4 "$net") || return 1
  m=0
  ((p == 0)) || m=$(((4294967295 << (32 - p)) & 4294967295))
  (((a & m) == (n & m)))
}

# fw_port_in PORT START END [START END ...]: whether PORT is in one of the ranges.
fw_port_in() {
  local port=$1
  shift
  while (($# >= 2)); do
    if ((port >= $1 && port <= $2)); then
      return 0
    fi
    shift 2
  done
  return 1
}

# fw_env_of PID NAME: the value of NAME in the environment of process PID.
fw_env_of() {
  local kv
  [ -r "/proc/$1/environ" ] || return 1
  while IFS= read -r -d '' kv; do
    case $kv in
    "$2="*)
      printf '%s\n' "${kv#*=}"
      return 0
      ;;
    esac
  done <"/proc/$1/environ"
  return 1
}

# fw_session_parse CONNECTION CLIENT: the first of SSH_CONNECTION (client
# cport server sport), SSH_CLIENT (client cport sport) that is set decides:
# sets fw_s_var (its name), fw_s_raw (its value) and fw_s_client/fw_s_port
# (empty when the value has the wrong number of fields); fails if neither is set.
fw_session_parse() {
  local a b c d e
  fw_s_client=
  fw_s_port=
  if [ -n "$1" ]; then
    fw_s_var=SSH_CONNECTION
    fw_s_raw=$1
    read -r a b c d e <<<"$1"
    if [ -n "$d" ] && [ -z "$e" ]; then
      fw_s_client=$a
      fw_s_port=$d
    fi
    return 0
  fi
  if [ -n "$2" ]; then
    fw_s_var=SSH_CLIENT
    fw_s_raw=$2
    read -r a b c d <<<"$2"
    if [ -n "$c" ] && [ -z "$d" ]; then
      fw_s_client=$a
      fw_s_port=$c
    fi
    return 0
  fi
  return 1
}

# fw_session: the SSH session this script runs in, from its own environment or
# an ancestor's; sets fw_s_* (see fw_session_parse), fails outside SSH.
fw_session() {
  local pid stat ppid n=0
  fw_session_parse "${SSH_CONNECTION:-}" "${SSH_CLIENT:-}" && return 0
  pid=$PPID
  while ((n < 64 && pid > 1)); do
    if fw_session_parse "$(fw_env_of "$pid" SSH_CONNECTION)" "$(fw_env_of "$pid" SSH_CLIENT)"; then
      return 0
    fi
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    read -r _ ppid _ <<<"${stat##*) }"
    [[ $ppid =~ ^[0-9]+$ ]] || return 1
    pid=$ppid
    n=$((n + 1))
  done
  return 1
}

# fw_route_dev ADDR: the interface the kernel uses to reach ADDR (lo for a local one).
fw_route_dev() {
  local out w prev=
  out=$(timeout 5 ip -o route get "$1" 2>/dev/null) || return 1
  for w in $out; do
    if [ "$prev" = dev ]; then
      printf '%s\n' "$w"
      return 0
    fi
    prev=$w
  done
  return 1
}

# fw_host_ifaces: this host's interfaces (of this network namespace), one a line.
fw_host_ifaces() {
  sed -n 's/^ *\([^: ]*\):.*/\1/p' /proc/net/dev
}
"#;

/// The bash functions of the guard for `model`: `fw_guard_arrival DEV`
/// (prints [`Arrival::as_str`]) and `fw_guard_decide ARRIVAL FAMILY PORT CLIENT`
/// (status 0 when accepted; the reason in `fw_guard_why`), generated from
/// [`arrival`]'s patterns and [`steps`]. Needs [`BASH_HELPERS`].
pub fn bash(model: &Model) -> String {
    let mut s = String::new();
    s.push_str("# fw_guard_arrival DEV: how the INPUT chain sorts DEV.\nfw_guard_arrival() {\n  case $1 in\n  lo) echo loopback ;;\n");
    let pat = |i: &str| match i.strip_suffix('+') {
        Some(p) => format!("{}*", sq(p)),
        None => sq(i),
    };
    let ext: Vec<String> = model.extif.iter().map(|e| pat(e.as_str())).collect();
    let _ = writeln!(s, "  {}) echo external ;;", ext.join(" | "));
    match &model.trust {
        None => s.push_str("  *) echo trusted ;;\n"),
        Some(t) => {
            if !t.is_empty() {
                let tr: Vec<String> = t.iter().map(|i| pat(i.as_str())).collect();
                let _ = writeln!(s, "  {}) echo trusted ;;", tr.join(" | "));
            }
            s.push_str("  *) echo untrusted ;;\n");
        }
    }
    s.push_str("  esac\n}\n\n");
    s.push_str(
        "# fw_guard_decide ARRIVAL FAMILY PORT CLIENT: whether the rules accept a new tcp\n\
         # connection from CLIENT to local PORT (status 0); why in fw_guard_why.\n\
         # (The reasons quote policy statements in backquotes, literally.)\n\
         # shellcheck disable=SC2016\n\
         fw_guard_decide() {\n  case \"$1/$2\" in\n",
    );
    for arr in [
        Arrival::Loopback,
        Arrival::Trusted,
        Arrival::Untrusted,
        Arrival::External,
    ] {
        for v4 in [true, false] {
            let _ = writeln!(s, "  {}/{})", arr.as_str(), if v4 { 4 } else { 6 });
            for st in steps(model, arr, v4) {
                let mut conds = Vec::new();
                if let Some(ports) = &st.ports {
                    let list: Vec<String> = ports
                        .iter()
                        .map(|r| format!("{} {}", r.start(), r.end()))
                        .collect();
                    conds.push(format!("fw_port_in \"$3\" {}", list.join(" ")));
                }
                if let Some(nets) = &st.sources {
                    let list: Vec<String> = nets
                        .iter()
                        .map(|n| format!("fw_net_has {} \"$4\"", sq(&n.to_string())))
                        .collect();
                    conds.push(format!("{{ {}; }}", list.join(" || ")));
                }
                let body = format!(
                    "fw_guard_why={}; return {}",
                    sq(&st.why),
                    if st.accept { 0 } else { 1 }
                );
                if conds.is_empty() {
                    let _ = writeln!(s, "    {body}");
                } else {
                    let _ = writeln!(
                        s,
                        "    if {}; then\n      {body}\n    fi",
                        conds.join(" && ")
                    );
                }
            }
            s.push_str("    ;;\n");
        }
    }
    s.push_str("  esac\n  fw_guard_why='no rule decides it'\n  return 1\n}\n");
    s
}

#[cfg(test)]
mod tests;

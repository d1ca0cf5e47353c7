//! The bash script's checks of the host, run before anything changes: every
//! `extif` exists, and the SSH session the script runs in survives the policy
//! (the guard of [`super::guard`], generated from the model). They mirror
//! `apply()`'s [`crate::apply::ApplyError::MissingInterface`] and
//! [`crate::apply::ApplyError::SessionLockout`], with the same overrides as
//! environment variables:
//!
//! * `FIREWALL_ALLOW_MISSING="ppp0 tun0"`: external interfaces that may be
//!   missing (they appear later), as `Options::allow_missing`;
//! * `FIREWALL_ALLOW_SESSION_LOCKOUT=1`: apply even if the SSH session this
//!   script runs in would be cut, as `Options::allow_session_lockout`;
//! * `FIREWALL_BACKEND=nftables|iptables-nft|iptables-legacy`: the backend,
//!   as `Options::backend` (see [`BACKEND`]).

use super::guard;
use crate::model::Model;
use std::fmt::Write as _;

/// Header lines of the script that document the choice of backend ([`BACKEND`]).
pub const BACKEND_HEADER: &str = "\
#   - chooses the backend (FIREWALL_BACKEND=nftables|iptables-nft|iptables-legacy,\n\
#      or else what this host already uses: the firewall's own nftables tables\n\
#      exist: nftables; the iptables backend of `iptables -V` holds rules: that\n\
#      one; other nftables tables: nftables; nothing yet: the backend of\n\
#      `iptables -V`, or nftables where only nft is installed), and refuses when\n\
#      the other iptables backend holds rules, which would stay in force;\n";

/// Header lines of the script that document the checks and their overrides.
pub const HEADER: &str = "\
#   - refuses, before changing anything, an extif this host does not have\n\
#      (override for interfaces that appear later: FIREWALL_ALLOW_MISSING=\"ppp0 tun0\")\n\
#      and a policy that would not accept a new connection like the SSH session\n\
#      it runs in, on the interface that session arrives on (override, when you\n\
#      have another way in: FIREWALL_ALLOW_SESSION_LOCKOUT=1);\n\
#   - bounds every tool (timeout, iptables-restore -w 10); the backup goes to\n\
#      $TMPDIR (default /tmp): set TMPDIR to choose another directory;\n";

/// The script's choice of backend, into `fw_backend`:
/// `FIREWALL_BACKEND=nftables|iptables-nft|iptables-legacy` chooses it;
/// otherwise `fw_detect_backend` (`lib.sh`, the detection `apply()` runs too)
/// decides, and its refusals are `apply()`'s: the other iptables backend holds
/// rules ([`crate::apply::ApplyError::BackendMismatch`]), `iptables -V` names
/// no backend, no tool at all.
pub const BACKEND: &str = r#"# Save, load and rollback must use one backend: rules loaded through
# iptables-legacy are invisible to iptables-nft and the other way round, and
# the nftables backend replaces only the firewall's own nftables tables.
# FIREWALL_BACKEND=nftables, iptables-nft or iptables-legacy chooses it;
# otherwise fw_detect_backend (the same detection as firewall-core's apply())
# takes what this host already uses.
case "${FIREWALL_BACKEND:-}" in
nftables | iptables-nft | iptables-legacy) fw_backend=$FIREWALL_BACKEND ;;
'')
  fw_status=0
  fw_found=$(fw_detect_backend) || fw_status=$?
  IFS=$'\t' read -r fw_what fw_selected fw_other fw_tool_seen fw_line <<<"$fw_found" || true
  case $fw_status in
  0) fw_backend=$fw_what ;;
  3)
    fw_die "refusing to apply: iptables here is the $fw_selected backend, but the $fw_other backend holds rules that would stay in force beside the new ones, unseen ($fw_tool_seen shows: $fw_line)
  help: choose the backend: FIREWALL_BACKEND=$fw_other bash $0 replaces those rules; FIREWALL_BACKEND=$fw_selected bash $0 applies beside them (clear them first: ${fw_tool_seen%-save} -F; ${fw_tool_seen%-save} -X)"
    ;;
  4) fw_die "cannot tell the iptables backend from 'iptables -V' (${fw_selected:-no output}); choose one: FIREWALL_BACKEND=iptables-nft (or iptables-legacy, or nftables) bash $0" ;;
  5) fw_die "neither iptables nor nft is installed (Debian/Ubuntu: apt-get install nftables, or iptables)" ;;
  *) fw_die "cannot detect the firewall backend (${fw_found:-no output}); choose one: FIREWALL_BACKEND=nftables (or iptables-nft, or iptables-legacy) bash $0" ;;
  esac
  ;;
nft | legacy) fw_die "FIREWALL_BACKEND=$FIREWALL_BACKEND is ambiguous now that nftables is a backend too; use iptables-$FIREWALL_BACKEND (or nftables)" ;;
*) fw_die "FIREWALL_BACKEND must be nftables, iptables-nft or iptables-legacy, not '$FIREWALL_BACKEND'" ;;
esac
"#;

fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The check code for `model` (helpers, the generated guard, the checks).
pub fn bash(model: &Model) -> String {
    let mut s = String::from("\n# ---- Checks of this host (nothing has changed yet) ----\n");
    s.push_str(guard::BASH_HELPERS);
    s.push('\n');
    s.push_str(&guard::bash(model));
    s.push_str("\nfw_host_list=$(fw_host_ifaces | tr '\\n' ' ')\n");
    let fixed: Vec<String> = model
        .extif
        .iter()
        .filter(|e| !e.as_str().ends_with('+'))
        .map(|e| sq(e.as_str()))
        .collect();
    if !fixed.is_empty() {
        let _ = write!(
            s,
            r#"# Every extif without a wildcard must exist: with a missing one, the real
# external interface would be treated as trusted (everything open).
fw_allow=${{FIREWALL_ALLOW_MISSING:-}}
fw_allow=" ${{fw_allow//,/ }} "
fw_missing=
fw_need=({})
for fw_i in "${{fw_need[@]}}"; do
  case " $fw_host_list " in *" $fw_i "*) continue ;; esac
  case $fw_allow in *" $fw_i "*) continue ;; esac
  fw_missing="$fw_missing $fw_i"
done
if [ -n "$fw_missing" ]; then
  fw_die "refusing to apply: the external interface(s)$fw_missing do(es) not exist on this host, so the real external interface would be treated as trusted (everything open); this host has: ${{fw_host_list:-(the interface list could not be read)}}
  help: correct extif in the policy; for an interface that appears later (ppp0, a VPN), allow it: FIREWALL_ALLOW_MISSING=\"${{fw_missing# }}\" bash $0"
fi
"#,
            fixed.join(" ")
        );
    }
    let _ = write!(
        s,
        r#"
# The SSH-session guard (the same decision as apply()'s): a new connection
# like this session's (same client, same port, over the interface it arrives
# on) must be accepted by the new rules, or the next login is locked out.
# An IPv6 link-local client carries its zone (fe80::1%eth0): the interface
# the session arrives on. A variable that is set but cannot be read is refused.
if [ "${{FIREWALL_ALLOW_SESSION_LOCKOUT:-0}}" != 1 ] && fw_session; then
  if [[ $fw_s_client =~ ^::[fF]{{4}}:([0-9.]+)$ ]]; then
    fw_s_client=${{BASH_REMATCH[1]}}
  fi
  fw_s_zone=
  if [[ $fw_s_client == *%* ]]; then
    fw_s_zone=${{fw_s_client#*%}}
    fw_s_client=${{fw_s_client%%\%*}}
    if [[ $fw_s_zone =~ ^[0-9]+$ ]]; then
      fw_s_zone=$(for fw_d in /sys/class/net/*; do [ "$(cat "$fw_d/ifindex" 2>/dev/null)" = "$fw_s_zone" ] && printf '%s\n' "${{fw_d##*/}}"; done | head -n 1)
    fi
    [[ $fw_s_zone =~ ^[A-Za-z0-9_.:@-]{{1,15}}$ ]] || fw_s_zone=
    # The zone must be an interface of this host.
    case " $fw_host_list " in
    *" $fw_s_zone "*) ;;
    *) [ -z "$fw_host_list" ] || fw_s_zone= ;;
    esac
  fi
  fw_fam=
  if [ -z "$fw_s_zone" ] && [[ $fw_s_raw == *%* ]]; then
    : # a zone that names no interface
  elif [ -z "$fw_s_zone" ] && fw_ip4 "$fw_s_client" >/dev/null; then
    fw_fam=4
  elif fw_ip6 "$fw_s_client" >/dev/null; then
    fw_fam=6
  fi
  if [ -z "$fw_fam" ] || ! [[ $fw_s_port =~ ^[0-9]{{1,5}}$ ]] || ((10#$fw_s_port < 1 || 10#$fw_s_port > 65535)); then
    fw_die "refusing to apply: $fw_s_var=\"$fw_s_raw\" is set but cannot be read, so the SSH-session guard cannot check that the next login survives the new rules; nothing was changed
  help: correct or unset $fw_s_var, or, if you have another way in (console), override: FIREWALL_ALLOW_SESSION_LOCKOUT=1 bash $0"
  fi
  fw_s_port=$((10#$fw_s_port))
  fw_route_note=
  if [ -n "$fw_s_zone" ]; then
    fw_devs=$fw_s_zone
  elif fw_devs=$(fw_route_dev "$fw_s_client"); then
    :
  else
    fw_route_note=" (the route to $fw_s_client could not be read, so every interface must accept it)"
    fw_devs=$fw_host_list
    if [ -z "$fw_devs" ]; then
      fw_devs={extifs}
    fi
  fi
  for fw_d in $fw_devs; do
    fw_a=$(fw_guard_arrival "$fw_d")
    if ! fw_guard_decide "$fw_a" "$fw_fam" "$fw_s_port" "$fw_s_client"; then
      fw_die "refusing to apply: this script runs in the SSH session from $fw_s_client${{fw_s_zone:+%$fw_s_zone}} to port $fw_s_port, and a new connection to tcp $fw_s_port arriving on $fw_d ($fw_a interface) would not be accepted$fw_route_note: $fw_guard_why; the next login would be locked out
  help: make the policy accept it (over an external interface: open tcp $fw_s_port from the client; over another interface: trust it), or, if you have another way in (console), override: FIREWALL_ALLOW_SESSION_LOCKOUT=1 bash $0"
    fi
  done
fi
"#,
        extifs = sq(&model
            .extif
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(" "))
    );
    s
}

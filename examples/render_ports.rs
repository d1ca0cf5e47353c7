//! Renders a policy with many open ports, for the benchmarks in `bench/`:
//!
//! ```text
//! render_ports PROTO N DIR
//! ```
//!
//! writes into DIR the policy `extif eth0; open tcp 22; open PROTO P1, ..., PN;`
//! (`policy`, with the N ports 10000, 10002, 10004, ...: every other port, so
//! that no two are adjacent and neither printer can merge them into a range)
//! and its renderings: `v4.rules`, `v6.rules` (iptables-restore) and
//! `nft.rules` (`nft -f`). The last-listed port is printed on stdout.
//! With PROTO `tcp` the ssh port 22 is not repeated in the list.

use firewall::Policy;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(last) => {
            println!("{last}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("render_ports: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<u32, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [proto, n, dir] = args.as_slice() else {
        return Err("usage: render_ports tcp|udp N DIR".into());
    };
    if proto != "tcp" && proto != "udp" {
        return Err(format!("{proto}: not tcp or udp"));
    }
    let n: u32 = n
        .parse()
        .ok()
        .filter(|n| (1..=27_000).contains(n))
        .ok_or_else(|| format!("{n}: not a port count from 1 to 27000"))?;
    let ports: Vec<String> = (0..n).map(|i| (10_000 + 2 * i).to_string()).collect();
    let last = 10_000 + 2 * (n - 1);
    let text = format!(
        "extif eth0;\nopen tcp 22;\nopen {proto} {};\n",
        ports.join(", ")
    );
    let policy = Policy::parse(&text).map_err(|d| format!("the generated policy:\n{d}"))?;
    let dir = std::path::Path::new(dir);
    for (name, body) in [
        ("policy", text.as_str()),
        ("v4.rules", policy.iptables_restore()),
        ("v6.rules", policy.ip6tables_restore()),
        ("nft.rules", policy.nft()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, body).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(last)
}

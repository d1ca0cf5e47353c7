//! The 2010 stateful-firewall howto's whole policy, done right.
//!
//! ```text
//! cargo run --example howto              # print the bash script
//! cargo run --example howto -- --restore # print the IPv4 ruleset (iptables-save format)
//! cargo run --example howto -- --restore6
//! cargo run --example howto -- --kernel   # the kernel options it needs, per backend
//! cargo run --example howto -- --kernel nftables
//! # apply to THIS host (root; inside a network namespace or a VM!):
//! ip netns exec NS target/debug/examples/howto --apply [--failsafe 10s]
//! ```
//!
//! What the howto did and what this does instead:
//! - `-i ! $EXTIF` (obsolete syntax) and "trust every other interface": the
//!   default here (no `trust` statement), rendered as `-i eth0 -g ext-in` plus
//!   an accept for everything else.
//! - `PORTS="22 80 443 53 443 143 993"` lists 443 twice: here that does not compile.
//! - `REDIRECT 26 -> 25` was dropped on INPUT (port 25 was never opened); here
//!   exactly the redirected connections are accepted and 25 stays closed.
//! - `-F POSTOUTING`, append-only `-A` loops: the rules are loaded atomically
//!   with `iptables-restore`, so running the script twice gives the same ruleset.
//! - `iptables -P INPUT DROP; sleep 10; iptables -P INPUT ACCEPT`: `failsafe`.
use firewall::{firewall, Firewall};

/// The howto's gateway: SSH, HTTP, HTTPS, DNS, IMAP/IMAPS open (443 once);
/// ping answered; masquerading for the inner network; port 26 redirected to
/// the local mail server on 25; port 221 forwarded to an inner host's SSH.
const HOWTO: Firewall = firewall! {
    extif eth0;
    open tcp 22, 80, 443, 53, 143, 993;
    open udp 53;
    icmp accept;
    masquerade;
    redirect 26 -> 25;
    dnat 221 -> 192.168.125.22:22;
    failsafe 10s;
};

fn main() {
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
        None => print!("{}", HOWTO.bash()),
        Some("--restore") => print!("{}", HOWTO.iptables_restore()),
        Some("--restore6") => print!("{}", HOWTO.ip6tables_restore()),
        Some("--kernel") => std::process::exit(kernel(std::env::args().nth(2).as_deref())),
        Some("--apply") => std::process::exit(apply(std::env::args().skip(2).collect())),
        Some(other) => {
            eprintln!(
                "unknown option `{other}`; use --restore, --restore6, --kernel [BACKEND] or --apply [--failsafe 10s] (or nothing for the bash script)"
            );
            std::process::exit(2);
        }
    }
}

/// `--kernel [BACKEND]`: the kernel options and modules the policy needs with
/// `BACKEND` (`iptables-legacy`, `iptables-nft`, `nftables`; all three if
/// none), each with what in the policy needs it.
fn kernel(backend: Option<&str>) -> i32 {
    use firewall::kernel::Backend;
    let backends: Vec<Backend> = match backend {
        None => Backend::ALL.to_vec(),
        Some(name) => match Backend::ALL.into_iter().find(|b| b.name() == name) {
            Some(b) => vec![b],
            None => {
                eprintln!(
                    "unknown backend `{name}`; use iptables-legacy, iptables-nft or nftables"
                );
                return 2;
            }
        },
    };
    for (i, b) in backends.into_iter().enumerate() {
        match HOWTO.kernel_requirements_text(b) {
            Ok(text) => print!("{}{text}", if i > 0 { "\n" } else { "" }),
            Err(d) => {
                eprintln!("{d}");
                return 1;
            }
        }
    }
    0
}

/// `--apply [--failsafe 10s]`: applies the howto policy to this host with a
/// failsafe (the policy's `failsafe 10s;` unless given), asks on the terminal
/// for confirmation, and lets the previous rules come back if none comes.
fn apply(args: Vec<String>) -> i32 {
    use std::io::BufRead as _;
    use std::time::{Duration, Instant};
    let window = match args.as_slice() {
        [] => None,
        [flag, value] if flag == "--failsafe" => {
            let secs = value
                .strip_suffix("min")
                .and_then(|m| m.parse::<u64>().ok().map(|m| m * 60))
                .or_else(|| value.trim_end_matches('s').parse::<u64>().ok());
            match secs {
                Some(s) => Some(Duration::from_secs(s)),
                None => {
                    eprintln!("--failsafe {value}: use e.g. 10s or 2min");
                    return 2;
                }
            }
        }
        _ => {
            eprintln!("usage: howto --apply [--failsafe 10s]");
            return 2;
        }
    };
    let result = match window {
        Some(w) => HOWTO.apply_with_failsafe(w),
        None => HOWTO.apply(),
    };
    let mut applied = match result {
        Ok(a) => a,
        Err(e) => {
            eprintln!("howto: {e}");
            return 1;
        }
    };
    println!(
        "howto: applied ({} backend, {} IPv4 + {} IPv6 rules, in {:?})",
        applied.backend, applied.rules.0, applied.rules.1, applied.elapsed
    );
    let Some(guard) = &applied.failsafe else {
        return 0;
    };
    println!(
        "howto: unless confirmed within {}, the previous rules come back (even if this program dies).",
        guard.window()
    );
    println!(
        "howto: confirm from anywhere with: {}",
        guard.confirm_command()
    );
    println!("howto: or type y and Enter here:");
    let deadline = guard.deadline();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        let _ = tx.send(line);
    });
    let left = deadline.saturating_duration_since(Instant::now());
    match rx.recv_timeout(left) {
        Ok(line) if matches!(line.trim(), "y" | "Y" | "yes" | "Yes" | "YES") => {
            match applied.confirm() {
                Ok(()) => {
                    println!("howto: confirmed, the new rules stay.");
                    0
                }
                Err(e) => {
                    eprintln!("howto: {e}");
                    1
                }
            }
        }
        _ => {
            println!(
                "howto: not confirmed; the watchdog restores the previous rules at the deadline."
            );
            // As the bash script: 3 = not confirmed.
            3
        }
    }
}

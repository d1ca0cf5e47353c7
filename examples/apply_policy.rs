//! Applies a policy file to this host with `apply()`: the runner the bench
//! (`bench/apply.sh`) and manual tests use inside a network namespace.
//!
//! ```text
//! ip netns exec NS target/release/examples/apply_policy POLICY-FILE
//!     [--failsafe SECS] [--confirm] [--allow-session-lockout]
//!     [--backend NAME]  iptables-nft, iptables-legacy or nftables (default: detected)
//!     [--emit DIR]      write DIR/v4.rules, DIR/v6.rules, DIR/nft.rules, DIR/script.sh and exit
//!     [--repeat N]      apply N times, print each apply()'s duration in microseconds
//! ```
//!
//! Never run it outside a namespace or VM unless you mean to change this host's firewall.

use firewall::Policy;
use firewall_core::apply::Options;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("apply_policy: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut file = None;
    let mut options = Options::default();
    let mut confirm = false;
    let mut emit = None;
    let mut repeat = 1u32;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--failsafe" => {
                let v = args.next().ok_or("--failsafe needs seconds")?;
                let secs: u64 = v
                    .trim_end_matches('s')
                    .parse()
                    .map_err(|_| format!("--failsafe {v}: not a number of seconds"))?;
                options.failsafe = Some(Duration::from_secs(secs));
            }
            "--confirm" => confirm = true,
            "--allow-session-lockout" => options.allow_session_lockout = true,
            "--backend" => {
                let v = args.next().ok_or("--backend needs a name")?;
                options.backend = Some(firewall_core::apply::Backend::from_name(&v).ok_or(
                    format!("--backend {v}: not iptables-nft, iptables-legacy or nftables"),
                )?);
            }
            "--emit" => emit = Some(args.next().ok_or("--emit needs a directory")?),
            "--repeat" => {
                let v = args.next().ok_or("--repeat needs a count")?;
                repeat = v
                    .parse()
                    .map_err(|_| format!("--repeat {v}: not a count"))?;
            }
            f if !f.starts_with("--") && file.is_none() => file = Some(f.to_string()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let file = file.ok_or("usage: apply_policy POLICY-FILE [options]")?;
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{file}: {e}"))?;
    let policy = Policy::parse(&text).map_err(|d| format!("{file}:\n{d}"))?;
    if let Some(dir) = emit {
        let dir = std::path::Path::new(&dir);
        for (name, body) in [
            ("v4.rules", policy.iptables_restore()),
            ("v6.rules", policy.ip6tables_restore()),
            ("nft.rules", policy.nft()),
            ("script.sh", policy.bash()),
        ] {
            std::fs::write(dir.join(name), body).map_err(|e| format!("{name}: {e}"))?;
        }
        return Ok(());
    }
    for _ in 0..repeat {
        let mut applied = policy
            .apply_with(options.clone())
            .map_err(|e| e.to_string())?;
        println!("{}", applied.elapsed.as_micros());
        if let Some(g) = &applied.failsafe {
            eprintln!(
                "apply_policy: applied; confirm within {} with: {}",
                g.window(),
                g.confirm_command()
            );
            if confirm {
                applied.confirm().map_err(|e| e.to_string())?;
                eprintln!("apply_policy: confirmed");
            }
        }
    }
    Ok(())
}

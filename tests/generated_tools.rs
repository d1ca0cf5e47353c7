//! Every policy this repository ships (the trybuild pass cases and the
//! examples) renders texts the real tools accept: `bash -n` and `shellcheck`
//! for the script, and `iptables-restore`/`ip6tables-restore` loading the rules
//! for real into a throwaway network namespace (`--test` only parses; the
//! kernel must accept every rule). Also: the macro's constant and
//! `Policy::parse` render the very same texts.

mod common;
#[path = "common/sources.rs"]
mod sources;

use common::command;
use common::gate::{self, Need};
use common::netns::Netns;
use common::save::Family;
use firewall::{firewall, Firewall, Policy};
use std::process::Output;

/// (file, index of the block, policy) for every pass case and example.
fn shipped_policies() -> Vec<(String, usize, Policy)> {
    let mut files = sources::rust_files("tests/ui/pass");
    files.extend(sources::rust_files("examples"));
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable source");
        for (i, block) in sources::blocks(&text).into_iter().enumerate() {
            if block.text.contains('$') {
                continue; // inside macro_rules!: `$fragments` are not policy text
            }
            let policy = Policy::parse(&block.text)
                .unwrap_or_else(|d| panic!("{} block {i} must parse:\n{d}", file.display()));
            out.push((file.display().to_string(), i, policy));
        }
    }
    assert!(
        out.len() >= 8,
        "expected the pass cases and examples, found {}",
        out.len()
    );
    out
}

/// Runs `args` (program first) with `stdin`, bounded (`common::command`).
fn run(args: &[&str], stdin: &str) -> Output {
    command::run(args, Some(stdin), command::COMMAND_TIMEOUT_SECS)
}

#[test]
fn scripts_pass_bash_n() {
    for (file, i, p) in shipped_policies() {
        let out = run(&["bash", "-n"], p.bash());
        assert!(
            out.status.success(),
            "{file} block {i}: bash -n: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn scripts_pass_shellcheck() {
    if !gate::require(
        "scripts_pass_shellcheck",
        &[Need::Tool("shellcheck", "shellcheck")],
    ) {
        return;
    }
    for (file, i, p) in shipped_policies() {
        let out = run(&["shellcheck", "-s", "bash", "-"], p.bash());
        assert!(
            out.status.success(),
            "{file} block {i}: shellcheck:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// The script carries both backends' texts verbatim (each in a quoted
/// heredoc, so what a reviewer reads is what `nft -f` or `iptables-restore`
/// loads), and both load paths; shellcheck above covers both.
#[test]
fn scripts_embed_both_backends_rules() {
    for (file, i, p) in shipped_policies() {
        let bash = p.bash();
        for (what, text, delimiter) in [
            ("nft()", p.nft(), "'FIREWALL_NFT'"),
            (
                "iptables_restore()",
                p.iptables_restore(),
                "'FIREWALL_IPV4'",
            ),
            (
                "ip6tables_restore()",
                p.ip6tables_restore(),
                "'FIREWALL_IPV6'",
            ),
        ] {
            let at = bash
                .find(&format!("<<{delimiter}\n"))
                .unwrap_or_else(|| panic!("{file} block {i}: no heredoc {delimiter} for {what}"));
            let body = &bash[at..];
            let body = &body[body.find('\n').map_or(0, |n| n + 1)..];
            assert!(
                body.starts_with(text),
                "{file} block {i}: {what} is not embedded verbatim"
            );
        }
        assert!(
            bash.contains("timeout 60 nft -f \"$fw_dir/new.nft\""),
            "{file} block {i}"
        );
        assert!(
            bash.contains("fw_nft_verify \"$fw_dir/new.nft\""),
            "{file} block {i}"
        );
    }
}

#[test]
fn rulesets_load_into_the_kernel() {
    if !common::kernel_tests_available("rulesets_load_into_the_kernel") {
        return;
    }
    let ns = Netns::new("load");
    for (file, i, p) in shipped_policies() {
        // Shown with the failure: `restore` panics with the numbered rules.
        println!("loading {file} block {i}");
        ns.restore(Family::V4, p.iptables_restore());
        ns.restore(Family::V6, p.ip6tables_restore());
    }
}

/// Every shipped policy's `nft()` passes `nft -c -f` and loads for real into a
/// throwaway namespace, over the previous policy's tables (the file replaces
/// them in one transaction), leaving a table the firewall does not own alone.
#[test]
fn nft_rulesets_check_and_load() {
    if !gate::require("nft_rulesets_check_and_load", &[Need::Kernel, gate::NFT]) {
        return;
    }
    let ns = Netns::new("nftload");
    let nft = |args: &[&str], stdin: &str| {
        let mut full = vec!["nft"];
        full.extend_from_slice(args);
        ns.exec_bounded(&full, Some(stdin), 30)
    };
    let foreign = "table inet other {\n\tchain input {\n\t\ttype filter hook input priority 10; policy accept;\n\t\ttcp dport 9 counter accept\n\t}\n}\n";
    let out = nft(&["-f", "-"], foreign);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let policies = shipped_policies();
    for (file, i, p) in &policies {
        let mut tables = vec!["inet other"];
        tables.extend(common::policy::nft_tables(p));
        if let Err(e) = ns.try_load_nft(p.nft(), &tables) {
            panic!("{file} block {i}: {e}");
        }
        // The script's read-back (fw_nft_verify) finds what was loaded.
        let verify = format!(
            "{}\nfw_nft_verify /dev/stdin",
            firewall_core::render::bash::rollback_functions()
        );
        let out = ns.exec(&["bash", "-c", &verify], Some(p.nft()));
        assert!(
            out.status.success(),
            "{file} block {i}: fw_nft_verify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The foreign table is untouched.
    let out = nft(&["list", "table", "inet", "other"], "");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("tcp dport 9 counter"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

const GATEWAY: Firewall = firewall! {
    extif eth0;
    open tcp 22, 80;
    icmp accept;
    masquerade;
    dnat 221 -> 192.168.125.22:22;
    redirect 26 -> 25;
};

#[test]
fn macro_and_runtime_parse_render_the_same_texts() {
    let p = GATEWAY.policy().expect("the macro's source parses again");
    assert_eq!(p.source(), GATEWAY.source());
    assert_eq!(p.bash(), GATEWAY.bash());
    assert_eq!(p.iptables_restore(), GATEWAY.iptables_restore());
    assert_eq!(p.ip6tables_restore(), GATEWAY.ip6tables_restore());
    assert_eq!(p.nft(), GATEWAY.nft());
    assert!(GATEWAY.nft().contains("dnat to 192.168.125.22:22"));
}

#[test]
fn canonical_source_parses_back_to_the_same_rules() {
    for (file, i, p) in shipped_policies() {
        let again = Policy::parse(p.source()).unwrap_or_else(|d| {
            panic!(
                "{file} block {i}: source does not parse:\n{d}\n{}",
                p.source()
            )
        });
        assert_eq!(again.source(), p.source(), "{file} block {i}");
        assert_eq!(again.bash(), p.bash(), "{file} block {i}");
        assert_eq!(
            again.iptables_restore(),
            p.iptables_restore(),
            "{file} block {i}"
        );
        assert_eq!(
            again.ip6tables_restore(),
            p.ip6tables_restore(),
            "{file} block {i}"
        );
    }
}

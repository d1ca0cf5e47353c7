//! Every policy this repository ships (the trybuild pass cases and the
//! examples) renders texts the real tools accept: `bash -n` and `shellcheck`
//! for the script, and `iptables-restore`/`ip6tables-restore` loading the rules
//! for real into a throwaway network namespace (`--test` only parses; the
//! kernel must accept every rule). Also: the macro's constant and
//! `Policy::parse` render the very same texts.

#[path = "common/sources.rs"]
mod sources;

use firewall::{firewall, Firewall, Policy};
use std::io::Write;
use std::process::{Command, Output, Stdio};

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

fn run(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// Whether a tool-based test can run; under CI=true a missing tool fails.
fn available(test: &str, tools: &[&str], needs_root: bool) -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let mut missing: Vec<String> = tools
        .iter()
        .filter(|t| !on_path(t))
        .map(|t| format!("`{t}` not installed"))
        .collect();
    if needs_root && !is_root() {
        missing.push("not root".to_string());
    }
    if missing.is_empty() {
        return true;
    }
    let why = missing.join(", ");
    assert!(
        !ci,
        "{test}: {why} (CI=true requires it; .ci/run installs it)"
    );
    eprintln!("SKIP {test}: {why}");
    false
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn scripts_pass_bash_n() {
    for (file, i, p) in shipped_policies() {
        let out = run(Command::new("bash").arg("-n"), p.bash());
        assert!(
            out.status.success(),
            "{file} block {i}: bash -n: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn scripts_pass_shellcheck() {
    if !available("scripts_pass_shellcheck", &["shellcheck"], false) {
        return;
    }
    for (file, i, p) in shipped_policies() {
        let out = run(
            Command::new("shellcheck").args(["-s", "bash", "-"]),
            p.bash(),
        );
        assert!(
            out.status.success(),
            "{file} block {i}: shellcheck:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// A network namespace of our own, deleted on drop (also when a test panics).
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("fwgt-{tag}-{}", std::process::id());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("ip");
        assert!(
            out.status.success(),
            "ip netns add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Netns(name)
    }

    fn load(&self, tool: &str, text: &str) -> Output {
        run(
            Command::new("ip").args(["netns", "exec", &self.0, tool, "-w"]),
            text,
        )
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

#[test]
fn rulesets_load_into_the_kernel() {
    if !available(
        "rulesets_load_into_the_kernel",
        &["ip", "iptables-restore", "ip6tables-restore"],
        true,
    ) {
        return;
    }
    let ns = Netns::new("load");
    for (file, i, p) in shipped_policies() {
        for (tool, text) in [
            ("iptables-restore", p.iptables_restore()),
            ("ip6tables-restore", p.ip6tables_restore()),
        ] {
            let out = ns.load(tool, text);
            assert!(
                out.status.success(),
                "{file} block {i}: {tool} refused the rules: {}\n{text}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
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

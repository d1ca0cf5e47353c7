//! `Firewall::apply()` loads the texts compiled into the constant (issue 6,
//! item 14), not a fresh rendering of `source()`: a constant whose IPv4 and
//! IPv6 rulesets carry one rule more than `source()` would render is applied,
//! and real traffic shows that rule is in force over both families.
//!
//! Runs `apply()` inside the firewall namespace by re-executing this test binary
//! (`common::Topology::run_test_in`); the root namespace is never touched.

mod common;

use common::{addr, Ns, Topology};
use firewall::{apply::Options, Firewall, Policy};
use std::path::PathBuf;

const INNER: &str = "compiled_apply_inner";
const SOURCE: &str = "extif eth0; open tcp 22;";
/// The rule the constant has and `source()` does not render.
const EXTRA: &str =
    "-A ext-in -p tcp --dport 4444 -m comment --comment \"compiled, not rendered\" -j ACCEPT";

/// `text` with [`EXTRA`] as the first rule of `ext-in` in its filter table.
fn with_extra(text: &str) -> &'static str {
    let mut out = String::new();
    let mut done = false;
    for line in text.lines() {
        if !done && line.starts_with("-A ext-in ") {
            out.push_str(EXTRA);
            out.push('\n');
            done = true;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert!(done, "no ext-in rule in:\n{text}");
    Box::leak(out.into_boxed_str())
}

/// Inside the firewall namespace: apply a constant built as the macro builds
/// one, with the extra rule in its texts.
#[test]
#[ignore = "run by compiled_constant_texts_are_what_is_applied inside a namespace"]
fn compiled_apply_inner() {
    if common::inner_role().is_none() {
        return;
    }
    let rendered: &'static Policy = Box::leak(Box::new(
        Policy::parse(SOURCE).expect("the test policy parses"),
    ));
    let fw = Firewall::__new(
        rendered.source(),
        rendered.bash(),
        with_extra(rendered.iptables_restore()),
        with_extra(rendered.ip6tables_restore()),
    );
    let backups = std::env::var("FW_COMPILED_BACKUPS").expect("FW_COMPILED_BACKUPS");
    let applied = fw.apply_with(Options {
        allow_session_lockout: true,
        backup_parent: Some(PathBuf::from(backups)),
        ..Options::default()
    });
    match applied {
        Ok(a) => println!("APPLIED {:?}", a.rules),
        Err(e) => panic!("apply failed: {e}"),
    }
}

#[test]
fn compiled_constant_texts_are_what_is_applied() {
    if !common::kernel_tests_available("compiled_constant_texts_are_what_is_applied") {
        return;
    }
    let t = Topology::new("compiled");
    let backups = std::env::temp_dir().join(format!("fw-compiled-{}", std::process::id()));
    std::fs::create_dir_all(&backups).expect("a scratch directory");
    let _ssh = t.listen_tcp(Ns::Firewall, 22);
    let _extra = t.listen_tcp(Ns::Firewall, 4444);
    let _closed = t.listen_tcp(Ns::Firewall, 4445);
    let out = t.run_test_in(
        Ns::Firewall,
        INNER,
        &[("FW_COMPILED_BACKUPS", backups.to_str().expect("UTF-8 path"))],
    );
    let _ = std::fs::remove_dir_all(&backups);
    assert!(
        out.status.success(),
        "{}",
        common::describe("apply() of the constant", &out)
    );
    let ruleset = t.ruleset(Ns::Firewall);
    assert!(ruleset.contains("compiled, not rendered"), "{ruleset}");
    for fw in [addr::FW_EXT_V4, addr::FW_EXT_V6] {
        assert!(t.tcp_connects(Ns::Outside, fw, 22), "22 on {fw}");
        assert!(
            t.tcp_connects(Ns::Outside, fw, 4444),
            "4444 on {fw}: the compiled rule is not in force"
        );
        assert!(!t.tcp_connects(Ns::Outside, fw, 4445), "4445 on {fw}");
    }
}

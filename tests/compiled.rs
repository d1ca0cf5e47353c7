//! `Firewall::apply()` loads the texts compiled into the constant (issue 6,
//! item 14), and only when they are exactly what this firewall-core prints
//! from `source()` (issue 7: the printer's map of each line's origin then
//! describes what is loaded): a constant whose IPv4 and IPv6 rulesets carry
//! one rule more than `source()` would render is refused with "rebuild" and
//! changes nothing; the faithful constant is applied, and real traffic shows
//! its rules in force over both families, with either backend.
//!
//! Runs `apply()` inside the firewall namespace by re-executing this test binary
//! (`common::Topology::run_test_in`); the root namespace is never touched.

mod common;

use common::scratch::Scratch;
use common::script_backend;
use common::{addr, Ns, Topology};
use firewall::{apply::Options, Firewall, Policy};
use std::path::PathBuf;

const INNER: &str = "compiled_apply_inner";
const SOURCE: &str = "extif eth0; open tcp 22;";
/// The rule the constant has and `source()` does not render.
const EXTRA: &str =
    "-A fw-ext-in -p tcp --dport 4444 -m comment --comment \"compiled, not rendered\" -j ACCEPT";

/// `text` with [`EXTRA`] as the first rule of `fw-ext-in` in its filter table.
fn with_extra(text: &str) -> &'static str {
    let mut out = String::new();
    let mut done = false;
    for line in text.lines() {
        if !done && line.starts_with("-A fw-ext-in ") {
            out.push_str(EXTRA);
            out.push('\n');
            done = true;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert!(done, "no fw-ext-in rule in:\n{text}");
    Box::leak(out.into_boxed_str())
}

/// Inside the firewall namespace: apply a constant built as the macro builds
/// one; with `FW_COMPILED_EDITED=1`, with the extra rule in its texts (refused).
#[test]
#[ignore = "run by compiled_constant_texts_are_what_is_applied inside a namespace"]
fn compiled_apply_inner() {
    if common::inner_role().is_none() {
        return;
    }
    let rendered: &'static Policy = Box::leak(Box::new(
        Policy::parse(SOURCE).expect("the test policy parses"),
    ));
    let edited = std::env::var("FW_COMPILED_EDITED").is_ok_and(|v| v == "1");
    let fw = if edited {
        Firewall::__new(
            rendered.source(),
            rendered.bash(),
            with_extra(rendered.iptables_restore()),
            with_extra(rendered.ip6tables_restore()),
        )
        .__with_nft(rendered.nft())
    } else {
        Firewall::__new(
            rendered.source(),
            rendered.bash(),
            Box::leak(rendered.iptables_restore().to_string().into_boxed_str()),
            Box::leak(rendered.ip6tables_restore().to_string().into_boxed_str()),
        )
        .__with_nft(Box::leak(rendered.nft().to_string().into_boxed_str()))
    };
    let backups = std::env::var("FW_COMPILED_BACKUPS").expect("FW_COMPILED_BACKUPS");
    let backend = std::env::var("FW_COMPILED_BACKEND").unwrap_or_default();
    let applied = fw.apply_with(Options {
        allow_session_lockout: true,
        backup_parent: Some(PathBuf::from(backups)),
        backend: firewall::apply::Backend::from_name(&backend),
        ..Options::default()
    });
    match (edited, applied) {
        (false, Ok(a)) => println!("APPLIED {:?}", a.rules),
        (true, Err(e @ firewall::ApplyError::CompiledTextDiffers { .. })) => {
            let text = e.to_string();
            assert!(
                text.contains("iptables_restore") && text.contains("rebuild"),
                "{text}"
            );
            println!("REFUSED AS EXPECTED: {e}");
        }
        (_, Ok(_)) => panic!("the edited constant was applied"),
        (_, Err(e)) => panic!("apply failed: {e}"),
    }
}

both_backends! {
    /// The edited constant is refused and changes nothing (iptables and
    /// nftables rules alike); the faithful one is applied, its rules in force
    /// over IPv4 and IPv6.
    fn compiled_constant_texts_are_what_is_applied(backend, test) {
        let t = Topology::new(test);
        let scratch = Scratch::new("fw-compiled", test);
        let backups = scratch.dir();
        let _ssh = t.listen_tcp(Ns::Firewall, 22);
        let _extra = t.listen_tcp(Ns::Firewall, 4444);
        let _closed = t.listen_tcp(Ns::Firewall, 4445);
        let fresh = (
            t.ruleset(Ns::Firewall),
            script_backend::nft_ruleset(&t),
        );
        let run = |edited: &str| {
            t.run_test_in(
                Ns::Firewall,
                INNER,
                &[
                    ("FW_COMPILED_BACKUPS", backups.to_str().expect("UTF-8 path")),
                    ("FW_COMPILED_BACKEND", backend),
                    ("FW_COMPILED_EDITED", edited),
                ],
            )
        };
        // The edited constant: refused, nothing changed.
        let out = run("1");
        assert!(
            out.status.success(),
            "{}",
            common::describe("apply() of the edited constant", &out)
        );
        assert_eq!(
            (
                t.ruleset(Ns::Firewall),
                script_backend::nft_ruleset(&t)
            ),
            fresh,
            "{backend}: a refused constant changed the rules"
        );
        // The faithful constant: applied, its rules in force.
        let out = run("0");
        assert!(
            out.status.success(),
            "{}",
            common::describe("apply() of the constant", &out)
        );
        for fw in [addr::FW_EXT_V4, addr::FW_EXT_V6] {
            assert!(t.tcp_connects(Ns::Outside, fw, 22), "{backend}: 22 on {fw}");
            assert!(
                !t.tcp_connects(Ns::Outside, fw, 4444),
                "{backend}: 4444 on {fw}: open, though the policy does not open it"
            );
            assert!(
                !t.tcp_connects(Ns::Outside, fw, 4445),
                "{backend}: 4445 on {fw}"
            );
        }
    }
}

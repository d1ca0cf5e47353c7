//! Error paths of `apply`, with a mock host. The real-kernel tests are in tests/apply.rs.

use super::*;
use crate::model::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

struct Mock {
    /// A private state prefix (lock, pending file) per mock.
    state: StateDir,
    euid: u32,
    /// What `fw_detect_backend` answers: exit status and output line.
    detect: (i32, &'static str),
    missing: Vec<&'static str>,
    /// A restore tool (or `nft`) that fails, and its stderr.
    fail: Option<(&'static str, String)>,
    rollback_ok: bool,
    calls: Mutex<Vec<String>>,
    /// The calls made with the applier lock handed to the child (`run_holding`).
    held: Mutex<Vec<String>>,
    /// (tool, text) of every load.
    loaded: Mutex<Vec<(String, String)>>,
    /// The own nftables tables that exist (`nft list tables`, `nft list ruleset`).
    nft_tables: Mutex<Vec<String>>,
    /// What the load's echo (`nft -e -j -f`) shows committed: the chains of
    /// this printed file (None: only the tables, no chain).
    nft_readback: Option<Printed>,
    /// An own table a load leaves in place (to fake a broken transaction).
    nft_survives: Option<&'static str>,
    /// Whether `nft list ruleset` fails.
    nft_ruleset_fails: bool,
    route_dev: &'static str,
    ifaces: Vec<&'static str>,
    /// Files the kernel check reads (`/proc/config.gz` as its decompressed
    /// text, served by `read_gz`); none: the configuration is unreadable.
    files: BTreeMap<String, String>,
    /// Modules under `/sys/module`.
    sys_modules: Vec<&'static str>,
    /// Whether `modprobe -n -q` succeeds.
    modprobe_ok: bool,
}

impl Mock {
    fn new() -> Mock {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let state = std::env::temp_dir().join(format!("fw-mock-state-{}-{n}", std::process::id()));
        let _ = std::fs::create_dir_all(&state);
        Mock {
            state: StateDir(state),
            euid: 0,
            detect: (0, "iptables-nft\n"),
            missing: vec![],
            fail: None,
            rollback_ok: true,
            calls: Mutex::new(vec![]),
            held: Mutex::new(vec![]),
            loaded: Mutex::new(vec![]),
            nft_tables: Mutex::new(vec![]),
            nft_readback: None,
            nft_survives: None,
            nft_ruleset_fails: false,
            route_dev: "eth0",
            ifaces: vec!["lo", "eth0", "eth1"],
            files: BTreeMap::new(),
            sys_modules: vec![],
            modprobe_ok: false,
        }
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The configured failure of `tool`, if any.
    fn failed(&self, tool: &str) -> Option<io::Result<RunOutput>> {
        let (f, err) = self.fail.as_ref()?;
        (f == &tool).then(|| {
            Ok(RunOutput {
                code: Some(1),
                stdout: String::new(),
                stderr: err.clone(),
            })
        })
    }

    /// `nft`: its own tables as state; a load (`nft -e -j -f FILE`) declares
    /// the tables of the file and echoes what the kernel would: the empty
    /// placeholder of each own table that did not exist, then each declared
    /// table with the chains and rules of [`Mock::nft_readback`].
    fn nft(&self, args: &[&str], stdin: Option<&str>) -> io::Result<RunOutput> {
        let tables = self.nft_tables.lock().unwrap().clone();
        let saved = |t: &str| format!("table {t} {{\n\tcomment \"saved\"\n}}\n");
        match args {
            ["list", "tables"] => ok(&tables
                .iter()
                .map(|t| format!("table {t}\n"))
                .collect::<String>()),
            ["list", "ruleset"] if self.nft_ruleset_fails => Ok(RunOutput {
                code: Some(1),
                stderr: "Error: unsupported expression\n".into(),
                ..RunOutput::default()
            }),
            ["list", "ruleset"] => ok(&crate::render::shell::NFT_TABLES
                .iter()
                .filter(|t| tables.iter().any(|have| have == *t))
                .map(|t| saved(t))
                .collect::<String>()),
            ["list", "table", family, name] => {
                let t = format!("{family} {name}");
                if tables.contains(&t) {
                    ok(&saved(&t))
                } else {
                    Ok(RunOutput {
                        code: Some(1),
                        stderr: "Error: No such file or directory\n".into(),
                        ..RunOutput::default()
                    })
                }
            }
            ["-e", "-j", "-f", file] => {
                if let Some(failed) = self.failed("nft") {
                    return failed;
                }
                assert!(stdin.is_none(), "the load reads its file, not stdin");
                let text = std::fs::read_to_string(file)?;
                let mut declared: Vec<String> = crate::render::shell::NFT_TABLES
                    .iter()
                    .filter(|t| text.contains(&format!("table {t} {{\n")))
                    .map(|t| t.to_string())
                    .collect();
                let mut items = Vec::new();
                let table_event = |t: &str| {
                    let (family, name) = t.split_once(' ').unwrap();
                    format!(
                        "{{\"add\": {{\"table\": {{\"family\": \"{family}\", \"name\": \"{name}\"}}}}}}"
                    )
                };
                for t in crate::render::shell::NFT_TABLES {
                    if !tables.iter().any(|have| have == t) {
                        items.push(table_event(t));
                    }
                }
                for t in &declared {
                    let (family, name) = t.split_once(' ').unwrap();
                    items.push(table_event(t));
                    let Some(p) = &self.nft_readback else {
                        continue;
                    };
                    for c in p.chains().iter().filter(|c| c.table == *t) {
                        let base = match (&c.hook, &c.policy) {
                            (Some(h), Some(p)) => {
                                format!(", \"type\": \"filter\", \"hook\": \"{h}\", \"prio\": 0, \"policy\": \"{p}\"")
                            }
                            _ => String::new(),
                        };
                        items.push(format!(
                            "{{\"add\": {{\"chain\": {{\"family\": \"{family}\", \"table\": \"{name}\", \"name\": \"{}\"{base}}}}}}}",
                            c.name
                        ));
                    }
                    for c in p.chains().iter().filter(|c| c.table == *t) {
                        for comment in &c.comments {
                            items.push(format!(
                                "{{\"add\": {{\"rule\": {{\"family\": \"{family}\", \"table\": \"{name}\", \"chain\": \"{}\", \"comment\": \"{comment}\", \"expr\": []}}}}}}",
                                c.name
                            ));
                        }
                    }
                }
                declared.extend(self.nft_survives.map(str::to_string));
                *self.nft_tables.lock().unwrap() = declared;
                self.loaded.lock().unwrap().push(("nft".into(), text));
                ok(&format!("{{\"nftables\": [{}]}}\n", items.join(", ")))
            }
            _ => ok(""),
        }
    }
}

fn ok(stdout: &str) -> io::Result<RunOutput> {
    Ok(RunOutput {
        code: Some(0),
        stdout: stdout.to_string(),
        stderr: String::new(),
    })
}

/// A private directory, removed on drop.
struct StateDir(PathBuf);

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl System for Mock {
    fn state_prefix(&self) -> io::Result<PathBuf> {
        Ok(self.state.0.join("net-1"))
    }
    fn euid(&self) -> io::Result<u32> {
        Ok(self.euid)
    }
    fn find(&self, tool: &str) -> Option<PathBuf> {
        (!self.missing.contains(&tool)).then(|| PathBuf::from("/nonexistent-mock-bin").join(tool))
    }
    fn run(&self, tool: &str, args: &[&str], stdin: Option<&str>) -> io::Result<RunOutput> {
        // The detection's script is the whole library: recorded by name.
        let call = if tool == "bash" && args.first() == Some(&"-c") {
            "bash -c fw_detect_backend".to_string()
        } else {
            format!("{tool} {}", args.join(" "))
        };
        self.calls.lock().unwrap().push(call);
        match tool {
            "bash" if args.first() == Some(&"-c") => {
                assert!(args[1].contains("fw_detect_backend"), "{args:?}");
                Ok(RunOutput {
                    code: Some(self.detect.0),
                    stdout: self.detect.1.to_string(),
                    ..RunOutput::default()
                })
            }
            "nft" => self.nft(args, stdin),
            "modprobe" => Ok(RunOutput {
                code: Some(if self.modprobe_ok { 0 } else { 1 }),
                ..RunOutput::default()
            }),
            "ip" if self.route_dev.is_empty() => Ok(RunOutput {
                code: Some(2),
                stderr: "RTNETLINK answers: Network is unreachable\n".into(),
                ..RunOutput::default()
            }),
            "ip" => ok(&format!(
                "203.0.113.9 dev {} src 198.51.100.1\n",
                self.route_dev
            )),
            "bash" if args.contains(&"takeover") => {
                // What rollback.sh does when it takes a pending failsafe over.
                if let Some(dir) = args.last() {
                    std::fs::create_dir_all(Path::new(dir).join("prev"))?;
                }
                ok("")
            }
            "bash" => Ok(RunOutput {
                code: Some(if self.rollback_ok { 0 } else { 1 }),
                ..RunOutput::default()
            }),
            t if t.ends_with("-save") => {
                // Verification reads back what was loaded (last load of the family).
                let v6 = t.starts_with("ip6");
                let loaded = self.loaded.lock().unwrap();
                let text = loaded
                    .iter()
                    .rev()
                    .find(|(tool, _)| tool.starts_with("ip6") == v6 && tool != "nft")
                    .map(|(_, text)| text.clone())
                    .unwrap_or_default();
                ok(&text)
            }
            t if t.ends_with("-restore") => {
                if let Some(failed) = self.failed(t) {
                    return failed;
                }
                self.loaded
                    .lock()
                    .unwrap()
                    .push((t.to_string(), stdin.unwrap_or_default().to_string()));
                ok("")
            }
            _ => ok(""),
        }
    }
    fn run_holding(
        &self,
        tool: &str,
        args: &[&str],
        stdin: Option<&str>,
        _hold: &std::fs::File,
    ) -> io::Result<RunOutput> {
        self.held
            .lock()
            .unwrap()
            .push(format!("{tool} {}", args.join(" ")));
        self.run(tool, args, stdin)
    }
    fn run_capturing_holding(
        &self,
        tool: &str,
        args: &[&str],
        _hold: &std::fs::File,
    ) -> io::Result<RunOutput> {
        self.held
            .lock()
            .unwrap()
            .push(format!("{tool} {}", args.join(" ")));
        self.run(tool, args, None)
    }
    fn run_detached(&self, tool: &str, args: &[&str]) -> io::Result<Option<i32>> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("{tool} {}", args.join(" ")));
        Ok(Some(0))
    }
    fn read_ip_forward(&self) -> io::Result<String> {
        Ok("0".into())
    }
    fn write_ip_forward(&self, _: &str) -> io::Result<()> {
        Ok(())
    }
    fn interfaces(&self) -> io::Result<Vec<String>> {
        Ok(self.ifaces.iter().map(|s| s.to_string()).collect())
    }
    fn read_file(&self, path: &str) -> io::Result<String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
    fn read_gz(&self, path: &str) -> io::Result<String> {
        // `files` holds `/proc/config.gz` decompressed.
        self.read_file(path)
    }
    fn exists(&self, path: &str) -> bool {
        path.strip_prefix("/sys/module/")
            .is_some_and(|m| self.sys_modules.contains(&m))
    }
}

/// The test policy, through the real parser.
fn model() -> Model {
    crate::compile::compile_str("extif eth0; open tcp 22, 80; masquerade;")
        .unwrap_or_else(|d| panic!("test policy: {d:?}"))
}

/// The texts of the test policy: what every mock apply loads.
fn t() -> Texts {
    Texts::render(&model())
}

/// The 1-based line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle} not in {text}"))
        + 1
}

fn opts() -> Options {
    Options {
        backup_parent: Some(std::env::temp_dir()),
        // Hermetic: ignore an SSH session the test runner may itself run in.
        allow_session_lockout: true,
        ..Options::default()
    }
}

#[test]
fn applies_and_verifies() {
    let m = Mock::new();
    let a = run(&m, &model(), &t(), &opts()).unwrap();
    assert_eq!(a.backend, Backend::IptablesNft);
    let texts = t();
    assert_eq!(
        a.rules,
        (
            texts.ipv4.rules_of(crate::plan::Family::V4),
            texts.ipv6.rules_of(crate::plan::Family::V6)
        )
    );
    assert!(a.rules.0 > 5 && a.rules.1 > 5, "{:?}", a.rules);
    assert_eq!(a.ip_forward_after, "1");
    let calls = m.calls();
    assert!(calls.contains(&"iptables-nft-restore -w 10 --noflush".to_string()));
    // Not exclusive: only the own part is backed up, without counters.
    assert!(
        calls.iter().any(|c| c.trim() == "iptables-nft-save"),
        "{calls:?}"
    );
    assert!(!calls.contains(&"iptables-nft-save -c".to_string()));
    // The one bash run: the shared detection (no rollback).
    let bash: Vec<&String> = calls.iter().filter(|c| c.starts_with("bash")).collect();
    assert_eq!(bash.len(), 1, "{bash:?}");
    assert!(bash[0].starts_with("bash -c ") && bash[0].contains("fw_detect_backend"));
}

/// The nftables backend: backup of the own tables only (one `nft list
/// ruleset`), one `nft -e -j -f` holding the lock, verified from its echo,
/// rules counted per family.
#[test]
fn nftables_applies_and_verifies() {
    let texts = t();
    let m = Mock {
        detect: (0, "nftables\n"),
        nft_readback: Some(texts.nft.clone()),
        ..Mock::new()
    };
    m.nft_tables.lock().unwrap().push("inet firewall".into());
    let a = run(&m, &model(), &texts, &opts()).unwrap();
    assert_eq!(a.backend, Backend::Nftables);
    // The rules of the own tables: the iptables rules, and for IPv6 the
    // jump to the chain of the ICMPv6 defaults.
    assert_eq!(
        a.rules,
        (
            texts.ipv4.rules_of(crate::plan::Family::V4),
            texts.ipv6.rules_of(crate::plan::Family::V6) + 1
        )
    );
    // One listing for the backup, one load, whose echo is the verification:
    // both tables are declared, so nothing else is read.
    let nft: Vec<String> = m
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("nft"))
        .collect();
    assert_eq!(nft.len(), 2, "{nft:?}");
    assert_eq!(nft[0], "nft list ruleset");
    assert!(
        nft[1].starts_with("nft -e -j -f ") && nft[1].ends_with("/load.nft"),
        "{nft:?}"
    );
    // The load holds the applier lock.
    assert!(m.held.lock().unwrap().contains(&nft[1]));
    let calls = m.calls();
    // Nothing of iptables.
    assert!(!calls.iter().any(|c| c.contains("iptables")), "{calls:?}");
    let loaded = m.loaded.lock().unwrap().clone();
    assert_eq!(
        loaded,
        vec![("nft".to_string(), texts.nft.text().to_string())]
    );
    // `nft list ruleset` fails (a table nft cannot print): the backup lists
    // the own tables one by one instead; the absent NAT table is not listed.
    let m = Mock {
        detect: (0, "nftables\n"),
        nft_readback: Some(texts.nft.clone()),
        nft_ruleset_fails: true,
        ..Mock::new()
    };
    m.nft_tables.lock().unwrap().push("inet firewall".into());
    let _ = run(&m, &model(), &texts, &opts()).unwrap();
    let calls = m.calls();
    for want in [
        "nft list ruleset",
        "nft list tables",
        "nft list table inet firewall",
    ] {
        assert!(calls.iter().any(|c| c == want), "{want}: {calls:?}");
    }
    assert!(!calls.iter().any(|c| c == "nft list table ip firewall_nat"));
    // Chosen explicitly: no detection.
    let m = Mock {
        nft_readback: Some(texts.nft.clone()),
        ..Mock::new()
    };
    let o = Options {
        backend: Some(Backend::Nftables),
        ..opts()
    };
    let _ = run(&m, &model(), &texts, &o).unwrap();
    assert!(!m.calls().iter().any(|c| c.starts_with("bash -c")));
    // nft missing.
    let m = Mock {
        missing: vec!["nft"],
        ..Mock::new()
    };
    let e = run(&m, &model(), &texts, &o).unwrap_err();
    assert!(
        matches!(&e, ApplyError::ToolMissing { tool, .. } if tool == "nft"),
        "{e}"
    );
    assert!(e.to_string().contains("nftables"), "{e}");
}

/// nftables: a rejected rule names its line and statement (through the
/// printer's map), and everything is rolled back; a load whose echo differs
/// from what was printed (no chains, a chain with other rules) or that left
/// an extra own table is a verification failure, rolled back too.
#[test]
fn nftables_failures_name_the_statement_and_roll_back() {
    let texts = t();
    let line = line_of(texts.nft.text(), "masquerade comment");
    let o = Options {
        backend: Some(Backend::Nftables),
        ..opts()
    };
    let m = Mock {
        fail: Some((
            "nft",
            format!("/tmp/firewall.1.2/load.nft:{line}:3-25: Error: Could not process rule: Operation not supported\n\t\toifname \"eth0\" masquerade\n\t\t^^^^^^^^\n"),
        )),
        ..Mock::new()
    };
    let e = run(&m, &model(), &texts, &o).unwrap_err();
    assert_eq!(e.step(), Some(Step::LoadNft), "{e}");
    assert_eq!(e.statement(), Some("masquerade"), "{e}");
    assert!(e.host_unchanged());
    let text = e.to_string();
    assert!(
        text.contains(&format!("line {line}")) && text.contains("one transaction"),
        "{text}"
    );
    assert!(m
        .calls()
        .iter()
        .any(|c| c.starts_with("bash ") && c.contains(" rollback ")));
    // Verification: nothing read back (every chain missing).
    let m = Mock::new();
    let e = run(&m, &model(), &texts, &o).unwrap_err();
    assert_eq!(e.step(), Some(Step::Verify), "{e}");
    assert!(e.to_string().contains("chain"), "{e}");
    assert!(m.calls().iter().any(|c| c.contains(" rollback ")));
    // Another policy's rules read back (a rule less in ext-in).
    let other = Texts::render(&compiled("extif eth0; open tcp 22; masquerade;"));
    let m = Mock {
        nft_readback: Some(other.nft.clone()),
        ..Mock::new()
    };
    let e = run(&m, &model(), &texts, &o).unwrap_err();
    assert!(e.to_string().contains("expected"), "{e}");
    // A policy without NAT over a host without the NAT table: the echo shows
    // the file's placeholder of it created (and the file deletes it again):
    // nothing more is read.
    let host = Texts::render(&compiled("extif eth0; open tcp 22, 80;"));
    let host_model = compiled("extif eth0; open tcp 22, 80;");
    let m = Mock {
        nft_readback: Some(host.nft.clone()),
        ..Mock::new()
    };
    let _ = run(&m, &host_model, &host, &o).unwrap();
    assert!(
        !m.calls().iter().any(|c| c == "nft list tables"),
        "{:?}",
        m.calls()
    );
    // The NAT table of an earlier policy: the echo cannot show its deletion,
    // so one `nft list tables` after the load checks that it is gone ...
    let earlier = || vec!["inet firewall".to_string(), "ip firewall_nat".to_string()];
    let m = Mock {
        nft_readback: Some(host.nft.clone()),
        nft_tables: Mutex::new(earlier()),
        ..Mock::new()
    };
    let _ = run(&m, &host_model, &host, &o).unwrap();
    let calls = m.calls();
    let load = calls.iter().position(|c| c.starts_with("nft -e -j -f"));
    let listed = calls.iter().position(|c| c == "nft list tables");
    assert!(load.is_some() && listed > load, "{calls:?}");
    // ... and finds it still there: an extra table.
    let m = Mock {
        nft_readback: Some(host.nft.clone()),
        nft_tables: Mutex::new(earlier()),
        nft_survives: Some("ip firewall_nat"),
        ..Mock::new()
    };
    let e = run(&m, &host_model, &host, &o).unwrap_err();
    assert_eq!(e.step(), Some(Step::Verify), "{e}");
    assert!(
        e.to_string()
            .contains("table ip firewall_nat exists, but the policy has none"),
        "{e}"
    );
    assert!(m.calls().iter().any(|c| c.contains(" rollback ")));
}

#[test]
fn not_root() {
    let m = Mock {
        euid: 1000,
        ..Mock::new()
    };
    let e = run(&m, &model(), &t(), &opts()).unwrap_err();
    assert!(matches!(e, ApplyError::NotRoot { euid: 1000 }));
    assert!(e.to_string().contains("sudo"));
}

#[test]
fn tool_missing_and_backend() {
    let m = Mock {
        missing: vec!["iptables-nft-save", "iptables-save"],
        ..Mock::new()
    };
    let e = run(&m, &model(), &t(), &opts()).unwrap_err();
    assert!(matches!(&e, ApplyError::ToolMissing { tool, .. } if tool == "iptables-nft-save"));
    let m = Mock {
        detect: (5, "missing\tiptables\n"),
        ..Mock::new()
    };
    let e = run(&m, &model(), &t(), &opts()).unwrap_err();
    assert!(matches!(&e, ApplyError::ToolMissing { tool, .. } if tool == "iptables"));
    let m = Mock {
        detect: (4, "unknown\tiptables v1.4.21\n"),
        ..Mock::new()
    };
    let e = run(&m, &model(), &t(), &opts()).unwrap_err();
    assert!(matches!(e, ApplyError::UnknownBackend { .. }));
    // What the detection does not say: a failure, nothing changed.
    let m = Mock {
        detect: (1, ""),
        ..Mock::new()
    };
    let e = run(&m, &model(), &t(), &opts()).unwrap_err();
    assert!(e.to_string().contains("fw_detect_backend"), "{e}");
    assert!(!m.calls().iter().any(|c| c.contains("restore")));
    // The legacy backend's own tools, with the plain names as fallback.
    let m = Mock {
        detect: (0, "iptables-legacy\n"),
        missing: vec!["ip6tables-legacy-restore"],
        ..Mock::new()
    };
    let _ = run(&m, &model(), &t(), &opts()).unwrap();
    let calls = m.calls();
    assert!(calls.contains(&"iptables-legacy-restore -w 10 --noflush".to_string()));
    assert!(calls.contains(&"ip6tables-restore -w 10 --noflush".to_string()));
}

#[test]
fn failed_rule_names_statement_and_rolls_back() {
    let line = line_of(t().ipv4.text(), "--dports 22,80");
    let m = Mock {
        fail: Some((
            "iptables-nft-restore",
            format!("iptables-restore v1.8.9 (nf_tables): Bad ctstate\nError occurred at line: {line}\n"),
        )),
        ..Mock::new()
    };
    let e = run(&m, &model(), &t(), &opts()).unwrap_err();
    assert_eq!(e.step(), Some(Step::LoadIpv4));
    assert_eq!(e.statement(), Some("open tcp 22, 80"));
    assert!(e.host_unchanged());
    let text = e.to_string();
    assert!(text.contains(&format!("line {line}")), "{text}");
    // A line that holds no rule (a chain declaration) names no statement.
    let m = Mock {
        fail: Some((
            "iptables-nft-restore",
            "Error occurred at line: 2\n".to_string(),
        )),
        ..Mock::new()
    };
    let e = run(&m, &model(), &t(), &opts()).unwrap_err();
    assert_eq!(e.statement(), None, "{e}");
    assert!(text.contains("restored"), "{text}");
    assert!(m
        .calls()
        .iter()
        .any(|c| c.starts_with("bash ") && c.contains(" rollback ")));
}

#[test]
fn ipv6_failure_rolls_back_both() {
    let m = Mock {
        fail: Some((
            "ip6tables-nft-restore",
            "ip6tables-restore: line 3 failed\n".to_string(),
        )),
        rollback_ok: false,
        ..Mock::new()
    };
    let e = run(&m, &model(), &t(), &opts()).unwrap_err();
    assert_eq!(e.step(), Some(Step::LoadIpv6));
    assert!(!e.host_unchanged());
    match &e {
        ApplyError::Failed {
            rollback: Rollback::Failed { backup, .. },
            ..
        } => {
            assert!(backup.join("v4.rules").exists());
            let _ = std::fs::remove_dir_all(backup);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn kernel_support_is_named() {
    let line = line_of(t().ipv4.text(), "-j MASQUERADE");
    let m = Mock {
        fail: Some((
            "iptables-nft-restore",
            format!("iptables-restore: line {line} failed: Couldn't load target `MASQUERADE':No such file or directory\n"),
        )),
        ..Mock::new()
    };
    let e = run(&m, &model(), &t(), &opts()).unwrap_err();
    match &e {
        ApplyError::Failed { cause, .. } => match &**cause {
            Cause::KernelSupport { feature, .. } => {
                assert!(feature.contains("MASQUERADE"));
                assert_eq!(e.statement(), Some("masquerade"));
                assert!(e
                    .to_string()
                    .contains("needed by the policy statement `masquerade`"));
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn ssh_session_check() {
    let session = SshSession::parse_connection("203.0.113.9 50000 198.51.100.1 2222").unwrap();
    let o = Options {
        ssh_session: Some(session),
        allow_session_lockout: false,
        ..opts()
    };
    let m = Mock::new();
    let e = run(&m, &model(), &t(), &o).unwrap_err();
    assert!(matches!(e, ApplyError::SessionLockout { .. }));
    let text = e.to_string();
    assert!(
        text.contains("203.0.113.9") && text.contains("open tcp 2222"),
        "{text}"
    );
    assert!(m.calls().iter().all(|c| !c.contains("restore")));
    // The override.
    let o2 = Options {
        allow_session_lockout: true,
        ..o.clone()
    };
    let _ = run(&Mock::new(), &model(), &t(), &o2).unwrap();
    // A session over a trusted interface is fine.
    let m = Mock {
        route_dev: "eth1",
        ..Mock::new()
    };
    let _ = run(&m, &model(), &t(), &o).unwrap();
    // Port 22 from a source outside the `from` list is refused.
    let mut restricted = model();
    restricted.opens[0].from = vec!["198.51.100.0/24".parse().unwrap()];
    let s22 = SshSession::parse_connection("::ffff:203.0.113.9 50000 198.51.100.1 22").unwrap();
    let o3 = Options {
        ssh_session: Some(s22),
        allow_session_lockout: false,
        ..opts()
    };
    let e = run(&Mock::new(), &restricted, &t(), &o3).unwrap_err();
    assert!(e.to_string().contains("only to sources"), "{e}");
}

#[test]
fn verify_detects_differences() {
    let texts = Texts::render(&compiled("extif eth0; open tcp 22, 80;"));
    let saved = texts.ipv4.text();
    let n = texts.ipv4.rules_of(crate::plan::Family::V4);
    assert_eq!(iptables::verify(&texts.ipv4, saved), Ok(n));
    // iptables-save leaves one-word comments unquoted and adds counters.
    let bare = saved
        .replace("\"masquerade\"", "masquerade")
        .replace("-A ", "[0:0] -A ");
    assert_eq!(iptables::verify(&texts.ipv4, &bare), Ok(n));
    let drop_accept = saved.replace(":INPUT DROP", ":INPUT ACCEPT");
    assert!(iptables::verify(&texts.ipv4, &drop_accept)
        .unwrap_err()
        .contains("policy ACCEPT, expected DROP"));
    let extra = saved.replacen("COMMIT", "-A fw-input -j DROP\nCOMMIT", 1);
    assert!(iptables::verify(&texts.ipv4, &extra)
        .unwrap_err()
        .contains("rules"));
    let other = saved.replace("open tcp 22, 80", "open tcp 22");
    assert!(iptables::verify(&texts.ipv4, &other).is_err());
    // No NAT in this policy: an own nat chain left behind is a mismatch.
    assert!(!saved.contains("*nat"));
    let stale_nat =
        format!("{saved}*nat\n:POSTROUTING ACCEPT [0:0]\n:fw-postrouting - [0:0]\nCOMMIT\n");
    assert!(iptables::verify(&texts.ipv4, &stale_nat)
        .unwrap_err()
        .contains("table nat"));
    let more = saved.replacen(
        ":fw-ext-in - [0:0]",
        ":fw-ext-in - [0:0]\n:fw-stray - [0:0]",
        1,
    );
    assert!(iptables::verify(&texts.ipv4, &more)
        .unwrap_err()
        .contains("unexpected chain fw-stray"));
    // Other tools' chains and rules are theirs: not a mismatch.
    let foreign = saved.replacen(
        ":fw-ext-in - [0:0]",
        ":fw-ext-in - [0:0]\n:stray - [0:0]\n-A INPUT -j stray",
        1,
    );
    assert_eq!(iptables::verify(&texts.ipv4, &foreign), Ok(n));
    // A missing hook is.
    let unhooked = saved.replace("-A INPUT -j fw-input\n", "");
    assert!(iptables::verify(&texts.ipv4, &unhooked).is_err());
    assert_eq!(
        iptables::error_line("Error occurred at line: 12\n"),
        Some(12)
    );
    assert_eq!(
        iptables::error_line("iptables-restore: line 10 failed"),
        Some(10)
    );
    assert_eq!(iptables::error_line("nothing"), None);
}

#[test]
fn invalid_failsafe() {
    let o = Options {
        failsafe: Some(Duration::from_secs(7200)),
        ..opts()
    };
    let e = run(&Mock::new(), &model(), &t(), &o).unwrap_err();
    assert!(matches!(e, ApplyError::InvalidFailsafe { .. }));
}

/// Live rulesets with other tools' rules (fail2ban, Docker), counters, an
/// own chain a new policy no longer has, and an own NAT table.
fn foreign_lives() -> Vec<String> {
    let docker = "# Generated by iptables-save v1.8.9\n*raw\n:PREROUTING ACCEPT [5:300]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n\
*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n:fw-postrouting - [0:0]\n\
[1:60] -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\n-A POSTROUTING -j fw-postrouting\n\
-A DOCKER -p tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80\n-A fw-postrouting -o eth0 -m comment --comment masquerade -j MASQUERADE\nCOMMIT\n\
*filter\n:INPUT DROP [10:20]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOCKER - [0:0]\n:f2b-sshd - [0:0]\n:fw-input - [0:0]\n:fw-old - [0:0]\n\
[7:420] -A INPUT -j f2b-sshd\n[3:4] -A INPUT -j fw-input\n-A FORWARD -o docker0 -j DOCKER\n-A FORWARD -j fw-old\n-A FORWARD -j fw-old\n\
-A DOCKER -d 172.17.0.2/32 -p tcp --dport 80 -j ACCEPT\n-A f2b-sshd -s 198.51.100.9/32 -j REJECT --reject-with icmp-port-unreachable\n\
-A fw-input -i lo -m comment --comment \"default: loopback\" -j ACCEPT\n-A fw-input -j fw-old\nCOMMIT\n";
    vec![
        String::new(),
        docker.to_string(),
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
            .to_string(),
        t().ipv4.text().to_string(),
        format!("{}{docker}", t().ipv6.text()),
    ]
}

/// The shell library's `fw_ipt_own` / `fw_ipt_prepare MODE FILE` on `live`.
fn shell_ipt(function: &str, live: &str, file: Option<&str>) -> String {
    let dir = std::env::temp_dir().join(format!("fw-ipt-{}-{function}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (lib, input, text) = (dir.join("lib.sh"), dir.join("live"), dir.join("file"));
    std::fs::write(&lib, format!("{}{}", shell::constants(), shell::LIBRARY)).unwrap();
    std::fs::write(&input, live).unwrap();
    std::fs::write(&text, file.unwrap_or("")).unwrap();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(". \"$1\"; {function} \"$3\" <\"$2\""))
        .arg("bash")
        .arg(&lib)
        .arg(&input)
        .arg(&text)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn own_keeps_only_what_the_firewall_owns_and_agrees_with_the_shell() {
    let lives = foreign_lives();
    let own = iptables::own(&lives[1]);
    assert_eq!(
        own,
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:fw-postrouting - [0:0]\n\
-A POSTROUTING -j fw-postrouting\n-A fw-postrouting -o eth0 -m comment --comment masquerade -j MASQUERADE\nCOMMIT\n\
*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:fw-input - [0:0]\n:fw-old - [0:0]\n\
-A INPUT -j fw-input\n-A FORWARD -j fw-old\n-A FORWARD -j fw-old\n-A fw-input -i lo -m comment --comment \"default: loopback\" -j ACCEPT\n-A fw-input -j fw-old\nCOMMIT\n"
    );
    assert!(!own.contains("f2b") && !own.contains("DOCKER") && !own.contains("raw"));
    for live in &lives {
        // `fw_ipt_own` takes no FILE: the empty third argument is ignored.
        assert_eq!(
            shell_ipt("fw_ipt_own", live, None),
            iptables::own(live),
            "{live}"
        );
    }
}

#[test]
fn prepare_skips_present_hooks_deletes_stale_chains_and_agrees_with_the_shell() {
    let lives = foreign_lives();
    let texts = t();
    let policy = texts.ipv4.text();
    let out = iptables::prepare(policy, &lives[1], false);
    // Line N of the policy is line N of the load: errors still map.
    for (n, line) in policy.lines().enumerate() {
        let got = out.lines().nth(n).unwrap();
        assert!(
            got == line || got == format!("# hook present: {line}"),
            "{n}: {got}"
        );
    }
    assert!(out.contains("# hook present: -A INPUT -j fw-input\n"));
    assert!(out.contains("\n-A FORWARD -j fw-forward\n"));
    let tail = |out: &str, text: &str| -> String {
        out.lines()
            .skip(text.lines().count())
            .map(|l| format!("{l}\n"))
            .collect()
    };
    // The policy has NAT: its fw-postrouting stays (emptied by its declaration).
    assert!(policy.contains(":fw-postrouting - [0:0]"));
    assert_eq!(
        tail(&out, policy),
        "*filter\n-D FORWARD -j fw-old\n-D FORWARD -j fw-old\n-F fw-old\n-X fw-old\nCOMMIT\n"
    );
    // The IPv6 text has no NAT: the own nat chain goes, its hook first.
    let v6 = texts.ipv6.text();
    assert_eq!(
        tail(&iptables::prepare(v6, &lives[1], false), v6),
        "*nat\n-D POSTROUTING -j fw-postrouting\n-F fw-postrouting\n-X fw-postrouting\nCOMMIT\n\
*filter\n-D FORWARD -j fw-old\n-D FORWARD -j fw-old\n-F fw-old\n-X fw-old\nCOMMIT\n"
    );
    assert!(!out.contains("f2b") && !out.contains("DOCKER"));
    // exclusive: other tables are emptied
    let ex = iptables::prepare(policy, &lives[1], true);
    assert_eq!(
        tail(&ex, policy),
        "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
    );
    let files = [
        policy.to_string(),
        texts.ipv6.text().to_string(),
        iptables::own(&lives[1]),
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
            .to_string(),
    ];
    for live in &lives {
        for file in &files {
            for (mode, exclusive) in [("own", false), ("exclusive", true)] {
                assert_eq!(
                    shell_ipt(&format!("fw_ipt_prepare {mode}"), live, Some(file)),
                    iptables::prepare(file, live, exclusive),
                    "{mode}\n{live}\n{file}"
                );
            }
        }
    }
}

#[test]
fn verify_looks_at_the_own_part_only() {
    let texts = t();
    let v4 = &texts.ipv4;
    let foreign = "*filter\n:f2b-sshd - [0:0]\n-A INPUT -j f2b-sshd\n-A f2b-sshd -s 198.51.100.9/32 -j REJECT\nCOMMIT\n";
    let live = v4.text().replace(
        "*filter\n",
        "*filter\n:f2b-sshd - [0:0]\n-A INPUT -j f2b-sshd\n-A f2b-sshd -s 198.51.100.9/32 -j REJECT\n",
    );
    assert!(live.contains("f2b") && foreign.contains("f2b"));
    assert!(
        iptables::verify(v4, &live).is_ok(),
        "{:?}",
        iptables::verify(v4, &live)
    );
    // a second hook is a mismatch
    let twice = live.replace(
        "-A INPUT -j fw-input\n",
        "-A INPUT -j fw-input\n-A INPUT -j fw-input\n",
    );
    assert!(iptables::verify(v4, &twice).is_err());
    // a stale own chain too
    let stale = live.replace("*filter\n", "*filter\n:fw-old - [0:0]\n");
    assert!(iptables::verify(v4, &stale).unwrap_err().contains("fw-old"));
}

#[test]
fn sessions_parse() {
    let s = SshSession::parse_client("2001:db8::9 50000 22").unwrap();
    assert_eq!(s.server_port, 22);
    assert!(s.client.is_ipv6());
    let s = SshSession::parse_connection("::ffff:203.0.113.9 1 ::ffff:198.51.100.1 22").unwrap();
    assert_eq!(s.client.to_string(), "203.0.113.9");
    assert!(SshSession::parse_connection("garbage").is_none());
    assert!(SshSession::parse_connection("1.2.3.4 x 5.6.7.8 22").is_none());
}

/// An IPv6 link-local session (`fe80::1%eth0`) parses, its zone is the
/// arrival interface, and the guard decides for that interface (no route
/// lookup). It used to be unparsable, and the guard was silently skipped.
#[test]
fn link_local_sessions_are_guarded_on_their_zone() {
    let s = SshSession::parse_connection("fe80::1%eth1 50000 fe80::2%eth1 22").unwrap();
    assert_eq!(s.client.to_string(), "fe80::1");
    assert_eq!(s.arrival.as_deref(), Some("eth1"));
    let s = SshSession::parse_client("fe80::1%eth0 50000 22").unwrap();
    assert_eq!(s.arrival.as_deref(), Some("eth0"));
    assert!(SshSession::parse_connection("fe80::1% 1 fe80::2 22").is_none());
    assert!(SshSession::parse_connection("192.0.2.1%eth0 1 192.0.2.2 22").is_none());
    // The route would say eth0 (external, port 22 open); the zone says eth2,
    // which is neither external nor trusted: refused.
    let m = compiled("extif eth0; trust eth1; open tcp 22;");
    let session = SshSession::parse_connection("fe80::1%eth2 50000 fe80::2%eth2 22").unwrap();
    let o = Options {
        ssh_session: Some(session),
        allow_session_lockout: false,
        ..opts()
    };
    let mock = Mock {
        ifaces: vec!["lo", "eth0", "eth1", "eth2"],
        ..Mock::new()
    };
    let e = run(&mock, &m, &t(), &o).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ApplyError::SessionLockout { .. }), "{text}");
    assert!(text.contains("arriving on eth2"), "{text}");
    assert!(text.contains("fe80::1%eth2"), "{text}");
    assert!(mock.calls().iter().all(|c| !c.starts_with("ip ")));
    // Over the external interface it is accepted.
    let session = SshSession::parse_connection("fe80::1%eth0 50000 fe80::2%eth0 22").unwrap();
    let o = Options {
        ssh_session: Some(session),
        ..o
    };
    let _ = run(&Mock::new(), &m, &t(), &o).unwrap();
    // A zone that is no interface of this host: refused, not guessed.
    let o = Options {
        ssh_session: SshSession::parse_connection("fe80::1%eth9 1 fe80::2%eth9 22"),
        ..o
    };
    let e = run(&Mock::new(), &m, &t(), &o).unwrap_err();
    assert!(
        matches!(e, ApplyError::SessionUnreadable { .. }) && e.to_string().contains("eth9"),
        "{e}"
    );
}

/// A session variable that is set but unreadable is an error naming the
/// variable, not "no session"; the first variable set decides.
#[test]
fn an_unreadable_session_variable_is_not_ignored() {
    let some = |s: &str| Some(s.to_string());
    assert_eq!(SshSession::from_vars(None, None), None);
    assert_eq!(SshSession::from_vars(some(""), some("")), None);
    assert_eq!(
        SshSession::from_vars(some("garbage"), some("203.0.113.9 1 22")),
        Some(Err(("SSH_CONNECTION".to_string(), "garbage".to_string())))
    );
    assert_eq!(
        SshSession::from_vars(None, some("x y")),
        Some(Err(("SSH_CLIENT".to_string(), "x y".to_string())))
    );
    assert!(matches!(
        SshSession::from_vars(some(""), some("203.0.113.9 1 22")),
        Some(Ok(_))
    ));
    let e = ApplyError::SessionUnreadable {
        variable: "SSH_CONNECTION".into(),
        value: "fe80::1%bad/ 1 x 22".into(),
        why: "expected `client-ip client-port server-ip server-port`".into(),
    };
    let text = e.to_string();
    assert!(
        text.contains("SSH_CONNECTION") && text.contains("allow_session_lockout"),
        "{text}"
    );
    assert!(text.contains("FIREWALL_ALLOW_SESSION_LOCKOUT=1"), "{text}");
}

fn compiled(text: &str) -> Model {
    crate::compile::test_model(text)
}

/// Item 7: an `extif` the host lacks is refused before anything runs, naming
/// the interfaces the host has; the override and wildcards pass.
#[test]
fn missing_extif_is_refused() {
    let typo = compiled("extif eth9; open tcp 22;");
    let m = Mock::new();
    let e = run(&m, &typo, &t(), &opts()).unwrap_err();
    match &e {
        ApplyError::MissingInterface { missing, present } => {
            assert_eq!(missing, &vec![Iface::new("eth9").unwrap()]);
            assert_eq!(present, &vec!["lo", "eth0", "eth1"]);
        }
        other => panic!("{other:?}"),
    }
    let text = e.to_string();
    assert!(
        text.contains("eth9") && text.contains("lo, eth0, eth1"),
        "{text}"
    );
    assert!(
        text.contains("allow_missing") && text.contains("FIREWALL_ALLOW_MISSING=eth9"),
        "{text}"
    );
    assert!(m.calls().is_empty(), "ran tools: {:?}", m.calls());
    let o = Options {
        allow_missing: vec![Iface::new("eth9").unwrap()],
        ..opts()
    };
    let _ = run(&Mock::new(), &typo, &t(), &o).unwrap();
    // Wildcards need not match anything; a missing trusted interface is allowed.
    let _ = run(
        &Mock::new(),
        &compiled("extif \"ppp+\"; open tcp 22;"),
        &t(),
        &opts(),
    )
    .unwrap();
    let _ = run(
        &Mock::new(),
        &compiled("extif eth0; trust wg0; open tcp 22;"),
        &t(),
        &opts(),
    )
    .unwrap();
    // Several missing, one present.
    let e = run(
        &Mock::new(),
        &compiled("extif eth0, ens3, ens4; open tcp 22;"),
        &t(),
        &opts(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("interfaces ens3, ens4 do not exist"),
        "{e}"
    );
}

/// Item 8: opens apply to the external interfaces only. A session over an
/// interface that is neither external nor trusted meets the input policy;
/// the old guard let it pass.
#[test]
fn session_over_an_untrusted_interface_is_refused() {
    let m = compiled("extif eth0; trust eth1; open tcp 22;");
    let session = SshSession::parse_connection("192.0.2.9 50000 192.0.2.1 22").unwrap();
    let o = Options {
        ssh_session: Some(session),
        allow_session_lockout: false,
        ..opts()
    };
    let mock = Mock {
        route_dev: "eth2",
        ifaces: vec!["lo", "eth0", "eth1", "eth2"],
        ..Mock::new()
    };
    let e = run(&mock, &m, &t(), &o).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ApplyError::SessionLockout { .. }), "{text}");
    assert!(
        text.contains("eth2 (untrusted interface)") && text.contains("input policy is drop"),
        "{text}"
    );
    // Over the external interface port 22 is open; over the trusted one everything.
    let _ = run(
        &Mock {
            route_dev: "eth0",
            ..Mock::new()
        },
        &m,
        &t(),
        &o,
    )
    .unwrap();
    let _ = run(
        &Mock {
            route_dev: "eth1",
            ..Mock::new()
        },
        &m,
        &t(),
        &o,
    )
    .unwrap();
    // The route cannot be read: every interface must accept it.
    let unknown = Mock {
        route_dev: "",
        ifaces: vec!["lo", "eth0", "eth1", "eth2"],
        ..Mock::new()
    };
    let e = run(&unknown, &m, &t(), &o).unwrap_err();
    assert!(e.to_string().contains("could not be read"), "{e}");
    let unknown = Mock {
        route_dev: "",
        ..Mock::new()
    };
    let _ = run(&unknown, &m, &t(), &o).unwrap();
}

/// Item 13: rules in the other backend stay in force; a detected backend is
/// refused then, an explicitly chosen one is used.
#[test]
fn rules_in_the_other_backend_are_refused() {
    // What fw_detect_backend prints then (tested on fake hosts in detect.rs).
    let m = Mock {
        detect: (
            3,
            "mismatch\tiptables-nft\tiptables-legacy\tiptables-legacy-save\t-A INPUT -p tcp --dport 22 -j DROP\n",
        ),
        ..Mock::new()
    };
    let e = run(&m, &model(), &t(), &opts()).unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(
            e,
            ApplyError::BackendMismatch {
                selected: Backend::IptablesNft,
                other: Backend::IptablesLegacy,
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("iptables-legacy-save")
            && text.contains("-A INPUT -p tcp --dport 22 -j DROP"),
        "{text}"
    );
    assert!(
        text.contains("Backend::IptablesLegacy")
            && text.contains("FIREWALL_BACKEND=iptables-legacy"),
        "{text}"
    );
    assert!(
        m.calls()
            .iter()
            .all(|c| !c.contains("restore") && !c.contains("-save")),
        "{:?}",
        m.calls()
    );
    // Chosen explicitly: no detection, no check.
    let m = Mock {
        detect: (
            3,
            "mismatch\tiptables-nft\tiptables-legacy\tiptables-legacy-save\t:INPUT DROP\n",
        ),
        ..Mock::new()
    };
    let o = Options {
        backend: Some(Backend::IptablesNft),
        ..opts()
    };
    let _ = run(&m, &model(), &t(), &o).unwrap();
    assert!(!m.calls().iter().any(|c| c.starts_with("bash -c")));
}

/// Item 13: an unusable backup location names the directory and the way to choose another.
#[test]
fn unusable_backup_location_is_named() {
    for parent in ["/proc/no-such-dir", "/proc/sys"] {
        let o = Options {
            backup_parent: Some(PathBuf::from(parent)),
            ..opts()
        };
        let e = run(&Mock::new(), &model(), &t(), &o).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, ApplyError::BackupLocation { .. }), "{text}");
        assert!(
            text.contains(parent) && text.contains("backup_parent") && text.contains("TMPDIR"),
            "{text}"
        );
        assert!(e.host_unchanged());
    }
}

/// Item 13: a tool killed at its timeout is reported as such.
#[test]
fn a_timeout_is_named() {
    struct Slow(Mock);
    impl System for Slow {
        fn euid(&self) -> io::Result<u32> {
            self.0.euid()
        }
        fn find(&self, tool: &str) -> Option<PathBuf> {
            self.0.find(tool)
        }
        fn run(&self, tool: &str, args: &[&str], stdin: Option<&str>) -> io::Result<RunOutput> {
            if tool.ends_with("-restore") && !args.contains(&"-c") {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    ToolTimeout {
                        tool: tool.into(),
                        after: Duration::from_secs(60),
                    },
                ));
            }
            self.0.run(tool, args, stdin)
        }
        fn run_detached(&self, tool: &str, args: &[&str]) -> io::Result<Option<i32>> {
            self.0.run_detached(tool, args)
        }
        fn read_ip_forward(&self) -> io::Result<String> {
            self.0.read_ip_forward()
        }
        fn write_ip_forward(&self, v: &str) -> io::Result<()> {
            self.0.write_ip_forward(v)
        }
        fn interfaces(&self) -> io::Result<Vec<String>> {
            self.0.interfaces()
        }
        fn state_prefix(&self) -> io::Result<PathBuf> {
            self.0.state_prefix()
        }
        fn read_file(&self, path: &str) -> io::Result<String> {
            self.0.read_file(path)
        }
        fn read_gz(&self, path: &str) -> io::Result<String> {
            self.0.read_gz(path)
        }
        fn exists(&self, path: &str) -> bool {
            self.0.exists(path)
        }
    }
    let e = run(&Slow(Mock::new()), &model(), &t(), &opts()).unwrap_err();
    let t = e
        .timed_out()
        .unwrap_or_else(|| panic!("not a timeout: {e}"));
    assert!(t.tool.ends_with("-restore") && t.after == Duration::from_secs(60));
    assert!(e.to_string().contains("did not finish within 60 s"), "{e}");
}

#[test]
fn every_apply_arms_the_watchdog_and_disarms_it_after_verification() {
    let m = Mock::new();
    let a = run(&m, &model(), &t(), &opts()).unwrap();
    assert!(a.failsafe.is_none());
    assert!(!a.took_over);
    let pid = std::process::id().to_string();
    let calls = m.calls();
    let arm = calls
        .iter()
        .find(|c| c.starts_with("setsid -f bash "))
        .unwrap_or_else(|| panic!("no watchdog in {calls:?}"));
    assert!(arm.contains(" watchdog "), "{arm}");
    assert!(arm.ends_with(&format!(" 0 {pid}")), "{arm}");
    // Disarmed: the backup directory is gone, the pending file cleared.
    let dir = arm.split_whitespace().nth(5).unwrap();
    assert!(!Path::new(dir).exists(), "{dir} left behind");
    assert!(!m.state.0.join("net-1.pending").exists());
}

#[test]
fn a_held_lock_makes_apply_busy_and_changes_nothing() {
    let m = Mock::new();
    let prefix = m.state_prefix().unwrap();
    let held = lock::Lock::acquire(&prefix, Duration::ZERO).unwrap();
    let o = Options {
        lock_wait: Some(Duration::from_millis(100)),
        ..opts()
    };
    let e = run(&m, &model(), &t(), &o).unwrap_err();
    match &e {
        ApplyError::Busy { holder, .. } => assert_eq!(*holder, Some(std::process::id())),
        other => panic!("{other:?}"),
    }
    assert!(e.host_unchanged());
    assert!(e.to_string().contains("nothing was changed"), "{e}");
    assert!(m
        .calls()
        .iter()
        .all(|c| !c.contains("restore") && !c.contains("setsid")));
    drop(held);
    let _ = run(&m, &model(), &t(), &o).unwrap();
}

#[test]
fn a_pending_failsafe_is_taken_over() {
    let m = Mock::new();
    let old = m.state.0.join("old-backup");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("armed"), "").unwrap();
    std::fs::write(
        m.state.0.join("net-1.pending"),
        format!("{}\n", old.display()),
    )
    .unwrap();
    let o = Options {
        failsafe: Some(Duration::from_secs(30)),
        ..opts()
    };
    let a = run(&m, &model(), &t(), &o).unwrap();
    assert!(a.took_over);
    // The take-over holds the applier lock (a SIGKILL of this process cannot
    // let the watchdog revert while an orphaned take-over is still running).
    assert!(m
        .held
        .lock()
        .unwrap()
        .iter()
        .any(|c| c.starts_with("bash ") && c.contains(" takeover ")));
    // This apply's watchdog is the pending one now.
    let guard = a.failsafe.as_ref().unwrap();
    let pending = std::fs::read_to_string(m.state.0.join("net-1.pending")).unwrap();
    assert_eq!(pending.trim_end(), guard.backup_dir().display().to_string());
    let _ = std::fs::remove_dir_all(guard.backup_dir());
}

/// A kernel configuration with every option the test policy needs `=y`
/// (iptables-nft), with `edit` applied to it.
fn kernel_config(edit: &[(&str, &str)]) -> String {
    let reqs = crate::plan::requirements::of(
        &crate::plan::lower(&model()),
        crate::plan::requirements::Backend::IptablesNft,
    );
    let mut text = String::from("# Linux/x86 6.1.0 Kernel Configuration\n");
    for r in reqs {
        match edit.iter().find(|(c, _)| *c == r.config) {
            Some((c, "unset")) => text.push_str(&format!("# {c} is not set\n")),
            Some((c, v)) => text.push_str(&format!("{c}={v}\n")),
            None => text.push_str(&format!("{}=y\n", r.config)),
        }
    }
    text
}

fn with_kernel(config: String) -> Mock {
    let mut m = Mock::new();
    m.files.insert("/proc/config.gz".into(), config);
    m.files
        .insert("/proc/sys/kernel/osrelease".into(), "6.1.0-test\n".into());
    m
}

/// Section 8: a kernel without the masquerade target is refused before
/// anything ran, and the message names the option, its module, the
/// statement, and what to do.
#[test]
fn kernel_missing_an_option_is_refused_before_anything_changes() {
    let m = with_kernel(kernel_config(&[(
        "CONFIG_NETFILTER_XT_TARGET_MASQUERADE",
        "unset",
    )]));
    let e = run(&m, &model(), &t(), &opts()).unwrap_err();
    let ApplyError::KernelMissing { missing, backend } = &e else {
        panic!("not KernelMissing: {e}");
    };
    assert_eq!(*backend, crate::plan::requirements::Backend::IptablesNft);
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].module, "xt_MASQUERADE");
    let text = e.to_string();
    for part in [
        "CONFIG_NETFILTER_XT_TARGET_MASQUERADE",
        "xt_MASQUERADE",
        "needed by: masquerade",
        "modprobe xt_MASQUERADE",
        "skip_kernel_check",
        "nothing was changed",
    ] {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
    assert!(e.host_unchanged());
    // Only read-only probes ran (the detection, the config):
    // no backup, no watchdog, no load.
    let calls = m.calls();
    assert!(
        !calls.iter().any(|c| c.contains("-save -c")
            || c.contains("-restore")
            || c.starts_with("setsid")
            || (c.starts_with("bash") && c != "bash -c fw_detect_backend")),
        "{calls:?}"
    );
    assert!(!m.state.0.join("net-1.lock").exists());
    assert!(m.loaded.lock().unwrap().is_empty());
}

#[test]
fn kernel_module_option_loaded_is_available() {
    let mut m = with_kernel(kernel_config(&[(
        "CONFIG_NETFILTER_XT_TARGET_MASQUERADE",
        "m",
    )]));
    m.sys_modules = vec!["xt_MASQUERADE"];
    let a = run(&m, &model(), &t(), &opts()).unwrap();
    assert!(a.kernel_checked);
}

#[test]
fn kernel_module_option_loadable_is_available() {
    // Listed in modules.dep (compressed module, `-` spelled as `_`).
    let mut m = with_kernel(kernel_config(&[(
        "CONFIG_NETFILTER_XT_TARGET_MASQUERADE",
        "m",
    )]));
    m.files.insert(
        "/lib/modules/6.1.0-test/modules.dep".into(),
        "kernel/net/netfilter/xt_MASQUERADE.ko.zst: kernel/net/netfilter/x_tables.ko.zst\n".into(),
    );
    assert!(run(&m, &model(), &t(), &opts()).unwrap().kernel_checked);
    // Not listed, but `modprobe -n` finds it.
    let mut m = with_kernel(kernel_config(&[(
        "CONFIG_NETFILTER_XT_TARGET_MASQUERADE",
        "m",
    )]));
    m.modprobe_ok = true;
    assert!(run(&m, &model(), &t(), &opts()).unwrap().kernel_checked);
    assert!(m
        .calls()
        .contains(&"modprobe -n -q xt_MASQUERADE".to_string()));
}

#[test]
fn kernel_module_option_not_loadable_is_missing() {
    let mut m = with_kernel(kernel_config(&[(
        "CONFIG_NETFILTER_XT_TARGET_MASQUERADE",
        "m",
    )]));
    m.files.insert(
        "/lib/modules/6.1.0-test/modules.dep".into(),
        "kernel/net/netfilter/xt_LOG.ko: \n".into(),
    );
    let e = run(&m, &model(), &t(), &opts()).unwrap_err();
    assert!(
        matches!(&e, ApplyError::KernelMissing { missing, .. } if missing.len() == 1 && missing[0].module == "xt_MASQUERADE"),
        "{e}"
    );
}

#[test]
fn kernel_config_from_boot_when_proc_has_none() {
    let mut m = Mock::new();
    m.files
        .insert("/proc/sys/kernel/osrelease".into(), "6.1.0-test\n".into());
    m.files.insert(
        "/boot/config-6.1.0-test".into(),
        kernel_config(&[("CONFIG_NETFILTER_XT_TARGET_MASQUERADE", "unset")]),
    );
    let e = run(&m, &model(), &t(), &opts()).unwrap_err();
    assert!(matches!(e, ApplyError::KernelMissing { .. }), "{e}");
}

#[test]
fn kernel_config_unreadable_is_not_checked() {
    let m = Mock::new();
    let a = run(&m, &model(), &t(), &opts()).unwrap();
    assert!(!a.kernel_checked);
    // Empty output is no configuration either.
    let m = with_kernel(String::new());
    assert!(!run(&m, &model(), &t(), &opts()).unwrap().kernel_checked);
}

#[test]
fn kernel_check_can_be_skipped() {
    let m = with_kernel(kernel_config(&[(
        "CONFIG_NETFILTER_XT_TARGET_MASQUERADE",
        "unset",
    )]));
    let o = Options {
        skip_kernel_check: true,
        ..opts()
    };
    let a = run(&m, &model(), &t(), &o).unwrap();
    assert!(!a.kernel_checked);
    assert!(!m.calls().iter().any(|c| c.starts_with("gzip")));
}

#[test]
fn legacy_backend_checks_the_legacy_requirements() {
    let m = with_kernel(kernel_config(&[]));
    let o = Options {
        backend: Some(Backend::IptablesLegacy),
        ..opts()
    };
    // The config lists the iptables-nft requirements only: ip_tables is missing.
    let e = run(&m, &model(), &t(), &o).unwrap_err();
    let ApplyError::KernelMissing { missing, backend } = &e else {
        panic!("not KernelMissing: {e}");
    };
    assert_eq!(*backend, crate::plan::requirements::Backend::IptablesLegacy);
    assert!(missing.iter().any(|r| r.module == "ip_tables"), "{e}");
}

/// The kernel check with the nftables backend: the nftables requirements
/// (here the masquerade statement's `nft_masq`), before anything ran.
#[test]
fn nftables_backend_checks_the_nftables_requirements() {
    let reqs = crate::plan::requirements::of(&crate::plan::lower(&model()), Backend::Nftables);
    let config: String = reqs
        .iter()
        .map(|r| {
            if r.config == "CONFIG_NFT_MASQ" {
                format!("# {} is not set\n", r.config)
            } else {
                format!("{}=y\n", r.config)
            }
        })
        .collect();
    let o = Options {
        backend: Some(Backend::Nftables),
        ..opts()
    };
    let m = with_kernel(config.clone());
    let e = run(&m, &model(), &t(), &o).unwrap_err();
    let ApplyError::KernelMissing { missing, backend } = &e else {
        panic!("not KernelMissing: {e}");
    };
    assert_eq!(*backend, Backend::Nftables);
    assert_eq!(missing.len(), 1, "{e}");
    assert_eq!(missing[0].module, "nft_masq", "{e}");
    assert!(e.to_string().contains("masquerade"), "{e}");
    assert!(
        !m.calls().iter().any(|c| c.starts_with("nft")),
        "{:?}",
        m.calls()
    );
    // With it: checked, and applied.
    let m = Mock {
        nft_readback: Some(t().nft),
        ..with_kernel(config.replace("# CONFIG_NFT_MASQ is not set", "CONFIG_NFT_MASQ=y"))
    };
    assert!(run(&m, &model(), &t(), &o).unwrap().kernel_checked);
}

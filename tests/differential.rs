//! Differential test of the two backends (issue 7, item 5): a policy
//! rendered as iptables-restore texts (`iptables_restore()`,
//! `ip6tables_restore()`) and as one nftables file (`nft()`) must give the
//! same verdicts to the same traffic.
//!
//! Two labs (`differential/lab.rs`) are built once per test and reused: two
//! [`common::Topology`]s (outside / firewall / inside namespaces), forwarding
//! on in the firewall for both families (the rules alone decide what
//! crosses; the bash script of a router would switch IPv4 forwarding on
//! too), the outside host routed to the inside networks (a forwarded
//! connection that is not masqueraded can be answered, so the source address
//! shows whether it was), and in every namespace a server (this binary
//! re-executed, `differential/agent.rs`) on TCP and UDP ports
//! [`PROBE_PORTS`] that answers with the host, port and protocol reached and
//! the source address it saw. For each policy one lab loads the iptables
//! texts and the other the nft file (each after emptying what the previous
//! policy left), then both run the same probe sample ([`lab::sample`] of
//! [`PROBE_PORTS`] and every port the policy names, [`lab::ports_of`]: 200
//! to 700 TCP connects, UDP datagrams and pings, IPv4 and IPv6: outside to
//! the firewall's external and internal addresses and to the inside host;
//! inside outward and to the firewall; the firewall outward), all at once,
//! each bounded by one second ([`agent::PROBE_TIMEOUT`]). ICMP error rate
//! limits are off in the labs (see `lab.rs`), or which closed UDP port
//! answers `refused` and which `timeout` would be chance.
//!
//! Verdicts are words that do not depend on timing: `connected to
//! firewall:25/tcp from 198.51.100.2`, `reply inside:53/udp from ...`,
//! `refused`, `timeout`, `not permitted`, `reply` / `no reply` for pings.
//! A probe whose verdicts differ is run again (up to [`RECHECKS`] times, on
//! both labs): a rule difference gives the same verdicts every time, a
//! packet lost on a loaded machine does not. A difference that remains fails
//! the test with the policy, the probe, both verdicts and all rendered texts.
//!
//! * `random_policies_give_the_same_verdicts_on_both_backends`: proptest
//!   policies of the DSL.md section 2 statements (`differential/gen.rs`),
//!   [`DEFAULT_CASES`] cases (about 20 s); set `DIFFERENTIAL_CASES=N` for
//!   more (about 1.3 s each), `DIFFERENTIAL_SEED=N` to repeat a run (its
//!   seed is printed, also on failure). Texts that `Policy::parse` refuses
//!   (about 3 %: most mistakes are avoided by construction) are regenerated
//!   and counted (printed at the end). A failure is shrunk (at most
//!   [`MAX_SHRINK_ITERS`] steps) to a small policy, printed as DSL text.
//! * `shipped_policies_give_the_same_verdicts_on_both_backends`: every
//!   policy the repository ships: `firewall!` blocks of `tests/ui/pass`,
//!   `examples`, `tests` and `tests/common`, and the policy texts (string
//!   literals starting with `extif`) of `tests/*.rs` and `tests/common`
//!   that parse; equal canonical forms are run once (about 50 policies,
//!   about 30 s with two pairs of labs).
//!
//! Needs root, `ip netns`, iptables, nft (see `common::gate`; under
//! `CI=true` a missing piece fails).

mod common;
#[path = "common/sources.rs"]
mod sources;

#[path = "differential/agent.rs"]
mod agent;
#[path = "differential/gen.rs"]
mod gen;
#[path = "differential/lab.rs"]
mod lab;

use firewall::Policy;
use lab::{Backend, Lab, Probe};
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Instant;

/// Ports with a server in every namespace, probed from outside on the
/// firewall: the generator's pool plus one no policy names.
const PROBE_PORTS: [u16; 11] = [22, 25, 26, 53, 80, 443, 2222, 8000, 8001, 8080, 3306];

/// Random policies per run unless `DIFFERENTIAL_CASES` says otherwise.
const DEFAULT_CASES: u32 = 16;

/// How often a differing probe is run again before it counts.
const RECHECKS: usize = 2;

/// Bound of proptest's shrinking of a failing policy (each step loads and
/// probes both labs, about 1.3 s).
const MAX_SHRINK_ITERS: u32 = 48;

/// Not a test: the agent the labs start inside the namespaces (servers and
/// probe batches). Without its environment variable it returns at once.
#[test]
#[ignore = "helper process of the differential test; started by the test itself"]
fn differential_agent() {
    let Ok(spec) = std::env::var(agent::AGENT_ENV) else {
        return;
    };
    agent::main(&spec);
}

/// The one gate (`common::gate`): root, `ip netns`, the namespace tools and
/// `nft`; under `CI=true` a missing piece panics instead of skipping.
fn available(test: &str) -> bool {
    use common::gate::{self, Need};
    gate::require(test, &[Need::Kernel, gate::NFT])
}

/// An iptables lab and an nft lab.
struct Pair {
    iptables: Lab,
    nft: Lab,
}

impl Pair {
    fn new(test: &str) -> Pair {
        thread::scope(|s| {
            let ipt = s.spawn(|| Lab::new(test, Backend::Iptables, &PROBE_PORTS));
            let nft = Lab::new(test, Backend::Nft, &PROBE_PORTS);
            Pair {
                iptables: ipt.join().expect("building the iptables lab"),
                nft,
            }
        })
    }

    /// Runs `probes` on both labs at once.
    fn run(&self, probes: &[Probe]) -> (Vec<String>, Vec<String>) {
        thread::scope(|s| {
            let ipt = s.spawn(|| self.iptables.run(probes));
            let nft = self.nft.run(probes);
            (ipt.join().expect("iptables probe thread"), nft)
        })
    }

    /// Loads `policy` in both labs and compares the verdicts of its probe
    /// sample ([`lab::sample`] of [`lab::ports_of`]); `Ok` with the number of
    /// probes, `Err` with the whole story when a tool refuses a text or a
    /// verdict differs.
    fn check(&self, policy: &Policy) -> Result<usize, String> {
        let probes = &lab::sample(&lab::ports_of(policy, &PROBE_PORTS))[..];
        let (ipt, nft) = thread::scope(|s| {
            let ipt = s.spawn(|| self.iptables.load(policy));
            let nft = self.nft.load(policy);
            (ipt.join().expect("iptables load thread"), nft)
        });
        for (backend, loaded) in [(Backend::Iptables, ipt), (Backend::Nft, nft)] {
            if let Err(e) = loaded {
                return Err(format!(
                    "{backend} refused the rendering of this policy:\n{e}\n{}",
                    story(policy)
                ));
            }
        }
        let (mut ipt, mut nft) = self.run(probes);
        for _ in 0..RECHECKS {
            let differ: Vec<usize> = (0..probes.len()).filter(|&i| ipt[i] != nft[i]).collect();
            if differ.is_empty() {
                return Ok(probes.len());
            }
            let again: Vec<Probe> = differ.iter().map(|&i| probes[i]).collect();
            let (a, b) = self.run(&again);
            for (k, &i) in differ.iter().enumerate() {
                ipt[i] = a[k].clone();
                nft[i] = b[k].clone();
            }
        }
        let differences: Vec<String> = (0..probes.len())
            .filter(|&i| ipt[i] != nft[i])
            .map(|i| {
                format!(
                    "{}\n      {}: {}\n      {}: {}",
                    probes[i],
                    Backend::Iptables,
                    ipt[i],
                    Backend::Nft,
                    nft[i]
                )
            })
            .collect();
        if differences.is_empty() {
            return Ok(probes.len());
        }
        Err(format!(
            "the backends disagree on {} of {} probes (each run {} times):\n  {}\n{}",
            differences.len(),
            probes.len(),
            RECHECKS + 1,
            differences.join("\n  "),
            story(policy)
        ))
    }
}

/// The policy and all it renders, for a failure message.
fn story(policy: &Policy) -> String {
    format!(
        "--- policy ---\n{}\n--- iptables_restore() ---\n{}--- ip6tables_restore() ---\n{}--- nft() ---\n{}",
        policy.source(),
        policy.iptables_restore(),
        policy.ip6tables_restore(),
        policy.nft()
    )
}

/// The number in environment variable `name`, or `default`.
fn env_number<T: std::str::FromStr>(name: &str, default: impl FnOnce() -> T) -> T {
    match std::env::var(name) {
        Ok(n) => n
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {n:?}")),
        Err(_) => default(),
    }
}

/// Straight to stderr: libtest would hide eprintln! of a passing test.
fn note(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{text}");
}

#[test]
fn random_policies_give_the_same_verdicts_on_both_backends() {
    const TEST: &str = "random_policies_give_the_same_verdicts_on_both_backends";
    if !available(TEST) {
        return;
    }
    let started = Instant::now();
    let pair = Pair::new("diff_random");
    let cases = env_number("DIFFERENTIAL_CASES", || DEFAULT_CASES);
    let seed = env_number("DIFFERENTIAL_SEED", || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let (tried, refused, run, probed) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        max_shrink_iters: MAX_SHRINK_ITERS,
        max_local_rejects: 1_000_000,
        max_global_rejects: 1_000_000,
        ..Config::default()
    });
    let result = runner.run(&gen::spec(), |spec| {
        let text = spec.text();
        tried.fetch_add(1, Ordering::Relaxed);
        let Ok(policy) = Policy::parse(&text) else {
            refused.fetch_add(1, Ordering::Relaxed);
            return Err(TestCaseError::reject("Policy::parse refuses the text"));
        };
        run.fetch_add(1, Ordering::Relaxed);
        let probes = pair.check(&policy).map_err(TestCaseError::fail)?;
        probed.fetch_add(probes, Ordering::Relaxed);
        Ok(())
    });
    let (tried, refused, run) = (tried.into_inner(), refused.into_inner(), run.into_inner());
    note(&format!(
        "{TEST}: seed {seed} (DIFFERENTIAL_SEED={seed} repeats this run), {cases} case(s) asked, {run} policies loaded and probed ({} probes in all) in {:.1} s; \
         {tried} texts generated, {refused} refused by Policy::parse ({:.0} %)",
        probed.into_inner(),
        started.elapsed().as_secs_f64(),
        100.0 * refused as f64 / tried.max(1) as f64
    ));
    if let Err(e) = result {
        panic!("{e}\n(DIFFERENTIAL_SEED={seed} repeats this run)");
    }
}

/// Every policy text the repository ships that parses, keyed by canonical
/// form, with where it was found; and how many candidates were refused.
fn shipped_policies() -> (Vec<(String, Policy)>, usize) {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut refused = 0;
    let mut take = |place: String, text: &str, must_parse: bool| match Policy::parse(text) {
        Ok(p) => {
            if seen.insert(p.source().to_string()) {
                out.push((place, p));
            }
        }
        Err(d) => {
            assert!(
                !must_parse,
                "{place}: a shipped pass case does not parse:\n{text}\n{d}"
            );
            refused += 1;
        }
    };
    for dir in ["tests/ui/pass", "examples", "tests", "tests/common"] {
        for file in sources::rust_files(dir) {
            let source = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let name = file.display().to_string();
            let shipped = dir != "tests" && dir != "tests/common";
            for block in sources::blocks(&source) {
                // A block inside `macro_rules!` has `$` metavariables.
                if block.text.contains('$') {
                    continue;
                }
                take(format!("{name}:{}", block.line), &block.text, shipped);
            }
            if !shipped {
                for (line, text) in string_literals(&source) {
                    if text.trim_start().starts_with("extif") {
                        take(format!("{name}:{line}"), &text, false);
                    }
                }
            }
        }
    }
    (out, refused)
}

/// The string literals of a Rust source (plain and raw), unescaped, with
/// their 1-based line. Comments and char literals are skipped.
fn string_literals(src: &str) -> Vec<(usize, String)> {
    let b = src.as_bytes();
    let line_of = |i: usize| src[..i].matches('\n').count() + 1;
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let prev_ident = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'\'' => {
                // '"' or '\"': a char literal; anything else: a lifetime.
                if b.get(i + 1) == Some(&b'\\') {
                    i += 3;
                    while i < b.len() && b[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                } else if b.get(i + 2) == Some(&b'\'') {
                    i += 3;
                } else {
                    i += 1;
                }
            }
            b'r' if !prev_ident && matches!(b.get(i + 1), Some(b'"' | b'#')) => {
                let mut j = i + 1;
                while j < b.len() && b[j] == b'#' {
                    j += 1;
                }
                if b.get(j) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let close = format!("\"{}", "#".repeat(j - i - 1));
                let start = j + 1;
                let end = src[start..].find(&close).map_or(src.len(), |e| start + e);
                out.push((line_of(start), src[start..end].to_string()));
                i = end + close.len();
            }
            b'"' => {
                let start = i + 1;
                let mut text = String::new();
                let mut chars = src[start..].char_indices();
                let mut end = src.len();
                while let Some((k, c)) = chars.next() {
                    match c {
                        '"' => {
                            end = start + k + 1;
                            break;
                        }
                        '\\' => match chars.next().map(|(_, e)| e) {
                            Some('n') => text.push('\n'),
                            Some('t') => text.push('\t'),
                            Some('r') => text.push('\r'),
                            Some('0') => text.push('\0'),
                            Some('\n') => {
                                // A line continuation: the next line's
                                // leading whitespace goes too.
                                let rest = &src[start + k + 2..];
                                let skip = rest.len() - rest.trim_start().len();
                                for _ in 0..rest[..skip].chars().count() {
                                    chars.next();
                                }
                            }
                            Some(other) => text.push(other),
                            None => {}
                        },
                        c => text.push(c),
                    }
                }
                out.push((line_of(start), text));
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

#[test]
fn string_literals_are_read_like_rustc_reads_them() {
    let src = "let a = \"extif eth0;\\n\\\n    open tcp 22;\"; // \"no\"\nlet c = '\"'; let r = r#\"x \"y\" z\"#; /* \"no\" */ let d = \"q\\\"\";";
    let got: Vec<String> = string_literals(src).into_iter().map(|(_, t)| t).collect();
    assert_eq!(got, ["extif eth0;\nopen tcp 22;", "x \"y\" z", "q\""]);
}

#[test]
fn shipped_policies_give_the_same_verdicts_on_both_backends() {
    const TEST: &str = "shipped_policies_give_the_same_verdicts_on_both_backends";
    if !available(TEST) {
        return;
    }
    let started = Instant::now();
    let (policies, refused) = shipped_policies();
    assert!(
        policies.len() >= 20,
        "only {} shipped policies found: is the source scan broken?",
        policies.len()
    );
    let probed = AtomicUsize::new(0);
    // Two pairs of labs, each taking every other policy.
    let failures: Vec<String> = thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|half| {
                let policies = &policies;
                let probed = &probed;
                s.spawn(move || {
                    let pair = Pair::new(&format!("diff_shipped{half}"));
                    policies
                        .iter()
                        .skip(half)
                        .step_by(2)
                        .filter_map(|(place, policy)| match pair.check(policy) {
                            Ok(n) => {
                                probed.fetch_add(n, Ordering::Relaxed);
                                None
                            }
                            Err(e) => Some(format!("=== {place}\n{e}")),
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("shipped policies thread"))
            .collect()
    });
    let mut by_dir = std::collections::BTreeMap::new();
    for (place, _) in &policies {
        let rel = place
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(place)
            .trim_start_matches('/');
        let dir = rel.rsplit_once('/').map_or(rel, |(d, _)| d);
        *by_dir.entry(dir.to_string()).or_insert(0) += 1;
    }
    note(&format!(
        "{TEST}: {} distinct shipped policies {by_dir:?} ({refused} test texts refused by Policy::parse skipped), {} probes in all, in {:.1} s",
        policies.len(),
        probed.into_inner(),
        started.elapsed().as_secs_f64()
    ));
    assert!(
        failures.is_empty(),
        "{} of {} shipped policies behave differently with the two backends:\n{}",
        failures.len(),
        policies.len(),
        failures.join("\n\n")
    );
}

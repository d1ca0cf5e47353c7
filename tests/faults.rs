//! Faults while applying (issue 6, items 9-12), on the real kernel in network
//! namespaces, with real processes and real signals: two appliers at once
//! (`apply()` and `apply()`, `apply()` and the bash script), a failsafe still
//! pending when the next apply comes, SIGTERM / SIGINT / SIGKILL in the middle
//! of a load (apply() and the script), the script's read-back verification,
//! its prompt (`y` confirms, silence reverts with exit status 3), and no
//! backup directory left behind.
//!
//! Every test runs with both backends (`<test>::iptables_nft`,
//! `<test>::nftables`: `both_backends!`), apply() and the script alike.
//! Loads are slowed down, thinned out or their restores slowed by one family
//! of wrapper tools earlier in `PATH` (per process, [`Scratch::tool_path`]):
//! iptables: `ip(6)tables(-nft)-restore` (a slowed load slows the IPv6 step,
//! so that a signal lands while IPv4 is new and IPv6 still old); nftables:
//! `nft -f` of a policy's file (the one transaction). The nftables starting
//! state has a foreign table beside the firewall's own, which must stay
//! untouched.
//!
//! `apply()` runs inside the namespace by re-executing this test binary
//! (`common::Topology::run_test_in`, the ignored test [`faults_inner`]).

mod common;

use common::env_of;
use common::policy::parse;
use common::scratch::{alive, wait_until};
use common::script_backend;
use common::wrappers::wrap_tool;
use common::{Ns, Topology, SECTION5_POLICY};
use firewall::Policy;
use firewall_core::apply::{ApplyError, Options};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

const INNER: &str = "faults_inner";

/// A policy that is not a router and differs from section 5 in both families.
const OTHER_POLICY: &str = "extif eth0;\nopen tcp 22, 443;\n";

// ---------------------------------------------------------------------------
// The inner half: runs inside the firewall namespace
// ---------------------------------------------------------------------------

/// Applies `FW_F_POLICY` (options from `FW_F_*`), printing `START <pid>`
/// first, then `APPLIED took_over=<bool>` or `BUSY <message>`.
#[test]
#[ignore = "runs inside a network namespace; started by the other tests of this file"]
fn faults_inner() {
    if common::inner_role().is_none() {
        return;
    }
    println!("START {}", std::process::id());
    let _ = std::io::stdout().flush();
    let policy = match Policy::parse(&env_of("FW_F_POLICY")) {
        Ok(p) => p,
        Err(d) => panic!("the policy does not parse: {d}"),
    };
    let options = Options {
        failsafe: env_of("FW_F_FAILSAFE")
            .parse()
            .ok()
            .map(Duration::from_secs),
        allow_session_lockout: true,
        backup_parent: Some(PathBuf::from(env_of("FW_F_BACKUP_PARENT"))),
        lock_wait: env_of("FW_F_LOCK_WAIT")
            .parse()
            .ok()
            .map(Duration::from_secs),
        skip_kernel_check: false,
        backend: firewall_core::apply::Backend::from_name(&env_of("FW_F_BACKEND")),
        ..Options::default()
    };
    match policy.apply_with(options) {
        Ok(mut applied) => {
            println!("APPLIED took_over={}", applied.took_over);
            let _ = std::io::stdout().flush();
            if env_of("FW_F_CONFIRM") == "1" {
                if let Err(e) = applied.confirm() {
                    panic!("confirm failed: {e}");
                }
                println!("CONFIRMED");
            } else {
                // Left pending on purpose: the watchdog decides at the deadline.
                drop(applied.failsafe.take());
            }
            if env_of("FW_F_HOLD") == "1" {
                std::thread::sleep(Duration::from_secs(30));
            }
        }
        Err(e @ ApplyError::Busy { .. }) => {
            assert_eq!(env_of("FW_F_EXPECT"), "busy", "unexpected: {e}");
            println!("BUSY {e}");
        }
        Err(e) => panic!("apply failed: {e}"),
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// What a wrapped load does ([`Scratch::tool_path`]).
#[derive(Debug, Clone, Copy)]
enum Load {
    /// Unchanged.
    Plain,
    /// Touches [`Scratch::load_mark`], then sleeps this long, then loads.
    Slow(f64),
    /// Loads, then touches [`Scratch::load_mark`] and sleeps this long.
    SlowAfterCommit(f64),
    /// Loses the rule of `open tcp 22, 80` (iptables: of IPv4).
    Lossy,
}

/// A private directory (backups, wrapper tools), removed on drop, and the
/// applier state files of the test's firewall namespace in /run/firewall.
struct Scratch {
    tmp: common::scratch::Scratch,
    state: Option<PathBuf>,
}

impl Scratch {
    fn new(test: &str, t: &Topology) -> Scratch {
        let tmp = common::scratch::Scratch::new("fw-faults", test);
        std::fs::create_dir_all(tmp.dir().join("bin")).expect("creating a scratch directory");
        std::fs::create_dir_all(tmp.dir().join("backups")).expect("creating a scratch directory");
        let ns = t.sh(Ns::Firewall, "readlink /proc/self/ns/net");
        let inode: String = ns.chars().filter(char::is_ascii_digit).collect();
        Scratch {
            tmp,
            state: Some(PathBuf::from(format!("/run/firewall/net-{inode}"))),
        }
    }

    /// Where the backup directories go (`backup_parent`, the script's TMPDIR).
    fn backups(&self) -> String {
        self.tmp.dir().join("backups").display().to_string()
    }

    /// The applier lock file of the namespace.
    fn lock_file(&self) -> PathBuf {
        let mut s = self.state.clone().unwrap_or_default().into_os_string();
        s.push(".lock");
        PathBuf::from(s)
    }

    /// The one family of slowed, lossy and failing tool wrappers: a `PATH`
    /// whose tools of `backend` (in `<scratch>/<name>`) do `load` when they
    /// load a policy's rules and sleep `restore_secs` before a restore (a
    /// rollback's or a watchdog's), every other use unchanged.
    ///
    /// iptables: a load is an `ip(6)tables(-nft)-restore` without `-c`, a
    /// restore one with `-c`; a slowed load slows the IPv6 step (IPv4 is new
    /// meanwhile), a lossy one loses the rule of IPv4. nftables: a load is an
    /// `nft -f` of a policy's file (it starts with the printer's header:
    /// `apply()` runs `nft -e -j -f DIR/load.nft`, the script names its
    /// file), a restore any other `nft -f`; the one transaction is slowed or
    /// thinned out, the other options (`-e -j`) passed on.
    fn tool_path(&self, name: &str, backend: &str, load: Load, restore_secs: f64) -> String {
        let mark = self.load_mark();
        let mark = mark.display();
        if backend == "nftables" {
            // Every option but `-f FILE` (apply()'s `-e -j`) goes on to the
            // real nft, with the input in a file: with `-j`, nft 1.0.6 first
            // reads its input as JSON, so `-f -` would load nothing.
            let feed = |filter: &str| {
                format!(
                    "t=$(mktemp) && printf '%s\\n' \"$input\" {filter}>\"$t\" && REAL \"${{opts[@]}}\" -f \"$t\"; rc=$?; rm -f \"$t\"; (exit $rc)"
                )
            };
            let plain = feed("");
            let load = match load {
                Load::Plain => plain.clone(),
                Load::Slow(secs) => format!(": >'{mark}'; sleep {secs}; {plain}"),
                Load::SlowAfterCommit(secs) => {
                    format!("{plain}; rc=$?; : >'{mark}'; sleep {secs}; exit $rc")
                }
                Load::Lossy => feed("| sed '/open tcp 22, 80/d' "),
            };
            wrap_tool(
                &self.tmp.dir().join(name),
                &["nft"],
                &format!(
                    "opts=() file=\n\
                     while [ $# -gt 0 ]; do\n\
                     case $1 in\n\
                     -f) file=$2; shift 2 ;;\n\
                     *) opts+=(\"$1\"); shift ;;\n\
                     esac\n\
                     done\n\
                     if [ -z \"$file\" ]; then exec REAL \"${{opts[@]}}\"; fi\n\
                     if [ \"$file\" = - ]; then input=$(cat); else input=$(cat -- \"$file\"); fi\n\
                     case $input in\n\
                     '{}'*) {load} ;;\n\
                     *) sleep {restore_secs}; {plain} ;;\n\
                     esac\n",
                    firewall_core::render::nft::HEADER
                ),
            )
        } else {
            let load = match load {
                Load::Plain => "exec REAL \"$@\"".to_string(),
                Load::Slow(secs) => format!(
                    "case $tool in ip6*) : >'{mark}'; sleep {secs} ;; esac\nexec REAL \"$@\""
                ),
                Load::SlowAfterCommit(secs) => format!(
                    "REAL \"$@\"; rc=$?\ncase $tool in ip6*) : >'{mark}'; sleep {secs} ;; esac\nexit $rc"
                ),
                Load::Lossy => "case $tool in ip6*) exec REAL \"$@\" ;; esac\n\
                                sed '/open tcp 22, 80/d' | REAL \"$@\""
                    .to_string(),
            };
            wrap_tool(
                &self.tmp.dir().join(name),
                &[
                    "iptables-nft-restore",
                    "iptables-restore",
                    "ip6tables-nft-restore",
                    "ip6tables-restore",
                ],
                &format!(
                    "tool=${{0##*/}}\n\
                     case \" $* \" in\n*\" -c \"*) sleep {restore_secs}; exec REAL \"$@\" ;;\nesac\n\
                     {load}\n"
                ),
            )
        }
    }

    /// Touched by a slowed load ([`Load::Slow`]) when it begins (iptables:
    /// when the IPv6 step begins, IPv4 new by then).
    fn load_mark(&self) -> PathBuf {
        self.tmp.dir().join("load-began")
    }

    /// A `PATH` whose load through `backend` takes `secs` longer
    /// ([`Scratch::tool_path`], [`Load::Slow`]).
    fn slow_load_path(&self, backend: &str, secs: f64) -> String {
        let _ = std::fs::remove_file(self.load_mark());
        self.tool_path("slow_load", backend, Load::Slow(secs), 0.0)
    }

    /// Whether the slowed load has begun ([`Scratch::load_mark`] exists).
    fn load_began(&self) -> bool {
        self.load_mark().exists()
    }

    /// A `PATH` whose load through `backend` silently loses the rule of
    /// `open tcp 22, 80` (the read-back must notice), and whose restores
    /// take `secs` longer.
    fn lossy_load_path(&self, backend: &str, secs: f64) -> String {
        self.tool_path("lossy_load", backend, Load::Lossy, secs)
    }

    /// A `PATH` whose loads through `backend` are unchanged and whose
    /// restores take `secs` longer.
    fn slow_rollback_path(&self, backend: &str, secs: f64) -> String {
        self.tool_path("slow_rollback", backend, Load::Plain, secs)
    }

    /// A `PATH` whose `bash` touches `mark` and sleeps `secs` before it runs
    /// `rollback.sh takeover` (every other use of bash is unchanged).
    fn slow_takeover_path(&self, secs: f64, mark: &Path) -> String {
        wrap_tool(
            &self.tmp.dir().join("slow_takeover"),
            &["bash"],
            &format!(
                "case \" $* \" in\n*\" takeover \"*) : >'{}'; sleep {secs} ;;\nesac\nexec REAL \"$@\"\n",
                mark.display()
            ),
        )
    }

    /// The watchdog pids written into the backup directories now present.
    fn watchdog_pids(&self) -> Vec<u32> {
        std::fs::read_dir(self.tmp.dir().join("backups"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| std::fs::read_to_string(e.path().join("watchdog.pid")).ok())
                    .filter_map(|p| p.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The pid of the one watchdog pending now (waits for it, bounded).
    fn pending_watchdog(&self) -> u32 {
        let mut pid = None;
        assert!(
            wait_until(Duration::from_secs(5), || {
                pid = self.watchdog_pids().first().copied();
                pid.is_some()
            }),
            "no watchdog pending: {:?}",
            self.backup_dirs()
        );
        pid.unwrap_or_default()
    }

    /// Waits (bounded) until no backup directory is left; true if so.
    fn no_backup_left(&self, within: Duration) -> bool {
        wait_until(within, || self.backup_dirs().is_empty())
    }

    /// Asserts that no backup directory is left within 3 s (listing them if any).
    #[track_caller]
    fn assert_no_backup_left(&self) {
        assert!(
            self.no_backup_left(Duration::from_secs(3)),
            "{:?}",
            self.backup_dirs()
        );
    }

    fn backup_dirs(&self) -> Vec<String> {
        std::fs::read_dir(self.tmp.dir().join("backups"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            for suffix in [".lock", ".pending", ".pending.tmp", ".last"] {
                let mut s = state.clone().into_os_string();
                s.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(s));
            }
        }
    }
}

/// Waits (bounded) until watchdog `pid` has exited: then no deadline of its
/// can change anything (this replaces sleeping past the deadline).
fn watchdog_exits(pid: u32) -> bool {
    wait_until(Duration::from_secs(5), || !alive(pid))
}

/// A process this test started inside the firewall namespace; SIGKILLed on drop.
struct Proc {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    /// The pid of the process itself (`ip netns exec` and `env` exec it).
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (bounded) for a stdout line starting with `prefix`.
    fn line(&mut self, prefix: &str, within: Duration) -> Option<String> {
        self.line_where(|l| l.starts_with(prefix), within)
    }

    /// Waits (bounded) for a stdout line containing `text`: on a terminal a
    /// message may follow the prompt (`read -p`) on the same line.
    fn line_containing(&mut self, text: &str, within: Duration) -> Option<String> {
        self.line_where(|l| l.contains(text), within)
    }

    fn line_where(&mut self, want: impl Fn(&str) -> bool, within: Duration) -> Option<String> {
        if let Some(l) = self.seen.iter().find(|l| want(l)) {
            return Some(l.clone());
        }
        let until = Instant::now() + within;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if want(&l) {
                        return Some(l);
                    }
                }
                Err(_) => return None,
            }
        }
        None
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args(["-s", sig, &self.pid().to_string()])
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill -s {sig} failed");
    }

    /// Waits (bounded) for it to exit; its exit code.
    fn wait(&mut self, within: Duration) -> Option<i32> {
        let until = Instant::now() + within;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` (program first) in the firewall namespace with `env`, its
/// stdout read line by line on a thread.
fn start(t: &Topology, env: &[(&str, &str)], cmd: &[&str], stdin: Stdio) -> Proc {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", t.name(Ns::Firewall), "env", "--"]);
    c.arg(format!("{}=firewall", common::INNER_ENV));
    for (k, v) in env {
        c.arg(format!("{k}={v}"));
    }
    let mut child = c
        .args(cmd)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting a process in the firewall namespace");
    let (tx, rx) = channel();
    if let Some(out) = child.stdout.take() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    if let Some(err) = child.stderr.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(format!("stderr: {line}"));
            }
        });
    }
    Proc {
        child,
        lines: rx,
        seen: Vec::new(),
    }
}

/// Starts [`faults_inner`] (apply()) in the firewall namespace.
fn start_apply(t: &Topology, s: &Scratch, policy: &str, env: &[(&str, &str)]) -> Proc {
    let exe = std::env::current_exe().expect("test binary path");
    let exe = exe.to_str().expect("UTF-8 test binary path").to_string();
    let backups = s.backups();
    let mut all = vec![("FW_F_POLICY", policy), ("FW_F_BACKUP_PARENT", &backups)];
    all.extend_from_slice(env);
    start(
        t,
        &all,
        &[
            &exe,
            "--exact",
            INNER,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ],
        Stdio::null(),
    )
}

/// Runs [`faults_inner`] to the end; its stdout (panics if it failed).
fn apply(t: &Topology, s: &Scratch, policy: &str, env: &[(&str, &str)]) -> String {
    let backups = s.backups();
    let mut all = vec![("FW_F_POLICY", policy), ("FW_F_BACKUP_PARENT", &backups)];
    all.extend_from_slice(env);
    let out = t.run_test_in_ok(
        Ns::Firewall,
        INNER,
        &all,
        "apply() in the firewall namespace",
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes the bash script of `policy` into the scratch dir; its path.
fn script_file(s: &Scratch, policy: &str, name: &str) -> String {
    let path = s.tmp.dir().join(name);
    std::fs::write(&path, parse(policy).bash()).expect("writing the script");
    path.display().to_string()
}

/// Starts the bash script `file` in the firewall namespace.
fn start_script(t: &Topology, s: &Scratch, file: &str, env: &[(&str, &str)]) -> Proc {
    let backups = s.backups();
    let mut all = vec![("TMPDIR", backups.as_str())];
    all.extend_from_slice(env);
    start(t, &all, &["bash", file], Stdio::null())
}

/// Runs the bash script `file` to the end (bounded).
fn run_script(
    t: &Topology,
    s: &Scratch,
    file: &str,
    env: &[(&str, &str)],
) -> (Option<i32>, String) {
    let mut p = start_script(t, s, file, env);
    let code = p.wait(Duration::from_secs(60));
    // Collect what it printed.
    while p.line("\u{0}", Duration::from_millis(200)).is_some() {}
    (code, p.seen.join("\n"))
}

/// The rules `policy` leaves, applied with `backend` over the starting
/// state ([`populate`]) and seen as `backend` sees them ([`state`]).
fn reference(t: &Topology, s: &Scratch, policy: &str, backend: &str) -> String {
    populate(t, backend);
    apply(t, s, policy, &[("FW_F_BACKEND", backend)]);
    state(t, backend)
}

/// The pid written into the lock file.
fn lock_holder(s: &Scratch) -> Option<u32> {
    std::fs::read_to_string(s.lock_file())
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// The starting state for `backend` ([`script_backend::populate`]).
fn populate(t: &Topology, backend: &str) {
    script_backend::populate(t, backend);
}

/// The rules as `backend` sees them ([`script_backend::state`]).
///
/// An iptables table that holds nothing (no rule, no user chain, every
/// built-in chain ACCEPT) counts as absent: deleting the own chains of an
/// earlier policy with NAT leaves its `nat` table so (the firewall deletes
/// only its own chains, DSL.md section 6), which is the same ruleset as no
/// `nat` table for every packet.
fn state(t: &Topology, backend: &str) -> String {
    without_empty_tables(&script_backend::state(t, backend))
}

/// `text` without the iptables tables that hold nothing (see [`state`]).
fn without_empty_tables(text: &str) -> String {
    let mut out = String::new();
    let mut table: Vec<&str> = Vec::new();
    for line in text.lines() {
        if line.starts_with('*') {
            table = vec![line];
            continue;
        }
        if table.is_empty() {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        table.push(line);
        if line == "COMMIT" {
            let empty = table[1..table.len() - 1]
                .iter()
                .all(|l| l.starts_with(':') && l.split(' ').nth(1) == Some("ACCEPT"));
            if !empty {
                for l in &table {
                    out.push_str(l);
                    out.push('\n');
                }
            }
            table.clear();
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Item 10: one applier at a time
// ---------------------------------------------------------------------------

both_backends! {
    /// Two apply()s at once: while A (its load slowed) holds the lock, B with a
    /// short wait fails with Busy naming A's pid and changes nothing; with a long
    /// wait B runs after A. Either way the final ruleset is exactly one policy,
    /// complete (nftables: a foreign table beside it untouched).
    fn concurrent_applies_one_waits_or_is_busy(backend, test) {
        let t = Topology::new(test);
        let s = Scratch::new(test, &t);
        let ref_b = reference(&t, &s, OTHER_POLICY, backend);
        let ref_a = reference(&t, &s, SECTION5_POLICY, backend);
        assert_ne!(ref_a, ref_b);
        populate(&t, backend);
        let slow = s.slow_load_path(backend, 2.0);
        let use_backend = ("FW_F_BACKEND", backend);

        // B gives up after 1 s.
        let mut a = start_apply(&t, &s, SECTION5_POLICY, &[("PATH", &slow), use_backend]);
        let a_pid = a.pid();
        assert!(
            wait_until(Duration::from_secs(10), || lock_holder(&s) == Some(a_pid)),
            "A never took the lock: {:?}",
            a.seen
        );
        let out = apply(
            &t,
            &s,
            OTHER_POLICY,
            &[("FW_F_LOCK_WAIT", "1"), ("FW_F_EXPECT", "busy"), use_backend],
        );
        assert!(out.contains("BUSY another apply is running"), "{out}");
        assert!(out.contains(&format!("(pid {a_pid})")), "{out}");
        assert!(
            a.line("APPLIED", Duration::from_secs(20)).is_some(),
            "{:?}",
            a.seen
        );
        assert_eq!(a.wait(Duration::from_secs(10)), Some(0));
        assert_eq!(state(&t, backend), ref_a, "A's rules are not complete");

        // B waits for A.
        populate(&t, backend);
        let mut a = start_apply(&t, &s, SECTION5_POLICY, &[("PATH", &slow), use_backend]);
        let a_pid = a.pid();
        assert!(wait_until(Duration::from_secs(10), || lock_holder(&s) == Some(a_pid)));
        let started = Instant::now();
        let out = apply(&t, &s, OTHER_POLICY, &[("FW_F_LOCK_WAIT", "30"), use_backend]);
        assert!(out.contains("APPLIED"), "{out}");
        assert!(
            started.elapsed() > Duration::from_millis(500),
            "B did not wait for A"
        );
        assert_eq!(a.wait(Duration::from_secs(10)), Some(0));
        assert_eq!(
            state(&t, backend),
            ref_b,
            "B ran after A: B's rules, complete"
        );
        s.assert_no_backup_left();
    }

    /// apply() and the bash script (the same backend) exclude each other through
    /// the same lock: the script (its load slowed) holds it, apply() with a
    /// short wait is Busy and loads nothing; apply() (slowed) holds it, the
    /// script with FIREWALL_LOCK_WAIT=1 exits 4 naming apply()'s pid and changes
    /// nothing; the rules in the end are apply()'s, complete.
    fn apply_and_the_script_exclude_each_other(backend, test) {
        let t = Topology::new(test);
        let s = Scratch::new(test, &t);
        let ref_b = reference(&t, &s, OTHER_POLICY, backend);
        let ref_a = reference(&t, &s, SECTION5_POLICY, backend);
        populate(&t, backend);
        let slow = s.slow_load_path(backend, 2.0);
        let script_a = script_file(&s, SECTION5_POLICY, "a.sh");
        let use_backend = ("FW_F_BACKEND", backend);
        let script_backend = ("FIREWALL_BACKEND", backend);

        let mut sa = start_script(&t, &s, &script_a, &[("PATH", &slow), script_backend]);
        assert!(
            wait_until(Duration::from_secs(10), || lock_holder(&s)
                == Some(sa.pid())),
            "the script never took the lock"
        );
        let out = apply(
            &t,
            &s,
            OTHER_POLICY,
            &[("FW_F_LOCK_WAIT", "1"), ("FW_F_EXPECT", "busy"), use_backend],
        );
        assert!(out.contains("BUSY another apply is running"), "{out}");
        assert_eq!(sa.wait(Duration::from_secs(20)), Some(0), "{:?}", sa.seen);
        assert_eq!(
            state(&t, backend),
            ref_a,
            "the script's rules are not complete, or the Busy apply() loaded rules"
        );

        populate(&t, backend);
        let before = state(&t, backend);
        let mut a = start_apply(&t, &s, OTHER_POLICY, &[("PATH", &slow), use_backend]);
        let a_pid = a.pid();
        assert!(wait_until(Duration::from_secs(10), || lock_holder(&s) == Some(a_pid)));
        let (code, text) = run_script(
            &t,
            &s,
            &script_a,
            &[("FIREWALL_LOCK_WAIT", "1"), script_backend],
        );
        assert_eq!(code, Some(4), "{text}");
        assert!(text.contains("another apply is running"), "{text}");
        assert!(text.contains(&format!("pid {a_pid}")), "{text}");
        assert_ne!(state(&t, backend), ref_a, "the refused script changed rules");
        assert!(a.line("APPLIED", Duration::from_secs(20)).is_some());
        assert_eq!(a.wait(Duration::from_secs(10)), Some(0));
        assert_ne!(state(&t, backend), before);
        assert_eq!(state(&t, backend), ref_b);
        s.assert_no_backup_left();
    }

    // ---------------------------------------------------------------------------
    // Item 11: a pending failsafe is taken over
    // ---------------------------------------------------------------------------

    /// A with a failsafe, not confirmed; B inside A's window: B takes A's
    /// failsafe over, and A's deadline does not undo B (IPv4 and IPv6). With a
    /// failsafe of its own that is not confirmed, B's deadline brings back the
    /// rules from before A (the last confirmed ones). The same between
    /// apply()s, from the script to apply(), from apply() to the script and
    /// between scripts. A failsafe of the other backend pending is not taken
    /// over: the script refuses, nothing changed, that failsafe still pending.
    fn a_later_apply_takes_a_pending_failsafe_over(backend, test) {
        let t = Topology::new(test);
        let s = Scratch::new(test, &t);
        let ref_b = reference(&t, &s, OTHER_POLICY, backend);
        let use_backend = ("FW_F_BACKEND", backend);
        let script_backend = ("FIREWALL_BACKEND", backend);
        populate(&t, backend);

        // Timing: a taken-over failsafe has a long window (60 s), so that a slow
        // process start on a loaded machine cannot pass its deadline before the
        // next apply comes; the test waits for its watchdog to exit (after which
        // its deadline can change nothing) instead of sleeping past the deadline.
        // Only a deadline the test waits for (B's, not confirmed) is short.

        // A (failsafe), then B without failsafe: final.
        let out = apply(&t, &s, SECTION5_POLICY, &[("FW_F_FAILSAFE", "60"), use_backend]);
        assert!(out.contains("APPLIED took_over=false"), "{out}");
        let wd_a = s.pending_watchdog();
        let out = apply(&t, &s, OTHER_POLICY, &[use_backend]);
        assert!(out.contains("APPLIED took_over=true"), "{out}");
        assert_eq!(state(&t, backend), ref_b);
        assert!(
            watchdog_exits(wd_a),
            "A's watchdog still runs: its deadline would undo B"
        );
        assert_eq!(
            state(&t, backend),
            ref_b,
            "A's watchdog undid B (IPv4/IPv6 shown above)"
        );
        s.assert_no_backup_left();

        // A (failsafe), then B with failsafe 6 s, not confirmed: back to before A.
        populate(&t, backend);
        let before = state(&t, backend);
        apply(&t, &s, SECTION5_POLICY, &[("FW_F_FAILSAFE", "60"), use_backend]);
        assert!(t.ip_forward());
        let wd_a = s.pending_watchdog();
        let out = apply(&t, &s, OTHER_POLICY, &[("FW_F_FAILSAFE", "6"), use_backend]);
        assert!(out.contains("APPLIED took_over=true"), "{out}");
        assert_eq!(state(&t, backend), ref_b);
        assert!(watchdog_exits(wd_a), "A's watchdog still runs");
        assert!(
            wait_until(Duration::from_secs(20), || state(&t, backend) == before),
            "B's deadline did not restore the rules from before A"
        );
        assert!(wait_until(Duration::from_secs(2), || !t.ip_forward()));
        s.assert_no_backup_left();

        // The script's failsafe (no terminal: pending when it exits), then apply().
        populate(&t, backend);
        let script = script_file(&s, &format!("{SECTION5_POLICY}failsafe 60s;\n"), "fs.sh");
        let (code, text) = run_script(&t, &s, &script, &[script_backend]);
        assert_eq!(code, Some(0), "{text}");
        let wd_script = s.pending_watchdog();
        let out = apply(&t, &s, OTHER_POLICY, &[use_backend]);
        assert!(out.contains("APPLIED took_over=true"), "{out}");
        assert!(
            watchdog_exits(wd_script),
            "the script's watchdog still runs: its deadline would undo B"
        );
        assert_eq!(state(&t, backend), ref_b, "the script's watchdog undid B");
        s.assert_no_backup_left();

        // apply()'s failsafe, then the script (no failsafe): the script takes it over.
        populate(&t, backend);
        apply(&t, &s, OTHER_POLICY, &[("FW_F_FAILSAFE", "60"), use_backend]);
        let wd_a = s.pending_watchdog();
        let plain = script_file(&s, SECTION5_POLICY, "plain.sh");
        let (code, text) = run_script(&t, &s, &plain, &[script_backend]);
        assert_eq!(code, Some(0), "{text}");
        assert!(text.contains("took over"), "{text}");
        let applied = state(&t, backend);
        assert!(
            watchdog_exits(wd_a),
            "apply()'s watchdog still runs: its deadline would undo the script"
        );
        assert_eq!(
            state(&t, backend),
            applied,
            "apply()'s watchdog undid the script"
        );
        assert!(t.ip_forward());
        s.assert_no_backup_left();

        // Script A (failsafe), then script B without failsafe: final.
        let script_b = script_file(&s, OTHER_POLICY, "b.sh");
        populate(&t, backend);
        let (code, text) = run_script(&t, &s, &script, &[script_backend]);
        assert_eq!(code, Some(0), "{text}");
        let wd_a = s.pending_watchdog();
        let (code, text) = run_script(&t, &s, &script_b, &[script_backend]);
        assert_eq!(code, Some(0), "{text}");
        assert!(text.contains("took over"), "{text}");
        assert!(
            watchdog_exits(wd_a),
            "A's watchdog still runs: its deadline would undo B"
        );
        assert_eq!(state(&t, backend), ref_b, "A's watchdog undid B");
        s.assert_no_backup_left();

        // Script A (failsafe), then script B with a failsafe that expires: back
        // to before A.
        let script_b_fs = script_file(&s, &format!("{OTHER_POLICY}failsafe 3s;\n"), "b_fs.sh");
        populate(&t, backend);
        let before = state(&t, backend);
        let (code, text) = run_script(&t, &s, &script, &[script_backend]);
        assert_eq!(code, Some(0), "{text}");
        let wd_a = s.pending_watchdog();
        assert!(t.ip_forward());
        let (code, text) = run_script(&t, &s, &script_b_fs, &[script_backend]);
        assert_eq!(code, Some(0), "{text}");
        assert!(text.contains("took over"), "{text}");
        assert_eq!(state(&t, backend), ref_b);
        assert!(watchdog_exits(wd_a), "A's watchdog still runs");
        assert!(
            wait_until(Duration::from_secs(20), || state(&t, backend) == before),
            "B's deadline did not restore the rules from before A:\n{}",
            state(&t, backend)
        );
        assert!(wait_until(Duration::from_secs(2), || !t.ip_forward()));
        s.assert_no_backup_left();

        // apply()'s failsafe with the other backend pending: the script refuses.
        let other = if backend == "nftables" { "iptables-nft" } else { "nftables" };
        populate(&t, backend);
        apply(
            &t,
            &s,
            OTHER_POLICY,
            &[("FW_F_FAILSAFE", "60"), ("FW_F_BACKEND", other)],
        );
        let wd = s.pending_watchdog();
        let with_apply = state(&t, backend);
        let (code, text) = run_script(&t, &s, &script_b, &[script_backend]);
        assert_eq!(code, Some(1), "{text}");
        assert!(
            text.contains("a failsafe of another backend is pending"),
            "{text}"
        );
        assert_eq!(
            state(&t, backend),
            with_apply,
            "the refused script changed rules"
        );
        // apply()'s failsafe is still pending: its deadline is not this test's.
        assert!(alive(wd), "the refused script ended apply()'s failsafe");
    }

    /// apply() B SIGKILLed while it takes A's pending failsafe over (the
    /// take-over slowed by a wrapper): the orphaned take-over holds the applier
    /// lock until it is done (another apply meanwhile is Busy), and only then
    /// does B's watchdog revert, to the rules from before A (the last confirmed
    /// ones), IPv4 and IPv6. Before, B's watchdog reverted at once (to A's rules)
    /// while the orphan went on superseding A: A's unconfirmed rules stayed for
    /// good, its failsafe lost.
    fn a_kill_during_the_takeover_still_restores_the_last_confirmed_rules(backend, test) {
        let t = Topology::new(test);
        let s = Scratch::new(test, &t);
        let use_backend = ("FW_F_BACKEND", backend);
        populate(&t, backend);
        let before = state(&t, backend);
        // A: a failsafe far beyond this test, not confirmed.
        let out = apply(&t, &s, SECTION5_POLICY, &[("FW_F_FAILSAFE", "300"), use_backend]);
        assert!(out.contains("APPLIED took_over=false"), "{out}");
        let with_a = state(&t, backend);
        assert_ne!(with_a, before);

        let mark = s.tmp.dir().join("takeover-started");
        let slow = s.slow_takeover_path(5.0, &mark);
        let mut b = start_apply(&t, &s, OTHER_POLICY, &[("PATH", &slow), use_backend]);
        assert!(
            wait_until(Duration::from_secs(20), || mark.exists()),
            "B never started its take-over: {:?}",
            b.seen
        );
        b.signal("KILL");
        let _ = b.wait(Duration::from_secs(5));
        assert!(
            b.line("APPLIED", Duration::ZERO).is_none(),
            "B finished before the kill: {:?}",
            b.seen
        );
        // The orphaned take-over still holds the lock.
        let out = apply(
            &t,
            &s,
            OTHER_POLICY,
            &[("FW_F_LOCK_WAIT", "1"), ("FW_F_EXPECT", "busy"), use_backend],
        );
        assert!(
            out.contains("BUSY another apply is running"),
            "the orphaned take-over did not hold the lock: {out}"
        );
        assert!(
            wait_until(Duration::from_secs(20), || state(&t, backend) == before),
            "B died during its take-over: the rules from before A did not come back (A's failsafe lost)"
        );
        // The revert restores ip_forward after the rules: wait for it too.
        assert!(
            wait_until(Duration::from_secs(5), || !t.ip_forward()),
            "the revert left ip_forward on"
        );
        assert!(
            s.no_backup_left(Duration::from_secs(5)),
            "{:?}",
            s.backup_dirs()
        );
    }
}

/// Runs the script under script(1) (a terminal), feeding `input`; its exit code.
fn script_on_a_terminal(
    t: &Topology,
    s: &Scratch,
    file: &str,
    backend: &str,
    input: Option<&str>,
) -> (Option<i32>, String) {
    let mut p = start_on_a_terminal(t, s, file, &[("FIREWALL_BACKEND", backend)]);
    if let Some(text) = input {
        assert!(p
            .line("firewall: to keep the new rules", Duration::from_secs(20))
            .is_some());
        if let Some(stdin) = p.child.stdin.as_mut() {
            let _ = stdin.write_all(text.as_bytes());
            let _ = stdin.flush();
        }
    }
    let code = p.wait(Duration::from_secs(40));
    while p.line("\u{0}", Duration::from_millis(200)).is_some() {}
    (code, p.seen.join("\n"))
}

/// Starts the script under script(1) (a terminal) with `env` (no spaces in values).
fn start_on_a_terminal(t: &Topology, s: &Scratch, file: &str, env: &[(&str, &str)]) -> Proc {
    let backups = s.backups();
    let vars: String = env.iter().map(|(k, v)| format!(" {k}={v}")).collect();
    let cmd = format!("env TMPDIR={backups}{vars} bash {file}");
    start(
        t,
        &[],
        &["timeout", "30", "script", "-qfec", &cmd, "/dev/null"],
        Stdio::piped(),
    )
}

// ---------------------------------------------------------------------------
// Item 12: interrupted applies
// ---------------------------------------------------------------------------

both_backends! {
    /// SIGTERM, SIGINT and SIGKILL of apply() in the middle of its load
    /// (iptables: IPv4 loaded, IPv6 not yet; nftables: during its one `nft -f`;
    /// a router policy, so ip_forward is not set yet either): the old rules
    /// come back, both families, and stay so after the slowed load would have
    /// committed; with nftables every listing taken meanwhile is the old
    /// ruleset or the complete new one, never a mixture (one transaction);
    /// ip_forward stays off; no backup is left. SIGKILL after the apply
    /// returned keeps the complete new rules.
    fn interrupted_apply_leaves_the_old_rules_or_the_complete_new_ones(backend, test) {
        let t = Topology::new(test);
        let s = Scratch::new(test, &t);
        let use_backend = ("FW_F_BACKEND", backend);
        let ref_a = reference(&t, &s, SECTION5_POLICY, backend);
        for sig in ["TERM", "INT", "KILL"] {
            populate(&t, backend);
            let before = state(&t, backend);
            let slow = s.slow_load_path(backend, 2.0);
            let mut a = start_apply(&t, &s, SECTION5_POLICY, &[("PATH", &slow), use_backend]);
            assert!(
                wait_until(Duration::from_secs(10), || s.load_began()),
                "SIG{sig}: the load never began: {:?}",
                a.seen
            );
            let killed_at = Instant::now();
            a.signal(sig);
            let _ = a.wait(Duration::from_secs(5));
            assert!(
                a.line("APPLIED", Duration::from_millis(100)).is_none(),
                "SIG{sig} came too late: {:?}",
                a.seen
            );
            if backend == "nftables" {
                // Until the orphaned load (2 s) is over: old or new, never a mixture.
                while killed_at.elapsed() < Duration::from_millis(2500) {
                    let now = state(&t, backend);
                    assert!(
                        now == before || now == ref_a,
                        "SIG{sig}: a mixture of old and new tables:\n{now}"
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            assert!(
                wait_until(Duration::from_secs(10), || state(&t, backend) == before),
                "SIG{sig} mid-load: the old rules did not come back"
            );
            // The slowed load (2 s) is over by now: nothing landed late.
            let settle = Duration::from_millis(2500).saturating_sub(killed_at.elapsed());
            std::thread::sleep(settle + Duration::from_millis(500));
            assert_eq!(
                state(&t, backend),
                before,
                "SIG{sig} mid-load: a mixture is left"
            );
            assert!(!t.ip_forward(), "SIG{sig}: ip_forward left on");
            assert!(
                s.no_backup_left(Duration::from_secs(3)),
                "SIG{sig}: {:?}",
                s.backup_dirs()
            );
        }

        // SIGKILL once apply() has returned: the complete new rules stay.
        populate(&t, backend);
        let mut a = start_apply(&t, &s, SECTION5_POLICY, &[("FW_F_HOLD", "1"), use_backend]);
        assert!(
            a.line("APPLIED", Duration::from_secs(20)).is_some(),
            "{:?}",
            a.seen
        );
        a.signal("KILL");
        let _ = a.wait(Duration::from_secs(5));
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(state(&t, backend), ref_a);
        assert!(t.ip_forward());
        s.assert_no_backup_left();
    }

    /// The bash script killed mid-load (iptables: IPv4 new, IPv6 not yet;
    /// nftables: before its one `nft -f` commits): SIGKILL (its watchdog
    /// restores) and SIGTERM (its trap restores) both leave the old rules, also
    /// after the slowed load would have committed; ip_forward off.
    fn interrupted_script_leaves_the_old_rules(backend, test) {
        let t = Topology::new(test);
        let s = Scratch::new(test, &t);
        let script = script_file(&s, SECTION5_POLICY, "router.sh");
        for sig in ["KILL", "TERM"] {
            populate(&t, backend);
            let before = state(&t, backend);
            let slow = s.slow_load_path(backend, 2.0);
            let mut p = start_script(
                &t,
                &s,
                &script,
                &[("PATH", slow.as_str()), ("FIREWALL_BACKEND", backend)],
            );
            assert!(
                wait_until(Duration::from_secs(10), || s.load_began()),
                "SIG{sig}: the load never began: {:?}",
                p.seen
            );
            let killed_at = Instant::now();
            p.signal(sig);
            let code = p.wait(Duration::from_secs(10));
            if sig == "TERM" {
                // Its trap rolled back: "interrupted, the previous rules restored".
                assert_eq!(code, Some(130), "{:?}", p.seen);
            }
            assert!(
                wait_until(Duration::from_secs(10), || state(&t, backend) == before),
                "SIG{sig} of the script mid-load: the old rules did not come back: {:?}",
                p.seen
            );
            let settle = Duration::from_millis(2500).saturating_sub(killed_at.elapsed());
            std::thread::sleep(settle + Duration::from_millis(500));
            assert_eq!(
                state(&t, backend),
                before,
                "SIG{sig} of the script mid-load: a mixture is left"
            );
            assert!(!t.ip_forward(), "SIG{sig}: ip_forward left on");
            assert!(
                s.no_backup_left(Duration::from_secs(3)),
                "SIG{sig}: {:?}",
                s.backup_dirs()
            );
        }
    }

    /// The script reads its rules back like apply(): a load that silently loses
    /// a rule (iptables: of IPv4; nftables: of the one file) makes it roll back
    /// (exit 1), old rules in place.
    fn the_script_verifies_the_rules_it_loaded(backend, test) {
        let t = Topology::new(test);
        let s = Scratch::new(test, &t);
        populate(&t, backend);
        let before = state(&t, backend);
        let lossy = s.lossy_load_path(backend, 0.0);
        let script = script_file(&s, SECTION5_POLICY, "verify.sh");
        let (code, text) = run_script(
            &t,
            &s,
            &script,
            &[("PATH", &lossy), ("FIREWALL_BACKEND", backend)],
        );
        assert_eq!(code, Some(1), "{text}");
        let differ = match backend {
            "nftables" => "nftables tables read back differ",
            _ => "IPv4 rules read back differ",
        };
        assert!(text.contains(differ), "{text}");
        assert!(
            text.contains("previous rules and ip_forward restored"),
            "{text}"
        );
        assert_eq!(state(&t, backend), before);
        assert!(!t.ip_forward());
        s.assert_no_backup_left();
    }

    // ---------------------------------------------------------------------------
    // Item 9: the failsafe as a user meets it (the script's prompt)
    // ---------------------------------------------------------------------------

    /// At the script's prompt `y` confirms (exit 0, the new rules stay, no backup
    /// left); no answer reverts with exit status 3 (the old rules, no backup left).
    /// (nftables: the foreign table stays as it was throughout.)
    fn script_prompt_y_confirms_silence_reverts_with_status_3(backend, test) {
        if !common::wrappers::script_tool_available() {
            return;
        }
        let t = Topology::new(test);
        let s = Scratch::new(test, &t);
        // `y`: a long window, so that a slow start on a loaded machine cannot
        // pass the deadline before the answer; the test waits for the watchdog
        // to exit (then no deadline can revert) instead of sleeping past it.
        let file = script_file(
            &s,
            &format!("{SECTION5_POLICY}failsafe 60s;\n"),
            "prompt.sh",
        );

        populate(&t, backend);
        let before = state(&t, backend);
        let mut p = start_on_a_terminal(&t, &s, &file, &[("FIREWALL_BACKEND", backend)]);
        assert!(
            p.line("firewall: to keep the new rules", Duration::from_secs(20))
                .is_some(),
            "{:?}",
            p.seen
        );
        let wd = s.pending_watchdog();
        if let Some(stdin) = p.child.stdin.as_mut() {
            let _ = stdin.write_all(b"y\n");
            let _ = stdin.flush();
        }
        let code = p.wait(Duration::from_secs(40));
        while p.line("\u{0}", Duration::from_millis(200)).is_some() {}
        let text = p.seen.join("\n");
        assert_eq!(code, Some(0), "{text}");
        assert!(text.contains("confirmed, the new rules stay"), "{text}");
        let applied = state(&t, backend);
        assert_ne!(applied, before);
        if backend == "nftables" {
            assert!(
                applied.contains(script_backend::FOREIGN_TABLE),
                "the foreign table changed: {applied}"
            );
        }
        assert!(
            watchdog_exits(wd),
            "confirmed with y, the watchdog still runs"
        );
        assert_eq!(
            state(&t, backend),
            applied,
            "confirmed with y, then reverted"
        );
        assert!(t.ip_forward());
        s.assert_no_backup_left();

        // No answer: the deadline (short: the test waits for it) reverts, status 3.
        let file = script_file(&s, &format!("{SECTION5_POLICY}failsafe 3s;\n"), "silent.sh");
        populate(&t, backend);
        let before = state(&t, backend);
        let (code, text) = script_on_a_terminal(&t, &s, &file, backend, None);
        assert_eq!(code, Some(3), "{text}");
        assert!(
            wait_until(Duration::from_secs(5), || state(&t, backend) == before),
            "unanswered prompt: the previous rules are not back"
        );
        assert!(
            wait_until(Duration::from_secs(5), || !t.ip_forward()),
            "unanswered prompt: ip_forward was not restored"
        );
        s.assert_no_backup_left();
    }

    /// Ctrl-C at the script's prompt (a real ^C through the terminal) is a "no":
    /// the previous rules come back at once, long before the failsafe deadline,
    /// and the script exits 130 ("interrupted, the previous rules restored"), with
    /// no backup left.
    fn script_prompt_ctrl_c_restores_at_once_with_status_130(backend, test) {
        if !common::wrappers::script_tool_available() {
            return;
        }
        let t = Topology::new(test);
        let s = Scratch::new(test, &t);
        let file = script_file(&s, &format!("{SECTION5_POLICY}failsafe 60s;\n"), "int.sh");
        populate(&t, backend);
        let before = state(&t, backend);
        let started = Instant::now();
        let (code, text) = script_on_a_terminal(&t, &s, &file, backend, Some("\u{3}"));
        assert_eq!(code, Some(130), "{text}");
        assert_eq!(
            state(&t, backend),
            before,
            "Ctrl-C at the prompt: the new rules are still in force: {text}"
        );
        assert!(!t.ip_forward());
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not at once: {:?}",
            started.elapsed()
        );
        s.assert_no_backup_left();
    }

    /// apply() killed (SIGKILL) while it rolls back a failed apply (its load
    /// lost a rule, the read-back failed; the restore slowed): the rollback it
    /// started goes on, and holds the applier lock until it is done, so the
    /// next apply waits for it instead of being undone by it (IPv4 and IPv6).
    fn a_rollback_outliving_its_apply_keeps_the_lock(backend, test) {
        let t = Topology::new(test);
        let s = Scratch::new(test, &t);
        let use_backend = ("FW_F_BACKEND", backend);
        let ref_b = reference(&t, &s, OTHER_POLICY, backend);
        populate(&t, backend);
        let lossy = s.lossy_load_path(backend, 3.0);
        let mut a = start_apply(&t, &s, SECTION5_POLICY, &[("PATH", &lossy), use_backend]);
        let reverting = || {
            s.backup_dirs()
                .iter()
                .any(|d| Path::new(&s.backups()).join(d).join("reverting").exists())
        };
        assert!(
            wait_until(Duration::from_secs(20), reverting),
            "A never rolled back: {:?}",
            a.seen
        );
        a.signal("KILL");
        let _ = a.wait(Duration::from_secs(5));
        let out = apply(&t, &s, OTHER_POLICY, &[("FW_F_LOCK_WAIT", "30"), use_backend]);
        assert!(out.contains("APPLIED"), "{out}");
        // A's rollback (3 s slower) is over by now.
        std::thread::sleep(Duration::from_secs(4));
        assert_eq!(
            state(&t, backend),
            ref_b,
            "the rollback of the killed apply undid the next one"
        );
        s.assert_no_backup_left();
    }

    /// The bash script killed (SIGKILL) while it rolls back a failed apply
    /// (iptables: IPv4 restored only halfway, IPv6 still new; nftables: before
    /// the restoring transaction): the rollback goes on in its own session and
    /// completes, all rules and ip_forward, with no backup left.
    fn a_script_killed_during_its_rollback_still_restores_everything(backend, test) {
        let t = Topology::new(test);
        let s = Scratch::new(test, &t);
        populate(&t, backend);
        let before = state(&t, backend);
        let lossy = s.lossy_load_path(backend, 3.0);
        let script = script_file(&s, SECTION5_POLICY, "router.sh");
        let mut p = start_script(
            &t,
            &s,
            &script,
            &[("PATH", &lossy), ("FIREWALL_BACKEND", backend)],
        );
        assert!(
            p.line("stderr: firewall: applying failed", Duration::from_secs(20))
                .is_some(),
            "the script never rolled back: {:?}",
            p.seen
        );
        p.signal("KILL");
        let _ = p.wait(Duration::from_secs(5));
        // Done when the rules are back and the backup is gone: ip_forward is
        // restored after the rules, the backup removed last.
        assert!(
            wait_until(Duration::from_secs(15), || state(&t, backend) == before
                && s.backup_dirs().is_empty()),
            "SIGKILL during the rollback: a mixture is left: {:?}",
            p.seen
        );
        assert!(!t.ip_forward(), "ip_forward left on");
        s.assert_no_backup_left();
    }

    /// The script killed (SIGKILL) while it restores the previous rules after a
    /// "no" at its prompt (IPv4 restored only halfway, IPv6 still new): that
    /// restore goes on in its own session and completes, with no backup left.
    /// (nftables: the restoring transaction is slowed instead.)
    fn a_script_killed_while_reverting_at_the_prompt_still_restores_everything(backend, test) {
        if !common::wrappers::script_tool_available() {
            return;
        }
        let t = Topology::new(test);
        let s = Scratch::new(test, &t);
        let file = script_file(&s, &format!("{SECTION5_POLICY}failsafe 60s;\n"), "no.sh");
        populate(&t, backend);
        let before = state(&t, backend);
        let slow = s.slow_rollback_path(backend, 3.0);
        let mut p = start_on_a_terminal(
            &t,
            &s,
            &file,
            &[("PATH", slow.as_str()), ("FIREWALL_BACKEND", backend)],
        );
        assert!(
            p.line("firewall: to keep the new rules", Duration::from_secs(20))
                .is_some(),
            "{:?}",
            p.seen
        );
        if let Some(stdin) = p.child.stdin.as_mut() {
            let _ = stdin.write_all(b"n\n");
            let _ = stdin.flush();
        }
        assert!(
            p.line_containing("firewall: not confirmed", Duration::from_secs(10))
                .is_some(),
            "{:?}",
            p.seen
        );
        // Reverting (`armed` renamed), with the lock the script took to revert,
        // which names its pid.
        let reverting = || {
            s.backup_dirs()
                .iter()
                .any(|d| Path::new(&s.backups()).join(d).join("reverting").exists())
        };
        assert!(
            wait_until(Duration::from_secs(5), reverting),
            "never reverting: {:?}",
            p.seen
        );
        let mut pid = None;
        assert!(
            wait_until(Duration::from_secs(5), || {
                pid = lock_holder(&s).filter(|pid| {
                    std::fs::read(format!("/proc/{pid}/cmdline"))
                        .is_ok_and(|c| String::from_utf8_lossy(&c).contains("no.sh"))
                });
                pid.is_some()
            }),
            "the script never took the lock to revert: {:?}",
            p.seen
        );
        let pid = pid.map(|p| p.to_string()).unwrap_or_default();
        let killed = Command::new("kill").args(["-s", "KILL", &pid]).status();
        assert!(killed.is_ok_and(|s| s.success()), "kill -s KILL {pid}");
        // Done when the rules are back and the backup is gone: ip_forward is
        // restored after the rules, the backup removed last.
        assert!(
            wait_until(Duration::from_secs(15), || state(&t, backend) == before
                && s.backup_dirs().is_empty()),
            "SIGKILL while reverting: a mixture is left: {:?}\n{}",
            p.seen,
            state(&t, backend)
        );
        assert!(!t.ip_forward(), "ip_forward left on");
        s.assert_no_backup_left();
    }

}

// Single-backend on purpose: "never a mixture" is the nftables promise (one
// transaction); iptables commits table by table, and its script's mid-load
// kill is `interrupted_script_leaves_the_old_rules` above.

/// The nftables script SIGKILLed around its one `nft -f` (the kill lands
/// before the transaction commits, or after it and before the read-back):
/// every listing taken meanwhile, until the watchdog has restored, is the
/// old ruleset or the complete new one (both tables), never a mixture; in
/// the end the old one, foreign table included.
#[test]
fn a_killed_nftables_script_leaves_old_or_new_never_a_mixture() {
    if !script_backend::available(
        "a_killed_nftables_script_leaves_old_or_new_never_a_mixture",
        "nftables",
    ) {
        return;
    }
    let t = Topology::new("faults_nft_old_or_new");
    let s = Scratch::new("nft_old_or_new", &t);
    let script = script_file(&s, SECTION5_POLICY, "router.sh");
    populate(&t, "nftables");
    let (code, text) = run_script(&t, &s, &script, &[("FIREWALL_BACKEND", "nftables")]);
    assert_eq!(code, Some(0), "{text}");
    let new = script_backend::nft_ruleset(&t);
    assert!(new.contains("table ip firewall_nat {"), "{new}");
    let mark = s.load_mark();
    for (i, (when, load)) in [
        ("before the commit", Load::Slow(2.0)),
        ("after the commit", Load::SlowAfterCommit(2.0)),
    ]
    .into_iter()
    .enumerate()
    {
        populate(&t, "nftables");
        let before = script_backend::nft_ruleset(&t);
        let _ = std::fs::remove_file(&mark);
        let path = s.tool_path(&format!("kill_{i}"), "nftables", load, 0.0);
        let mut p = start_script(
            &t,
            &s,
            &script,
            &[("PATH", &path), ("FIREWALL_BACKEND", "nftables")],
        );
        assert!(
            wait_until(Duration::from_secs(10), || mark.exists()),
            "{when}: the load never began: {:?}",
            p.seen
        );
        p.signal("KILL");
        let _ = p.wait(Duration::from_secs(5));
        let mut seen_new = false;
        let restored = wait_until(Duration::from_secs(15), || {
            let now = script_backend::nft_ruleset(&t);
            assert!(
                now == before || now == new,
                "SIGKILL {when}: neither the old nor the new ruleset:\n{now}"
            );
            seen_new |= now == new;
            now == before && s.backup_dirs().is_empty()
        });
        assert!(restored, "SIGKILL {when}: the old rules did not come back");
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(script_backend::nft_ruleset(&t), before, "SIGKILL {when}");
        assert!(!t.ip_forward(), "SIGKILL {when}: ip_forward left on");
        eprintln!("SIGKILL {when}: the new ruleset was seen meanwhile: {seen_new}");
    }
}

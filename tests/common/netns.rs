//! The one namespace guard of the tests: [`Netns`] creates a network
//! namespace with a unique name and deletes it when dropped (also when the
//! test panics). [`super::Topology`] is three of them joined by veth pairs;
//! a test that only loads rules (no traffic) uses one alone.
//!
//! Names are `fwt-<pid>-<n>-<tag>`: a namespace left by an earlier run that
//! was killed before its guard ran (its pid is gone) is deleted the next time
//! a guard is created.

use super::command::{self, describe, numbered, COMMAND_TIMEOUT_SECS};
use super::save::{self, Counters, Family, Tools};
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

/// Prefix of every namespace the tests create.
pub const NS_PREFIX: &str = "fwt-";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A network namespace that lives as long as the value.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// A fresh namespace whose name holds a short, sanitised part of `tag`;
    /// panics if `ip netns add` fails.
    pub fn new(tag: &str) -> Netns {
        Netns::try_new(tag).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Netns::new`], or why `ip netns add` failed.
    pub fn try_new(tag: &str) -> Result<Netns, String> {
        remove_stale_namespaces();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let short: String = tag
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(18)
            .collect();
        let name = format!("{NS_PREFIX}{}-{n}-{short}", std::process::id());
        let out = command::run(&["ip", "netns", "add", &name], None, COMMAND_TIMEOUT_SECS);
        if !out.status.success() {
            return Err(describe(&format!("ip netns add {name}"), &out));
        }
        Ok(Netns { name })
    }

    /// Its name (for `ip netns exec NAME`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `args` (program first) inside it, bounded by `secs`, with `stdin`.
    pub fn exec_bounded(&self, args: &[&str], stdin: Option<&str>, secs: u32) -> Output {
        let mut full = vec!["ip", "netns", "exec", self.name.as_str()];
        full.extend_from_slice(args);
        command::run(&full, stdin, secs)
    }

    /// Runs `args` inside it, bounded by [`COMMAND_TIMEOUT_SECS`].
    pub fn exec(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.exec_bounded(args, stdin, COMMAND_TIMEOUT_SECS)
    }

    /// `--test`s and then loads `rules` with `iptables-restore -w` (or the
    /// IPv6 one); panics with the numbered rules on failure.
    pub fn restore(&self, family: Family, rules: &str) {
        let tool = match family {
            Family::V4 => "iptables-restore",
            Family::V6 => "ip6tables-restore",
        };
        for args in [&[tool, "-w", "--test"][..], &[tool, "-w"][..]] {
            let out = self.exec(args, Some(rules));
            assert!(
                out.status.success(),
                "{}\n--- rules:\n{}",
                describe(&format!("{args:?} in {}", self.name), &out),
                numbered(rules)
            );
        }
    }

    /// Loads the nftables file `text`: `nft -c -f` first, then `nft -f`;
    /// `Err` with nft's output (and the numbered text) if either refuses.
    /// Then the namespace must hold exactly the tables in `tables` (e.g.
    /// `["inet firewall"]`), in that order: `Err` naming what is there
    /// otherwise.
    pub fn try_load_nft(&self, text: &str, tables: &[&str]) -> Result<(), String> {
        self.try_nft_f(text)?;
        let listed = self.exec(&["nft", "list", "tables"], None);
        let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
        let expected: String = tables.iter().map(|t| format!("table {t}\n")).collect();
        if listed != expected {
            return Err(format!(
                "after nft -f the namespace {} must hold only the tables\n{expected}\
                 but holds\n{listed}",
                self.name
            ));
        }
        Ok(())
    }

    /// The one nftables loader of the tests: `nft -c -f -` of `text`, then
    /// `nft -f -`; `Err` with nft's output and the numbered text if either
    /// refuses. [`Netns::try_load_nft`] also checks the tables afterwards.
    pub fn try_nft_f(&self, text: &str) -> Result<(), String> {
        for args in [&["nft", "-c", "-f", "-"][..], &["nft", "-f", "-"][..]] {
            let out = self.exec(args, Some(text));
            if !out.status.success() {
                return Err(describe(&args.join(" "), &out) + "--- input ---\n" + &numbered(text));
            }
        }
        Ok(())
    }

    /// What the kernel holds for `family`, read with `tools` and normalised
    /// ([`save::normalize`]); `Err` if the dump fails three times (it can,
    /// briefly, while another process changes the same ruleset).
    pub fn iptables_save(
        &self,
        family: Family,
        tools: Tools,
        counters: Counters,
    ) -> Result<String, String> {
        let args = save::command(family, tools, counters);
        let mut last = String::new();
        for attempt in 0..3 {
            if attempt > 0 {
                thread::sleep(Duration::from_millis(200));
            }
            let out = self.exec(&args, None);
            if out.status.success() {
                return Ok(save::normalize(
                    &String::from_utf8_lossy(&out.stdout),
                    counters,
                ));
            }
            last = describe(&format!("{} in {}", args.join(" "), self.name), &out);
        }
        Err(last)
    }

    /// [`Netns::iptables_save`] of `family` with the default tools and no
    /// counters; panics if it fails.
    pub fn save(&self, family: Family) -> String {
        self.iptables_save(family, Tools::Default, Counters::Strip)
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // The applier state apply() and the script keep per namespace
        // (/run/firewall/net-<inode>.lock, ...): the inode of the bind mount.
        use std::os::unix::fs::MetadataExt as _;
        if let Ok(meta) = std::fs::metadata(format!("/run/netns/{}", self.name)) {
            for suffix in ["lock", "pending", "pending.tmp", "last"] {
                let _ = std::fs::remove_file(format!("/run/firewall/net-{}.{suffix}", meta.ino()));
            }
        }
        // Deleting the namespace deletes its veth ends (and so their peers).
        let _ = command::try_run(
            &["ip", "netns", "del", &self.name],
            None,
            COMMAND_TIMEOUT_SECS,
        );
    }
}

/// Deletes namespaces left behind by earlier runs of the tests whose process
/// is gone (e.g. killed with SIGKILL before the guard ran). Once per process.
fn remove_stale_namespaces() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let Ok(out) = command::try_run(&["ip", "netns", "list"], None, COMMAND_TIMEOUT_SECS) else {
            return;
        };
        let me = std::process::id().to_string();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            let Some(rest) = name.strip_prefix(NS_PREFIX) else {
                continue;
            };
            let pid = rest.split('-').next().unwrap_or("");
            if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
                continue;
            }
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = command::try_run(&["ip", "netns", "del", name], None, COMMAND_TIMEOUT_SECS);
            }
        }
    });
}

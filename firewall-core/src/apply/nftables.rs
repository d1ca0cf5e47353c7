//! The nftables backend: the firewall's own tables ([`shell::NFT_TABLES`])
//! saved, loaded in one `nft -f` transaction, and verified from what that
//! transaction committed.
//!
//! * **Backup**: one `nft list ruleset`, of which the own tables are kept, in
//!   [`shell::NFT_TABLES`] order, as `nft list table` prints them (what the
//!   library's `fw_nft_save` prints, and what `fw_nft_restore` puts back):
//!   `DIR/nft.rules`, empty when none exists. Only the own tables are kept;
//!   the rest of the host's ruleset is listed (one process costs less than
//!   `nft list tables` and then `nft list table` of each own table, 2.5-4 ms a
//!   process) but not saved. Should `list ruleset` fail (a table `nft` cannot
//!   print), `nft list tables` and `nft list table` of each own table instead.
//! * **Load**: one `nft -e -j -f DIR/load.nft` of the policy's nftables file,
//!   holding the applier lock on its stdin: both families and the NAT table in
//!   one transaction, so a failure anywhere changes nothing.
//! * **Verify**: from that load's echo (`-e -j`): the kernel reports, as JSON,
//!   every table, chain, set and rule the committed transaction created, the
//!   same objects `nft -j list table` would read back (nft 1.0.6 echoes
//!   additions only, not deletions). The file deletes each own table before
//!   declaring it, so a declared table whose creation is echoed holds exactly
//!   the objects echoed after that: compared per chain with what the printer
//!   printed ([`crate::render::Printed::chains`]): the base chains' hook and
//!   policy, and per chain the sequence of rule comments. A declared table
//!   whose creation is not echoed is a mismatch (it was not replaced). An own
//!   table the policy does not declare must be gone: when the echo shows the
//!   file's empty placeholder of it created (it did not exist, and the file
//!   deletes it again in the same transaction) nothing more is read; when it
//!   existed before the load (the NAT table of an earlier policy), one
//!   `nft list tables` after the load checks that it is gone, since the echo
//!   cannot show a deletion.

use super::system::{RunOutput, System};
use super::{classify_at, Cause};
use crate::render::{shell, Printed};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::Path;

/// The tool.
pub(crate) const NFT: &str = "nft";

/// The file of the backup directory `nft -f` loads (the policy's nftables
/// file; its name appears in `nft`'s error lines).
pub(crate) const LOAD_FILE: &str = "load.nft";

/// The own tables `nft list tables` printed, in [`shell::NFT_TABLES`] order.
fn own_tables(listed: &str) -> Vec<&'static str> {
    shell::NFT_TABLES
        .into_iter()
        .filter(|t| {
            listed
                .lines()
                .any(|l| l.trim().strip_prefix("table ") == Some(*t))
        })
        .collect()
}

/// Runs `nft ARGS...` for every argument list at once.
fn run_all(sys: &dyn System, calls: &[Vec<&str>]) -> Vec<io::Result<RunOutput>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = calls
            .iter()
            .map(|args| s.spawn(move || sys.run(NFT, args, None)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("an nft thread panicked")))
            })
            .collect()
    })
}

fn ok_or_cause(out: io::Result<RunOutput>, what: &str) -> Result<RunOutput, Cause> {
    let out = out.map_err(Cause::Io)?;
    if out.success() {
        Ok(out)
    } else {
        Err(Cause::Tool {
            tool: format!("{NFT} {what}"),
            code: out.code,
            stderr: out.stderr,
        })
    }
}

fn list_table(table: &str) -> Vec<&str> {
    let mut args = vec!["list", "table"];
    args.extend(table.split_whitespace());
    args
}

/// The own tables before the load.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Saved {
    /// The text of `DIR/nft.rules`.
    pub(crate) text: String,
    /// The own tables that exist, in [`shell::NFT_TABLES`] order.
    pub(crate) present: Vec<&'static str>,
}

/// The whole ruleset (`nft list ruleset`): the backup of an `exclusive;`
/// apply, which replaces everything; `present` are the own tables in it.
pub(crate) fn save_ruleset(sys: &dyn System) -> Result<Saved, Cause> {
    let text = ok_or_cause(sys.run(NFT, &["list", "ruleset"], None), "list ruleset")?.stdout;
    let present = own_of_ruleset(&text).present;
    Ok(Saved { text, present })
}

/// What `exclusive;` puts before the first line of the file (on that line,
/// so that line numbers still name the policy's statements): the whole
/// ruleset is flushed in the same transaction.
pub(crate) const EXCLUSIVE_PREFIX: &str = "flush ruleset; ";

/// The own tables of `nft list ruleset` output: each `table FAMILY NAME {`
/// block (it starts at the beginning of a line and ends at the first line
/// that is `}`), as `nft list table` prints it, in [`shell::NFT_TABLES`]
/// order.
fn own_of_ruleset(ruleset: &str) -> Saved {
    let mut blocks: BTreeMap<&str, String> = BTreeMap::new();
    let mut current: Option<(&str, String)> = None;
    for line in ruleset.lines() {
        if let Some((_, block)) = current.as_mut() {
            block.push_str(line);
            block.push('\n');
            if line == "}" {
                if let Some((name, block)) = current.take() {
                    blocks.insert(name, block);
                }
            }
        } else if let Some(name) = line
            .strip_prefix("table ")
            .and_then(|l| l.strip_suffix(" {"))
        {
            if let Some(own) = shell::NFT_TABLES.into_iter().find(|t| *t == name) {
                current = Some((own, format!("{line}\n")));
            }
        }
    }
    let mut saved = Saved::default();
    for table in shell::NFT_TABLES {
        if let Some(block) = blocks.remove(table) {
            saved.text.push_str(&block);
            saved.present.push(table);
        }
    }
    saved
}

/// The own tables as they are now (see the module docs): the text of
/// `DIR/nft.rules`, and which exist.
pub(crate) fn save(sys: &dyn System) -> Result<Saved, Cause> {
    match sys.run(NFT, &["list", "ruleset"], None) {
        Ok(out) if out.success() => Ok(own_of_ruleset(&out.stdout)),
        _ => save_by_table(sys),
    }
}

/// [`save`] one table at a time: `nft list tables`, then `nft list table` of
/// each own table that exists.
fn save_by_table(sys: &dyn System) -> Result<Saved, Cause> {
    let listed = ok_or_cause(sys.run(NFT, &["list", "tables"], None), "list tables")?;
    let present = own_tables(&listed.stdout);
    let calls: Vec<Vec<&str>> = present.iter().map(|t| list_table(t)).collect();
    let mut text = String::new();
    for (table, out) in present.iter().zip(run_all(sys, &calls)) {
        text.push_str(&ok_or_cause(out, &format!("list table {table}"))?.stdout);
    }
    Ok(Saved { text, present })
}

/// Loads the policy's nftables file (written to `file` before) in one
/// transaction, its stdin holding `lock`; returns the echo (`nft -e -j`).
/// A file, not stdin: stdin holds the lock, and with `-j` nft 1.0.6 first
/// tries to read its input as JSON, which would consume a pipe before the
/// native parser reads it (`-f -` then loads nothing).
/// A failure names the line and the statement it came from.
pub(crate) fn load(
    sys: &dyn System,
    nft: &Printed,
    file: &Path,
    lock: &File,
) -> Result<String, Cause> {
    let path = file.to_string_lossy();
    let out = sys
        .run_capturing_holding(NFT, &["-e", "-j", "-f", &path], lock)
        .map_err(Cause::Io)?;
    if out.success() {
        Ok(out.stdout)
    } else {
        let line = error_line(&out.stderr);
        Err(classify_at("nft -f", &out, Some(nft), line))
    }
}

/// The line of the first error in `nft -f` output: `/dev/stdin:12:5-20:
/// Error: ...` (nft 1.0.6 reading `-`; the file's name otherwise, which may
/// hold `:`).
pub(crate) fn error_line(stderr: &str) -> Option<usize> {
    stderr.lines().find_map(|l| {
        let (location, _) = l.split_once(": Error:")?;
        let mut parts = location.rsplitn(3, ':');
        let _columns = parts.next()?;
        parts.next()?.trim().parse().ok()
    })
}

/// A chain as committed: hook and policy of a base chain, rule comments.
#[derive(Debug, Default, PartialEq, Eq)]
struct ReadChain {
    hook: Option<String>,
    policy: Option<String>,
    comments: Vec<String>,
}

/// An own table as the echo shows it.
#[derive(Debug, PartialEq, Eq)]
enum Echoed {
    /// Created by the transaction, with these chains (keyed by name) after
    /// its last creation.
    Created(BTreeMap<String, ReadChain>),
    /// Deleted by the transaction (a later nft that echoes deletions).
    Deleted,
}

/// The own tables of an `nft -e -j` echo, replayed in order: `add table`
/// (re)creates a table empty, `add chain` and `add rule` fill it, `delete
/// table` removes it. A chain or rule of a table whose creation was not
/// echoed is an error (that table was not replaced, so it may hold more).
fn parse_echo(text: &str) -> Result<BTreeMap<String, Echoed>, String> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| format!("nft -e -j printed no JSON echo of the load: {e}"))?;
    let items = value
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or("nft -e -j printed no \"nftables\" list")?;
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let table_of = |v: &Value, key: &str| {
        format!(
            "{} {}",
            s(v, "family").unwrap_or_default(),
            s(v, key).unwrap_or_default()
        )
    };
    let mut tables: BTreeMap<String, Echoed> = BTreeMap::new();
    for item in items {
        let Some(obj) = item.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let (verb, what) = obj;
        let add = verb == "add";
        if let Some(t) = what.get("table") {
            let name = table_of(t, "name");
            match verb.as_str() {
                "add" => {
                    tables.insert(name, Echoed::Created(BTreeMap::new()));
                }
                "delete" => {
                    tables.insert(name, Echoed::Deleted);
                }
                _ => {}
            }
            continue;
        }
        let (kind, v, chain_key) = if let Some(c) = what.get("chain") {
            ("chain", c, "name")
        } else if let Some(r) = what.get("rule") {
            ("rule", r, "chain")
        } else {
            continue;
        };
        let table = table_of(v, "table");
        let chain = s(v, chain_key).unwrap_or_default();
        let Some(Echoed::Created(chains)) = tables.get_mut(&table) else {
            return Err(format!(
                "the load's echo shows {verb} {kind} {chain} of table {table}, which it did not create: the table was not replaced"
            ));
        };
        if !add {
            return Err(format!(
                "the load's echo shows {verb} {kind} {chain} of table {table}"
            ));
        }
        let entry = chains.entry(chain).or_default();
        if kind == "chain" {
            entry.hook = s(v, "hook");
            entry.policy = s(v, "policy");
        } else {
            entry.comments.push(s(v, "comment").unwrap_or_default());
        }
    }
    Ok(tables)
}

/// Compares what the load committed (its echo) with what `nft` printed (see
/// the module docs); `before`: the own tables that existed before the load.
pub(crate) fn verify(
    sys: &dyn System,
    nft: &Printed,
    echo: &str,
    before: &[&'static str],
) -> Result<(), Cause> {
    let mismatch = |detail: String| Cause::Mismatch {
        family: "nftables",
        detail,
    };
    let mut echoed = parse_echo(echo).map_err(mismatch)?;
    let want = nft.tables();
    for table in &want {
        let Some(Echoed::Created(mut read)) = echoed.remove(*table) else {
            return Err(mismatch(format!(
                "table {table} is missing (the load's echo shows no creation of it)"
            )));
        };
        for chain in nft.chains().iter().filter(|c| c.table == *table) {
            let Some(got) = read.remove(&chain.name) else {
                return Err(mismatch(format!(
                    "chain {} of table {} is missing",
                    chain.name, chain.table
                )));
            };
            if (&got.hook, &got.policy) != (&chain.hook, &chain.policy) {
                return Err(mismatch(format!(
                    "chain {} of table {} has hook {:?} and policy {:?}, expected {:?} and {:?}",
                    chain.name, chain.table, got.hook, got.policy, chain.hook, chain.policy
                )));
            }
            if got.comments != chain.comments {
                return Err(mismatch(format!(
                    "chain {} of table {} has {} rules, expected {} ({:?} vs {:?})",
                    chain.name,
                    chain.table,
                    got.comments.len(),
                    chain.comments.len(),
                    got.comments.iter().take(3).collect::<Vec<_>>(),
                    chain.comments.iter().take(3).collect::<Vec<_>>()
                )));
            }
        }
        if let Some(chain) = read.into_keys().next() {
            return Err(mismatch(format!(
                "table {table} has an unexpected chain {chain}"
            )));
        }
    }
    // The own tables the policy does not declare: the file deleted them.
    let mut unproven = false;
    for table in shell::NFT_TABLES.into_iter().filter(|t| !want.contains(t)) {
        match echoed.remove(table) {
            Some(Echoed::Created(chains)) if !chains.is_empty() => {
                return Err(mismatch(format!(
                    "table {table} exists, but the policy has none"
                )));
            }
            // The file's placeholder: created here, deleted in the same transaction.
            Some(Echoed::Created(_)) if !before.contains(&table) => {}
            Some(Echoed::Deleted) => {}
            _ => unproven = true,
        }
    }
    if unproven {
        let listed = ok_or_cause(sys.run(NFT, &["list", "tables"], None), "list tables")?;
        if let Some(extra) = own_tables(&listed.stdout)
            .into_iter()
            .find(|t| !want.contains(t))
        {
            return Err(mismatch(format!(
                "table {extra} exists, but the policy has none"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_of_nft() {
        let e = "/dev/stdin:7:3-25: Error: Could not process rule: Operation not supported\n\t\ttcp dport 22 masquerade\n\t\t^^^^\n";
        assert_eq!(error_line(e), Some(7));
        assert_eq!(error_line("-:12:5-20: Error: syntax error"), Some(12));
        assert_eq!(
            error_line("/tmp/a:b.nft:3:1-2: Error: x\n/dev/stdin:9:1-2: Error: y"),
            Some(3)
        );
        assert_eq!(error_line("Error: No such file or directory"), None);
    }

    #[test]
    fn own_tables_are_found() {
        assert_eq!(
            own_tables("table ip filter\ntable inet firewall\ntable ip firewall_nat\n"),
            vec!["inet firewall", "ip firewall_nat"]
        );
        assert!(own_tables("table inet firewall2\ntable ip6 firewall\n").is_empty());
    }

    #[test]
    fn own_tables_of_the_ruleset_are_kept_in_order() {
        let ruleset = "table ip firewall_nat {\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t}\n}\ntable ip filter {\n\tchain INPUT {\n\t}\n}\ntable inet firewall {\n\tset s {\n\t\telements = { 1 }\n\t}\n}\ntable inet firewall2 {\n}\n";
        let saved = own_of_ruleset(ruleset);
        assert_eq!(saved.present, vec!["inet firewall", "ip firewall_nat"]);
        assert_eq!(
            saved.text,
            "table inet firewall {\n\tset s {\n\t\telements = { 1 }\n\t}\n}\ntable ip firewall_nat {\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t}\n}\n"
        );
        assert_eq!(own_of_ruleset("table ip filter {\n}\n"), Saved::default());
        assert_eq!(own_of_ruleset(""), Saved::default());
    }

    /// What nft 1.0.6 printed for `nft -e -j -f` of a file that declares
    /// `inet firewall` (placeholder, delete, the table) on a first apply.
    const ECHO: &str = r#"{"nftables": [{"add": {"table": {"family": "inet", "name": "firewall", "handle": 693}}}, {"add": {"table": {"family": "ip", "name": "firewall_nat", "handle": 694}}}, {"add": {"table": {"family": "inet", "name": "firewall", "handle": 695}}}, {"add": {"chain": {"family": "inet", "table": "firewall", "name": "ext-in", "handle": 1}}}, {"add": {"chain": {"family": "inet", "table": "firewall", "name": "input", "handle": 4, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}}}, {"add": {"set": {"family": "inet", "name": "p", "table": "firewall", "type": "inet_service", "handle": 3, "flags": ["interval"]}}}, {"add": {"element": {"family": "inet", "table": "firewall", "name": "p", "elem": {"set": [22]}}}}, {"add": {"rule": {"family": "inet", "table": "firewall", "chain": "input", "handle": 5, "comment": "a", "expr": []}}}, {"add": {"rule": {"family": "inet", "table": "firewall", "chain": "input", "handle": 6, "expr": []}}}]}"#;

    #[test]
    fn the_echo_is_replayed_per_table_and_chain() {
        let read = parse_echo(ECHO).unwrap();
        let Some(Echoed::Created(chains)) = read.get("inet firewall") else {
            panic!("{read:?}");
        };
        let input = &chains["input"];
        assert_eq!(input.hook.as_deref(), Some("input"));
        assert_eq!(input.policy.as_deref(), Some("drop"));
        assert_eq!(input.comments, vec!["a", ""]);
        assert_eq!(chains["ext-in"], ReadChain::default());
        assert_eq!(chains.len(), 2);
        // The placeholder of the NAT table: created empty.
        assert_eq!(
            read.get("ip firewall_nat"),
            Some(&Echoed::Created(BTreeMap::new()))
        );
        // A later `add table` starts the table again (the file's idiom).
        let again = ECHO.replace(
            r#"{"add": {"rule": {"family": "inet", "table": "firewall", "chain": "input", "handle": 6"#,
            r#"{"add": {"table": {"family": "inet", "name": "firewall", "handle": 9}}}, {"add": {"rule": {"family": "inet", "table": "firewall", "chain": "input", "handle": 6"#,
        );
        let Some(Echoed::Created(chains)) = parse_echo(&again).unwrap().remove("inet firewall")
        else {
            panic!();
        };
        assert_eq!(chains["input"].comments, vec![""]);
        assert_eq!(chains["input"].hook, None);
        // Rules of a table the transaction did not create: not replaced.
        let e = parse_echo(
            r#"{"nftables": [{"add": {"rule": {"family": "inet", "table": "firewall", "chain": "input", "expr": []}}}]}"#,
        )
        .unwrap_err();
        assert!(e.contains("not replaced"), "{e}");
        let deleted = parse_echo(
            r#"{"nftables": [{"delete": {"table": {"family": "ip", "name": "firewall_nat"}}}]}"#,
        )
        .unwrap();
        assert_eq!(deleted.get("ip firewall_nat"), Some(&Echoed::Deleted));
        assert!(parse_echo("not json").is_err());
        assert!(parse_echo("").is_err());
        assert!(parse_echo("{}").is_err());
    }
}

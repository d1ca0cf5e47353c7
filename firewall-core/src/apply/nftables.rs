//! The nftables backend: the firewall's own tables ([`shell::NFT_TABLES`])
//! saved, loaded in one `nft -f` transaction, and read back.
//!
//! * **Backup**: `nft list tables`, then `nft list table T` of each own table
//!   that exists, concatenated (what the library's `fw_nft_save` prints, and
//!   what `fw_nft_restore` puts back): `DIR/nft.rules`, empty when none exists.
//!   Nothing else of the host's ruleset is read.
//! * **Load**: one `nft -f -` of the policy's nftables file: both families and
//!   the NAT table in one transaction, so a failure anywhere changes nothing.
//! * **Verify**: `nft list tables` and `nft -j list table T` of each table the
//!   file declares (concurrently), the JSON read with `serde_json`, and
//!   compared per chain with what the printer printed
//!   ([`crate::render::Printed::chains`]): the base chains' hook and policy,
//!   and per chain the sequence of rule comments. A missing or an extra own
//!   table (the NAT table of an earlier policy) is a mismatch.

use super::system::{RunOutput, System};
use super::{classify_at, Cause};
use crate::render::{shell, Printed};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::io;

/// The tool.
pub(crate) const NFT: &str = "nft";

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

/// Runs `nft ARGS...` for every argument list at once (on the critical path
/// of every apply).
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

fn list_table(table: &str, json: bool) -> Vec<&str> {
    let mut args = if json { vec!["-j"] } else { vec![] };
    args.extend(["list", "table"]);
    args.extend(table.split_whitespace());
    args
}

/// The own tables as they are now (see the module docs): the text of
/// `DIR/nft.rules`.
pub(crate) fn save(sys: &dyn System) -> Result<String, Cause> {
    let listed = ok_or_cause(sys.run(NFT, &["list", "tables"], None), "list tables")?;
    let present = own_tables(&listed.stdout);
    let calls: Vec<Vec<&str>> = present.iter().map(|t| list_table(t, false)).collect();
    let mut saved = String::new();
    for (table, out) in present.iter().zip(run_all(sys, &calls)) {
        saved.push_str(&ok_or_cause(out, &format!("list table {table}"))?.stdout);
    }
    Ok(saved)
}

/// The whole ruleset (`nft list ruleset`): the backup of an `exclusive;`
/// apply, which replaces everything.
pub(crate) fn save_ruleset(sys: &dyn System) -> Result<String, Cause> {
    Ok(ok_or_cause(sys.run(NFT, &["list", "ruleset"], None), "list ruleset")?.stdout)
}

/// What `exclusive;` puts before the first line of the file (on that line,
/// so that line numbers still name the policy's statements): the whole
/// ruleset is flushed in the same transaction.
pub(crate) const EXCLUSIVE_PREFIX: &str = "flush ruleset; ";

/// Loads the policy's nftables file in one transaction (`exclusive`: after
/// `flush ruleset`, in the same transaction); a failure names the line and
/// the statement it came from.
pub(crate) fn load(
    sys: &dyn System,
    nft: &Printed,
    exclusive: bool,
    lock: &File,
) -> Result<(), Cause> {
    let text = if exclusive {
        std::borrow::Cow::Owned(format!("{EXCLUSIVE_PREFIX}{}", nft.text()))
    } else {
        std::borrow::Cow::Borrowed(nft.text())
    };
    let out = sys
        .run_holding(NFT, &["-f", "-"], Some(&text), lock)
        .map_err(Cause::Io)?;
    if out.success() {
        Ok(())
    } else {
        let line = error_line(&out.stderr);
        Err(classify_at("nft -f", &out, Some(nft), line))
    }
}

/// The line of the first error in `nft -f` output: `/dev/stdin:12:5-20:
/// Error: ...` (nft 1.0.6 reading `-`; a file name otherwise).
pub(crate) fn error_line(stderr: &str) -> Option<usize> {
    stderr.lines().find_map(|l| {
        let (location, _) = l.split_once(": Error:")?;
        let mut parts = location.rsplitn(3, ':');
        let _columns = parts.next()?;
        parts.next()?.trim().parse().ok()
    })
}

/// A chain as read back: hook and policy of a base chain, rule comments.
#[derive(Debug, Default, PartialEq, Eq)]
struct ReadChain {
    hook: Option<String>,
    policy: Option<String>,
    comments: Vec<String>,
}

/// The chains of one `nft -j list table` output, keyed by (table, chain).
fn parse_json(text: &str, into: &mut BTreeMap<(String, String), ReadChain>) -> Result<(), String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("nft -j printed no JSON: {e}"))?;
    let items = value
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or("nft -j printed no \"nftables\" list")?;
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    for item in items {
        if let Some(c) = item.get("chain") {
            let key = (
                format!(
                    "{} {}",
                    s(c, "family").unwrap_or_default(),
                    s(c, "table").unwrap_or_default()
                ),
                s(c, "name").unwrap_or_default(),
            );
            let chain = into.entry(key).or_default();
            chain.hook = s(c, "hook");
            chain.policy = s(c, "policy");
        } else if let Some(r) = item.get("rule") {
            let key = (
                format!(
                    "{} {}",
                    s(r, "family").unwrap_or_default(),
                    s(r, "table").unwrap_or_default()
                ),
                s(r, "chain").unwrap_or_default(),
            );
            into.entry(key)
                .or_default()
                .comments
                .push(s(r, "comment").unwrap_or_default());
        }
    }
    Ok(())
}

/// Reads the own tables back and compares them with what `nft` printed
/// (see the module docs).
pub(crate) fn verify(sys: &dyn System, nft: &Printed) -> Result<(), Cause> {
    let mismatch = |detail: String| Cause::Mismatch {
        family: "nftables",
        detail,
    };
    let want = nft.tables();
    let mut calls: Vec<Vec<&str>> = vec![vec!["list", "tables"]];
    calls.extend(want.iter().map(|t| list_table(t, true)));
    let mut outs = run_all(sys, &calls).into_iter();
    let listed = ok_or_cause(
        outs.next()
            .unwrap_or_else(|| Err(io::Error::other("no output"))),
        "list tables",
    )?;
    let present = own_tables(&listed.stdout);
    let mut read = BTreeMap::new();
    for (table, out) in want.iter().zip(outs) {
        if !present.contains(table) {
            return Err(mismatch(format!("table {table} is missing")));
        }
        let out = ok_or_cause(out, &format!("-j list table {table}"))?;
        parse_json(&out.stdout, &mut read).map_err(mismatch)?;
    }
    if let Some(extra) = present.iter().find(|t| !want.contains(t)) {
        return Err(mismatch(format!(
            "table {extra} exists, but the policy has none"
        )));
    }
    for chain in nft.chains() {
        let key = (chain.table.clone(), chain.name.clone());
        let Some(got) = read.remove(&key) else {
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
    if let Some(((table, chain), _)) = read.into_iter().next() {
        return Err(mismatch(format!(
            "table {table} has an unexpected chain {chain}"
        )));
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
    fn json_is_read_per_chain() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "inet", "name": "firewall", "handle": 8}}, {"chain": {"family": "inet", "table": "firewall", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}}, {"chain": {"family": "inet", "table": "firewall", "name": "ext-in", "handle": 2}}, {"rule": {"family": "inet", "table": "firewall", "chain": "input", "handle": 3, "comment": "a", "expr": []}}, {"rule": {"family": "inet", "table": "firewall", "chain": "input", "handle": 4, "expr": []}}]}"#;
        let mut read = BTreeMap::new();
        parse_json(json, &mut read).unwrap();
        let input = &read[&("inet firewall".to_string(), "input".to_string())];
        assert_eq!(input.hook.as_deref(), Some("input"));
        assert_eq!(input.policy.as_deref(), Some("drop"));
        assert_eq!(input.comments, vec!["a", ""]);
        let ext = &read[&("inet firewall".to_string(), "ext-in".to_string())];
        assert_eq!(ext, &ReadChain::default());
        assert!(parse_json("not json", &mut read).is_err());
        assert!(parse_json("{}", &mut read).is_err());
    }
}

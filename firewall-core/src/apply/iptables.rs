//! The iptables backends (iptables-nft, iptables-legacy): their save/restore
//! tools, the backup of both families, and the read-back comparison with
//! what the printer printed ([`crate::render::Printed::chains`]).

use super::system::{RunOutput, System};
use super::{classify_at, missing, ApplyError, Backend, Cause};
use crate::render::printed::ExpectedChain;
use crate::render::Printed;
use std::collections::BTreeMap;
use std::io;

/// The resolved save/restore tools of one iptables backend.
pub(crate) struct Tools {
    pub(crate) save: [String; 2],
    pub(crate) restore: [String; 2],
}

/// The same choice as the shell's `fw_tool`: the backend-specific name
/// (`iptables-nft-restore`) first, the plain one as fallback. (A `PATH`
/// lookup, through [`System::find`]: asking the library would cost a bash
/// process per apply for the same answer.)
pub(crate) fn resolve(sys: &dyn System, backend: Backend) -> Result<Tools, ApplyError> {
    let pick = |base: &str, verb: &str| -> Result<String, ApplyError> {
        let variant = backend.iptables_variant().unwrap_or("nft");
        let specific = format!("{base}-{variant}-{verb}");
        if sys.find(&specific).is_some() {
            return Ok(specific);
        }
        let plain = format!("{base}-{verb}");
        if sys.find(&plain).is_some() {
            return Ok(plain);
        }
        Err(missing(&specific))
    };
    Ok(Tools {
        save: [pick("iptables", "save")?, pick("ip6tables", "save")?],
        restore: [pick("iptables", "restore")?, pick("ip6tables", "restore")?],
    })
}

/// Runs both families' save tools concurrently (backup and verify are on the
/// critical path of every apply).
pub(crate) fn save_both(
    sys: &dyn System,
    tools: &Tools,
    counters: bool,
) -> io::Result<[RunOutput; 2]> {
    let args: &[&str] = if counters { &["-c"] } else { &[] };
    std::thread::scope(|s| {
        let v6 = s.spawn(|| sys.run(&tools.save[1], args, None));
        let v4 = sys.run(&tools.save[0], args, None);
        let v6 = v6
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("ip6tables-save thread panicked")));
        Ok([v4?, v6?])
    })
}

pub(crate) fn check_saved(out: &RunOutput, tool: &str) -> Result<(), Cause> {
    if out.success() {
        Ok(())
    } else {
        Err(classify_at(tool, out, None, None))
    }
}

/// The line number in "Error occurred at line: 8" or "line 10 failed".
pub(crate) fn error_line(stderr: &str) -> Option<usize> {
    let mut rest = stderr;
    while let Some(i) = rest.find("line") {
        rest = &rest[i + 4..];
        let digits: String = rest
            .trim_start_matches([':', ' '])
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(n) = digits.parse() {
            return Some(n);
        }
    }
    None
}

/// The printed text with every table that asks for nothing (no rules, no
/// user chains, all policies ACCEPT) and already exists exactly so in
/// `saved` turned into comment lines. Loading such a table changes nothing
/// but costs a kernel commit (~10 ms: its base chains' hooks are
/// re-registered), e.g. the empty IPv6 `nat` table on every re-apply. Line
/// numbers are kept, so "line N" errors still map to the policy.
pub(crate) fn skip_unchanged_empty_tables<'a>(
    printed: &'a Printed,
    saved: &str,
) -> std::borrow::Cow<'a, str> {
    let text = printed.text();
    let have = parse_tables(saved);
    let empty = |c: &ExpectedChain| c.policy.as_deref() == Some("ACCEPT") && c.comments.is_empty();
    let skip: Vec<&str> = printed
        .tables()
        .into_iter()
        .filter(|table| {
            let want: Vec<&ExpectedChain> = printed
                .chains()
                .iter()
                .filter(|c| c.table == *table)
                .collect();
            want.iter().all(|c| empty(c))
                && have.get(*table).is_some_and(|h| {
                    h.values()
                        .all(|(policy, rules)| policy == "ACCEPT" && rules.is_empty())
                        && h.len() == want.len()
                        && want.iter().all(|c| h.contains_key(&c.name))
                })
        })
        .collect();
    if skip.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut skipping = false;
    for line in text.lines() {
        if let Some(t) = line.strip_prefix('*') {
            skipping = skip.contains(&t.trim());
        }
        if skipping {
            out.push_str("# unchanged, not reloaded: ");
            out.push_str(line);
            if line.trim() == "COMMIT" {
                skipping = false;
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    std::borrow::Cow::Owned(out)
}

/// Tables as `iptables-save` prints them: table -> chain -> (policy, rule comments).
type Tables = BTreeMap<String, BTreeMap<String, (String, Vec<String>)>>;

fn parse_tables(text: &str) -> Tables {
    let mut tables = Tables::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(t) = line.strip_prefix('*') {
            current = Some(t.trim().to_string());
            tables.entry(t.trim().to_string()).or_default();
            continue;
        }
        let Some(table) = current.as_ref().and_then(|t| tables.get_mut(t)) else {
            continue;
        };
        if let Some(chain) = line.strip_prefix(':') {
            let mut w = chain.split_whitespace();
            if let (Some(name), Some(policy)) = (w.next(), w.next()) {
                table.entry(name.to_string()).or_default().0 = policy.to_string();
            }
        } else if let Some(pos) = line.find("-A ") {
            // Saved with counters, a rule starts with "[p:b] -A".
            let mut w = line[pos + 3..].split_whitespace();
            if let Some(chain) = w.next() {
                table
                    .entry(chain.to_string())
                    .or_default()
                    .1
                    .push(comment_of(line).unwrap_or_default());
            }
        } else if line.trim() == "COMMIT" {
            current = None;
        }
    }
    tables
}

/// The comment of a rule `iptables-save` printed (it leaves a one-word
/// comment unquoted).
fn comment_of(rule: &str) -> Option<String> {
    let (_, rest) = rule.split_once("--comment ")?;
    if let Some(q) = rest.strip_prefix('"') {
        q.split_once('"').map(|(c, _)| c.to_string())
    } else {
        rest.split_whitespace().next().map(str::to_string)
    }
}

/// Compares what the printer printed with what the save tool reads back
/// (`actual`): per table and chain the policy and the rule comments, and no
/// extra chain; the rule count on success.
pub(crate) fn verify(expected: &Printed, actual: &str) -> Result<usize, String> {
    let have = parse_tables(actual);
    let mut rules = 0;
    for table in expected.tables() {
        let Some(got) = have.get(table) else {
            return Err(format!("table {table} is missing"));
        };
        let chains: Vec<&ExpectedChain> = expected
            .chains()
            .iter()
            .filter(|c| c.table == table)
            .collect();
        for chain in &chains {
            let name = &chain.name;
            let Some((gpolicy, gcomments)) = got.get(name) else {
                return Err(format!("chain {name} of table {table} is missing"));
            };
            let policy = chain.policy.as_deref().unwrap_or("-");
            if policy != gpolicy {
                return Err(format!(
                    "chain {name} of table {table} has policy {gpolicy}, expected {policy}"
                ));
            }
            if &chain.comments != gcomments {
                return Err(format!(
                    "chain {name} of table {table} has {} rules, expected {} ({:?} vs {:?})",
                    gcomments.len(),
                    chain.comments.len(),
                    gcomments.iter().take(3).collect::<Vec<_>>(),
                    chain.comments.iter().take(3).collect::<Vec<_>>()
                ));
            }
            rules += chain.comments.len();
        }
        if let Some(extra) = got.keys().find(|c| !chains.iter().any(|w| &w.name == *c)) {
            return Err(format!("table {table} has an unexpected chain {extra}"));
        }
    }
    Ok(rules)
}

//! The iptables backends (iptables-nft, iptables-legacy): their save/restore
//! tools, the backup of both families, and the read-back comparison with
//! what the printer printed ([`crate::render::Printed::chains`]).

use super::system::{RunOutput, System};
use super::{classify_at, missing, ApplyError, Backend, Cause};
use crate::plan::CHAIN_PREFIX;
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

/// The tables of an `iptables-save` text, one name a line (what the script
/// writes with `sed -n 's/^\*//p'`).
pub(crate) fn table_names(save: &str) -> String {
    save.lines()
        .filter_map(|l| l.strip_prefix('*'))
        .map(|t| format!("{t}\n"))
        .collect()
}

/// A rule line without its `[packets:bytes] ` counters.
fn strip_counters(line: &str) -> &str {
    if let Some(rest) = line.strip_prefix('[') {
        if let Some((c, rule)) = rest.split_once("] ") {
            if c.split(':')
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            {
                return rule;
            }
        }
    }
    line
}

/// Whether `line` is a hook: exactly `-A BUILTIN -j fw-CHAIN` (the chain it
/// is in not one of the firewall's own).
fn is_hook(line: &str) -> bool {
    let w: Vec<&str> = line.split_whitespace().collect();
    w.len() == 4
        && w[0] == "-A"
        && !w[1].starts_with(CHAIN_PREFIX)
        && w[2] == "-j"
        && w[3].starts_with(CHAIN_PREFIX)
}

/// What the firewall owns of an `iptables-save` text: the rule of the shell
/// library's `fw_ipt_own` (tested to agree): per table the built-in chains'
/// policies, the own chains and their rules, and the hooks, counters dropped;
/// a table other than `filter` only when it holds an own chain or hook.
pub(crate) fn own(save: &str) -> String {
    let mut out = String::new();
    let (mut table, mut b, mut d, mut r, mut owned) = (
        None::<&str>,
        String::new(),
        String::new(),
        String::new(),
        false,
    );
    for line in save.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = Some(t);
            b.clear();
            d.clear();
            r.clear();
            owned = false;
            continue;
        }
        let Some(t) = table else { continue };
        if line == "COMMIT" {
            if t == "filter" || owned {
                out.push_str(&format!("*{t}\n{b}{d}{r}COMMIT\n"));
            }
            table = None;
            continue;
        }
        if let Some(decl) = line.strip_prefix(':') {
            let mut w = decl.split_whitespace();
            let (name, policy) = (w.next().unwrap_or(""), w.next().unwrap_or(""));
            if name.starts_with(CHAIN_PREFIX) {
                d.push_str(&format!(":{name} - [0:0]\n"));
                owned = true;
            } else if policy != "-" {
                b.push_str(&format!(":{name} {policy} [0:0]\n"));
            }
            continue;
        }
        let rule = strip_counters(line);
        if !rule.starts_with("-A ") {
            continue;
        }
        let chain = rule.split_whitespace().nth(1).unwrap_or("");
        if chain.starts_with(CHAIN_PREFIX) || is_hook(rule) {
            r.push_str(rule);
            r.push('\n');
            owned = true;
        }
    }
    out
}

/// The text to load for `text` (a policy's or a backup's), given the live
/// ruleset `live` (`iptables-save`): the rule of the shell library's
/// `fw_ipt_prepare` (tested to agree). Line N of `text` stays line N.
/// Not exclusive (loaded with `--noflush`): hooks the live table has become
/// comments; own chains live but not declared are deleted (hooks, `-F`,
/// `-X`). Exclusive (loaded without): every live table `text` does not name
/// is added empty, built-in chains `ACCEPT`.
pub(crate) fn prepare(text: &str, live: &str, exclusive: bool) -> String {
    struct Live<'a> {
        name: &'a str,
        owned: Vec<&'a str>,
        builtin: Vec<&'a str>,
        hooks: Vec<&'a str>,
    }
    let mut tables: Vec<Live> = Vec::new();
    let mut cur: Option<usize> = None;
    for line in live.lines() {
        if let Some(t) = line.strip_prefix('*') {
            cur = Some(match tables.iter().position(|l| l.name == t) {
                Some(i) => i,
                None => {
                    tables.push(Live {
                        name: t,
                        owned: Vec::new(),
                        builtin: Vec::new(),
                        hooks: Vec::new(),
                    });
                    tables.len() - 1
                }
            });
            continue;
        }
        if line == "COMMIT" {
            cur = None;
            continue;
        }
        let Some(l) = cur.and_then(|i| tables.get_mut(i)) else {
            continue;
        };
        if let Some(decl) = line.strip_prefix(':') {
            let mut w = decl.split_whitespace();
            let (name, policy) = (w.next().unwrap_or(""), w.next().unwrap_or(""));
            if name.starts_with(CHAIN_PREFIX) {
                l.owned.push(name);
            } else if policy != "-" {
                l.builtin.push(name);
            }
            continue;
        }
        let rule = strip_counters(line);
        if is_hook(rule) {
            l.hooks.push(rule);
        }
    }
    let mut out = String::with_capacity(text.len() + 64);
    let mut named: Vec<&str> = Vec::new();
    let mut declared: Vec<(&str, &str)> = Vec::new();
    let mut ft: Option<&str> = None;
    for line in text.lines() {
        if let Some(t) = line.strip_prefix('*') {
            ft = Some(t);
            named.push(t);
        } else if line == "COMMIT" {
            ft = None;
        } else if let (Some(t), Some(decl)) = (ft, line.strip_prefix(':')) {
            declared.push((t, decl.split_whitespace().next().unwrap_or("")));
        } else if let Some(t) = ft {
            let present = || {
                tables
                    .iter()
                    .any(|l| l.name == t && l.hooks.contains(&line))
            };
            if !exclusive && is_hook(line) && present() {
                out.push_str("# hook present: ");
                out.push_str(line);
                out.push('\n');
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    for l in &tables {
        if exclusive {
            if named.contains(&l.name) {
                continue;
            }
            out.push_str(&format!("*{}\n", l.name));
            for c in &l.builtin {
                out.push_str(&format!(":{c} ACCEPT [0:0]\n"));
            }
            out.push_str("COMMIT\n");
            continue;
        }
        let stale: Vec<&str> = l
            .owned
            .iter()
            .copied()
            .filter(|c| !declared.contains(&(l.name, *c)))
            .collect();
        if stale.is_empty() {
            continue;
        }
        out.push_str(&format!("*{}\n", l.name));
        for h in &l.hooks {
            let target = h.split_whitespace().nth(3).unwrap_or("");
            for c in &stale {
                if *c == target {
                    out.push_str(&format!("-D {}\n", &h[3..]));
                }
            }
        }
        for c in &stale {
            out.push_str(&format!("-F {c}\n"));
        }
        for c in &stale {
            out.push_str(&format!("-X {c}\n"));
        }
        out.push_str("COMMIT\n");
    }
    out
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
    // Only what the firewall owns: other tools' chains and rules are theirs.
    let have = parse_tables(&own(actual));
    let mut rules = 0;
    if let Some(extra) = have
        .keys()
        .find(|t| !expected.tables().contains(&t.as_str()))
    {
        return Err(format!(
            "table {extra} holds chains of the firewall's own that the policy does not have"
        ));
    }
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
            rules += chain.comments.iter().filter(|c| !c.is_empty()).count();
        }
        if let Some(extra) = got.keys().find(|c| !chains.iter().any(|w| &w.name == *c)) {
            return Err(format!("table {table} has an unexpected chain {extra}"));
        }
    }
    Ok(rules)
}

//! Policy texts written in this repository's Rust files: the body of every
//! `firewall! { ... }` block, with where it starts. Shared by the tests that
//! feed the same policies to `Policy::parse` (parity, generated-text checks).
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

/// One `firewall! { ... }` body.
#[derive(Debug, Clone)]
pub struct Block {
    /// The text between the braces.
    pub text: String,
    /// 1-based line of its first character in the file.
    pub line: usize,
    /// 1-based column of its first character.
    pub column: usize,
}

/// The `.rs` files of a folder of this repository, sorted.
pub fn rust_files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .rs files in {}", dir.display());
    files
}

/// Every `firewall! {` block of `source`, matched brace for brace (strings and
/// comments skipped).
pub fn blocks(source: &str) -> Vec<Block> {
    const OPEN: &str = "firewall! {";
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = source[from..].find(OPEN) {
        let start = from + found + OPEN.len();
        let end = matching_brace(&source[start..]).map_or(source.len(), |e| start + e);
        let before = &source[..start];
        let line = before.matches('\n').count() + 1;
        let column = before[before.rfind('\n').map_or(0, |i| i + 1)..]
            .chars()
            .count()
            + 1;
        out.push(Block {
            text: source[start..end].to_string(),
            line,
            column,
        });
        from = end;
    }
    out
}

/// Byte offset of the `}` closing a block whose `{` came just before `s`.
fn matching_brace(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 1usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
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
                i += 1;
            }
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[test]
fn finds_every_block_with_its_position() {
    let src = "const A: F = firewall! {\n    extif eth0; // }\n    open tcp 22; /* } */\n};\nconst B: F = firewall! { extif \"}\"; };\n";
    let found = blocks(src);
    assert_eq!(found.len(), 2);
    assert_eq!((found[0].line, found[0].column), (1, 25));
    assert!(found[0].text.contains("open tcp 22;"));
    assert_eq!(found[1].text, " extif \"}\"; ");
    assert_eq!((found[1].line, found[1].column), (5, 25));
}

//! Network interface names, valid for Linux and safe in every rendered format.

use std::fmt;

/// Why a string is not a usable interface name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfaceError {
    /// The name is empty.
    Empty,
    /// Longer than the kernel's 15 bytes (IFNAMSIZ - 1).
    TooLong(usize),
    /// `.` or `..`.
    Dots,
    /// A character Linux rejects (`/`, `:`, whitespace) or one the netfilter
    /// tools cannot take in a name (quotes, `#`, `!`, control characters).
    BadChar(char),
}

impl fmt::Display for IfaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IfaceError::Empty => f.write_str("an interface name cannot be empty"),
            IfaceError::TooLong(n) => write!(
                f,
                "an interface name is at most 15 bytes long on Linux, this one has {n}"
            ),
            IfaceError::Dots => f.write_str("`.` and `..` are not interface names"),
            IfaceError::BadChar(c) => write!(
                f,
                "an interface name cannot contain {}",
                match c {
                    ' ' => "a space".to_string(),
                    c if c.is_whitespace() || c.is_control() => format!("{c:?}"),
                    c => format!("`{c}`"),
                }
            ),
        }
    }
}

impl std::error::Error for IfaceError {}

/// A network interface name Linux accepts (`eth0`, `br-lan`, `eth0.100`).
///
/// A trailing `+` is the iptables wildcard (`ppp+` = every `ppp` interface).
///
/// ```
/// use firewall_core::model::Iface;
/// assert!(Iface::new("eth0").is_ok());
/// assert!(Iface::new("a-name-far-too-long").is_err());
/// assert!(Iface::new("eth0:1").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Iface(String);

impl Iface {
    /// Validates `name` as Linux does (`dev_valid_name`), plus the characters
    /// that iptables-restore and shells would misread.
    pub fn new(name: &str) -> Result<Iface, IfaceError> {
        if name.is_empty() {
            return Err(IfaceError::Empty);
        }
        if name.len() > 15 {
            return Err(IfaceError::TooLong(name.len()));
        }
        if name == "." || name == ".." {
            return Err(IfaceError::Dots);
        }
        if let Some(c) = name.chars().find(|&c| {
            c == '/'
                || c == ':'
                || c.is_whitespace()
                || c.is_control()
                || matches!(c, '"' | '\'' | '#' | '!' | '\\' | '`' | '$')
        }) {
            return Err(IfaceError::BadChar(c));
        }
        Ok(Iface(name.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as the policy language writes it: bare when it is a plain
    /// identifier, quoted otherwise (`"br-lan"`, `"ppp+"`, and Rust keywords
    /// such as `"type"`, which are not identifiers to the parser).
    ///
    /// ```
    /// use firewall_core::model::Iface;
    /// let w = |n| Iface::new(n).unwrap().written();
    /// assert_eq!(w("eth0"), "eth0");
    /// assert_eq!(w("br-lan"), "\"br-lan\"");
    /// assert_eq!(w("type"), "\"type\"");
    /// ```
    pub fn written(&self) -> String {
        let s = self.0.as_str();
        let ident = s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !is_keyword(s);
        if ident {
            s.to_string()
        } else {
            format!("\"{s}\"")
        }
    }

    /// The loopback interface, `lo`.
    pub fn loopback() -> Iface {
        Iface("lo".to_string())
    }

    /// Whether this is the loopback interface.
    pub fn is_loopback(&self) -> bool {
        self.0 == "lo"
    }
}

impl fmt::Display for Iface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Words that are not identifiers to the parser: Rust's keywords of every
/// edition (what `syn` refuses as an identifier, plus `gen`) and `_`.
fn is_keyword(s: &str) -> bool {
    matches!(
        s,
        "_" | "abstract"
            | "as"
            | "async"
            | "await"
            | "become"
            | "box"
            | "break"
            | "const"
            | "continue"
            | "crate"
            | "do"
            | "dyn"
            | "else"
            | "enum"
            | "extern"
            | "false"
            | "final"
            | "fn"
            | "for"
            | "gen"
            | "if"
            | "impl"
            | "in"
            | "let"
            | "loop"
            | "macro"
            | "match"
            | "mod"
            | "move"
            | "mut"
            | "override"
            | "priv"
            | "pub"
            | "ref"
            | "return"
            | "Self"
            | "self"
            | "static"
            | "struct"
            | "super"
            | "trait"
            | "true"
            | "try"
            | "type"
            | "typeof"
            | "unsafe"
            | "unsized"
            | "use"
            | "virtual"
            | "where"
            | "while"
            | "yield"
    )
}

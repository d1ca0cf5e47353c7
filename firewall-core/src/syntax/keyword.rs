//! The statement keywords: the one list of them. The parser dispatches on
//! [`Keyword`], its help texts and "did you mean" read [`Keyword::ALL`], and so
//! do the tests that generate policies.

use std::fmt;

/// Declares [`Keyword`], [`Keyword::ALL`] and [`Keyword::as_str`] from one
/// list, so that none of them can miss a keyword.
macro_rules! keywords {
    ($($(#[$doc:meta])* $variant:ident => $word:literal,)*) => {
        /// A statement keyword (DSL.md section 2).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Keyword {
            $($(#[$doc])* $variant,)*
        }

        impl Keyword {
            /// Every keyword, in the order of the contract's statement table.
            pub const ALL: &'static [Keyword] = &[$(Keyword::$variant,)*];

            /// The keyword as written in a policy.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Keyword::$variant => $word,)*
                }
            }
        }
    };
}

keywords! {
    /// `extif IFACE, ...;`
    Extif => "extif",
    /// `trust IFACE, ...;`
    Trust => "trust",
    /// `policy CHAIN VERDICT;`
    Policy => "policy",
    /// `open PROTO PORTS [from NET, ...];`
    Open => "open",
    /// `icmp accept;` / `icmp drop;`
    Icmp => "icmp",
    /// `masquerade;`
    Masquerade => "masquerade",
    /// `dnat [PROTO] PORT -> ADDR[:PORT];`
    Dnat => "dnat",
    /// `redirect [PROTO] PORT -> PORT;`
    Redirect => "redirect",
    /// `forward drop;`
    Forward => "forward",
    /// `block out PROTO PORTS;`
    Block => "block",
    /// `ssh PORT;` / `ssh none;`
    Ssh => "ssh",
    /// `failsafe DURATION;`
    Failsafe => "failsafe",
    /// `log drops;`
    Log => "log",
    /// `exclusive;`
    Exclusive => "exclusive",
    /// `assert open|closed|closed out|forwarded ...;` (DSL.md section 7)
    Assert => "assert",
}

impl Keyword {
    /// The keyword `word` is, exactly as written (keywords are lowercase).
    ///
    /// ```
    /// use firewall_core::syntax::Keyword;
    /// assert_eq!(Keyword::from_word("open"), Some(Keyword::Open));
    /// assert_eq!(Keyword::from_word("OPEN"), None);
    /// ```
    pub fn from_word(word: &str) -> Option<Keyword> {
        Keyword::ALL.iter().copied().find(|k| k.as_str() == word)
    }

    /// Every keyword as written, in [`Keyword::ALL`]'s order.
    pub fn words() -> Vec<&'static str> {
        Keyword::ALL.iter().map(|k| k.as_str()).collect()
    }

    /// Every keyword, comma separated (`extif, trust, ...`), for help texts.
    pub fn list() -> String {
        Keyword::words().join(", ")
    }
}

impl fmt::Display for Keyword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Keyword;

    #[test]
    fn every_keyword_is_found_by_its_word_and_listed_once() {
        for (i, k) in Keyword::ALL.iter().enumerate() {
            assert_eq!(Keyword::from_word(k.as_str()), Some(*k));
            assert!(!Keyword::ALL[..i].contains(k), "{k} twice");
        }
        assert_eq!(Keyword::from_word("Extif"), None);
        assert_eq!(Keyword::from_word(""), None);
        // The ui tests pin the rendered help texts that read the list.
        assert!(Keyword::list().starts_with("extif, trust, "));
    }
}

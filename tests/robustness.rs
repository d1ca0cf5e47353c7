//! `Policy::parse` never panics: whatever the text, it returns `Ok`, or `Err`
//! with at least one diagnostic whose positions lie inside the text.
//!
//! Inputs: every prefix of real policies; random sequences of policy tokens and
//! junk (keywords, edge-case numbers, punctuation, odd strings, balanced groups);
//! random characters and bytes.

use firewall::{Code, Diagnostic, LineColumn, Policy};
use firewall_core::syntax::Keyword;
use proptest::prelude::*;

/// Policies in the shapes users write them (from the docs and the UI tests).
const EXAMPLES: &[&str] = &[
    // DSL.md section 1.
    "extif eth0;\nopen tcp 22, 80;\nicmp accept;\nmasquerade;\ndnat 221 -> 192.168.125.22:22;\n",
    // The howto.
    "extif eth0;
open tcp 22, 80, 443, 53, 143, 993;
open udp 53;
icmp accept;
masquerade;
redirect 26 -> 25;
dnat 221 -> 192.168.125.22:22;
failsafe 10s;
",
    // Every statement.
    r#"extif eth0, "ppp0";
trust eth1, "br-lan";
policy input drop;
policy forward drop;
policy output accept;
open tcp 80, 443, 8000..=8080;
open udp 53, 60000..=61000;
open tcp 5432 from 198.51.100.0/24, 203.0.113.7, "2001:db8::/32";
icmp accept;
masquerade;
dnat 221 -> 192.168.125.22:22;
dnat 8443 -> 192.168.125.23;
dnat udp 1194 -> 192.168.125.24:1194;
redirect 26 -> 25;
redirect udp 5353 -> 53;
redirect 2222 -> 22;
block out tcp 25, 6660..=6669;
block out udp 1900;
ssh 2222;
failsafe 2min;
log drops;
"#,
    // Comments, a mistake of each kind, non-ASCII.
    "// the uplink: ünïcödé ✓\nextif eth0; /* block; comment */\nopne tcp 80;\nopen tcp 22, 443, 443, 0, 70000, 9..1;\ndnat 221 -> 192.168 .125.22:22;\nforward drop; masquerade;\nfailsafe 0s;\n",
    "extif \"enp0s31f6-uplink0\", br-lan, eth0.100;\ntrust eth0;\nopen tcp 80 from 198.51.100.7/24, \"2001:db8::1/32\";\nredirect 25 -> 25;\nssh 2222\nlog drops",
];

/// Checks the contract of `Policy::parse` on one text.
fn check(text: &str) {
    match Policy::parse(text) {
        Ok(_) => {}
        Err(e) => {
            let ds = e.diagnostics();
            assert!(!ds.is_empty(), "Err with no diagnostics for {text:?}");
            for d in ds {
                check_position(text, d);
            }
        }
    }
}

fn check_position(text: &str, d: &Diagnostic) {
    let lines: Vec<&str> = text.split('\n').collect();
    let inside = |p: LineColumn| {
        p.line >= 1
            && p.line <= lines.len()
            && p.column >= 1
            && p.column <= lines[p.line - 1].chars().count() + 1
    };
    assert!(
        inside(d.start),
        "start {} of {d:?} is outside the text {text:?}",
        d.start
    );
    assert!(
        inside(d.end),
        "end {} of {d:?} is outside the text {text:?}",
        d.end
    );
    assert!(d.start <= d.end, "{d:?} ends before it starts in {text:?}");
    assert!(!d.message.is_empty(), "{d:?} has no message");
    assert!(!d.help.is_empty(), "{d:?} has no help");
}

#[test]
fn every_prefix_of_the_examples() {
    for example in EXAMPLES {
        let ends: Vec<usize> = example
            .char_indices()
            .map(|(i, _)| i)
            .chain([example.len()])
            .collect();
        for end in ends {
            check(&example[..end]);
        }
    }
}

#[test]
fn every_suffix_of_the_examples() {
    for example in EXAMPLES {
        for (start, _) in example.char_indices() {
            check(&example[start..]);
        }
    }
}

#[test]
fn examples_with_one_char_removed() {
    for example in EXAMPLES {
        let idx: Vec<(usize, char)> = example.char_indices().collect();
        for &(i, c) in &idx {
            let mut s = String::with_capacity(example.len());
            s.push_str(&example[..i]);
            s.push_str(&example[i + c.len_utf8()..]);
            check(&s);
        }
    }
}

#[test]
fn the_well_formed_examples_parse() {
    for example in &EXAMPLES[..3] {
        if let Err(e) = Policy::parse(example) {
            panic!("{example:?}:\n{e}");
        }
    }
}

#[test]
fn edge_cases() {
    for text in [
        "",
        " ",
        "\n\n\n",
        ";",
        ";;;;",
        "{}",
        "{ extif eth0; }",
        "extif",
        "extif;",
        "extif eth0",
        "extif eth0;;",
        "extif eth0; open",
        "extif eth0; open tcp",
        "extif eth0; open tcp 22 from",
        "extif eth0; open tcp 22 from ;",
        "extif eth0; open tcp 22,",
        "extif eth0; open tcp 22..=",
        "extif eth0; open tcp ..=22;",
        "extif eth0; open tcp 22...30;",
        "extif eth0; open tcp 18446744073709551616;",
        "extif eth0; open tcp 22; dnat 1 ->",
        "extif eth0; open tcp 22; dnat 1 -> 1.2.3.4:",
        "extif eth0; open tcp 22; dnat 1 -> 1.2.3.4:0;",
        "extif eth0; open tcp 22; dnat 1 -> 1.2.3.4.5.6;",
        "extif eth0; open tcp 22; dnat 1 -> 1.2.3.4/;",
        "extif eth0; open tcp 22; dnat 1 -> 1.2.3.4//8;",
        "extif eth0; open tcp 22; dnat 1 -> \"\";",
        "extif eth0; open tcp 22 from 1.2.3.4/99999999999999999999;",
        "extif eth0; open tcp 22 from \"::/0\", 0.0.0.0/0;",
        "extif eth0; open tcp 22; failsafe 99999999999999999999min;",
        "extif eth0; open tcp 22; failsafe 1e3s;",
        "extif eth0; open tcp 22; failsafe;",
        "extif eth0; open tcp 22; ssh;",
        "extif eth0; open tcp 22; ssh -;",
        "extif eth0; open tcp 22; redirect - -> -;",
        "extif a-;",
        "extif a-.-;",
        "extif a..b;",
        "extif r#open;",
        "extif _;",
        "extif \"\\u{0}\";",
        "extif \"a\nb\";",
        "extif \"\u{1f}\";",
        "extif eth0; open tcp 22; /* unclosed",
        "extif eth0; open tcp 22; \"unclosed",
        "extif eth0; open tcp 22; }",
        "extif eth0; open tcp 22; (",
        "extif \u{200b}eth0;",
        "\u{feff}extif eth0; open tcp 22;",
        "extif eth0;\r\nopen tcp 22;\r\n",
        "extif eth0;\ropen tcp 22;",
        "extif eth0; open tcp 22; policy input 'a';",
        "extif eth0; open tcp 22; policy input b'x';",
        "extif eth0; open tcp 22; icmp r\"accept\";",
        "\u{1f}lockout\u{1f}x\u{1f}y",
        "extif eth0; open tcp 22; # [doc = \"x\"] log drops;",
        // Issue 6: Unicode spaces, numbers that are not plain decimal, missing
        // commas, `#`, wildcards, accepting input policies.
        "\u{a0}",
        "extif\u{a0}eth0;",
        "extif eth0;\u{3000}\u{1680}",
        "extif eth0; /* \u{a0} */ open\u{2009}tcp 22; // \u{a0}",
        "extif \"\u{a0}\"; open tcp 22;",
        "extif eth0; open tcp 0x;",
        "extif eth0; open tcp 0x16u8;",
        "extif eth0; open tcp 0b;",
        "extif eth0; open tcp 0_0;",
        "extif eth0; open tcp 00;",
        "extif eth0; open tcp 22; failsafe 0x_s;",
        "extif eth0; open tcp 22; failsafe 01min;",
        "extif eth0; open tcp 22 80 90;",
        "extif eth0 eth1 eth2;",
        "extif eth0; open tcp 22 from 10.0.0.0/8 10.0.0.1 \"::1\";",
        "#",
        "#!",
        "#![",
        "# ;",
        "#\n#\n#",
        "extif \"+\"; trust \"+\";",
        "extif \"eth+\"; trust \"eth+\", eth1, \"eth1+\"; open tcp 22;",
        "extif eth0; policy input accept; log drops; open tcp 22 from \"::/0\", 0.0.0.0/0;",
        "extif eth0; open tcp 22 from 0.0.0.0/0, 10.0.0.0/8, 10.0.0.1; open tcp 1..=65535 from 10.0.0.0/8;",
    ] {
        check(text);
    }
}

/// Policy words, edge-case numbers, punctuation and odd literals: the
/// statement keywords (the parser's own list) first, then [`OTHER_WORDS`].
fn vocab() -> Vec<&'static str> {
    let mut words = Keyword::words();
    words.extend_from_slice(OTHER_WORDS);
    words
}

/// Everything in [`vocab`] but the statement keywords.
const OTHER_WORDS: &[&str] = &[
    // The statements' other words.
    "input",
    "output",
    "drop",
    "reject",
    "accept",
    "tcp",
    "udp",
    "from",
    "out",
    "closed",
    "forwarded",
    "none",
    "drops",
    "lo",
    "eth0",
    "eth1",
    "opne",
    "OPEN",
    "in",
    "self",
    // Numbers.
    "0",
    "1",
    "22",
    "25",
    "80",
    "443",
    "65535",
    "65536",
    "70000",
    "4294967296",
    "99999999999999999999999",
    "-1",
    "22u16",
    "0x16",
    "1_000",
    "1e10",
    "1.5",
    "192.168",
    "192.168.125.22",
    "0.0.0.0",
    "255.255.255.255",
    "127.0.0.1",
    "224.0.0.1",
    "198.51.100.7",
    "10s",
    "0s",
    "61min",
    "5min",
    "10h",
    "3601s",
    // Punctuation.
    "..=",
    "..",
    "...",
    "->",
    "=>",
    ":",
    "::",
    "/",
    ".",
    ",",
    ";",
    ";",
    ";",
    "-",
    "+",
    "*",
    "#",
    "!",
    "@",
    "$",
    "?",
    "&",
    "=",
    "<",
    ">",
    "_",
    // Strings and other literals.
    "\"\"",
    "\"eth0\"",
    "\"br-lan\"",
    "\"eth0.100\"",
    "\"0123456789012345678901234567890123456789\"",
    "\"ünï ✓\"",
    "\"2001:db8::/32\"",
    "\"2001:db8::1/32\"",
    "\"::\"",
    "\"a\\\"b\"",
    "\"/\"",
    "\":\"",
    "\".\"",
    "\"..\"",
    "\"\\n\"",
    "'a'",
    "b'x'",
    "r\"raw\"",
    "r#open",
    "'life",
    "é",
    "ǅ",
    "日本",
    // Comments.
    "/* c; */",
    "// c\n",
    "\n",
];

fn token() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(vocab()).prop_map(str::to_string);
    leaf.prop_recursive(3, 24, 6, |inner| {
        (
            prop::sample::select(&[("{", "}"), ("(", ")"), ("[", "]")][..]),
            prop::collection::vec(inner, 0..6),
        )
            .prop_map(|((open, close), body)| format!("{open}{}{close}", body.join(" ")))
    })
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&[" ", " ", " ", "", "\n", "  ", "\t"][..])
}

fn policy_like() -> impl Strategy<Value = String> {
    prop::collection::vec((token(), separator()), 0..40).prop_map(|parts| {
        parts
            .into_iter()
            .flat_map(|(t, s)| [t, s.to_string()])
            .collect::<String>()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn random_token_sequences(text in policy_like()) {
        check(&text);
    }

    #[test]
    fn random_statements_after_a_valid_head(body in policy_like()) {
        check(&format!("extif eth0;\nopen tcp 22;\n{body}"));
        check(&format!("{body}\nextif eth0; open tcp 22;"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn random_strings(text in any::<String>()) {
        check(&text);
    }

    #[test]
    fn random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_policy_alphabet_with_unicode_spaces(text in "[a-z0-9 ;,.:/\"#_\u{a0}\u{2009}\u{3000}\n]{0,120}") {
        check(&text);
    }

    #[test]
    fn random_policy_alphabet(text in "[a-z0-9 ;,.:/\"{}()=>\\-\n]{0,120}") {
        check(&text);
    }
}

fn codes(text: &str) -> Vec<Code> {
    match Policy::parse(text) {
        Ok(_) => Vec::new(),
        Err(e) => e.diagnostics().iter().map(|d| d.code).collect(),
    }
}

/// One mistake gives one diagnostic: no follow-on errors from what a broken
/// statement would have provided.
#[test]
fn one_mistake_one_diagnostic() {
    for (text, want) in [
        ("extif eth0; opne tcp 22;", vec![Code::Syntax]),
        ("extif eth0; open tcp 0;", vec![Code::PortRange]),
        ("extif eth0; ssh 0;", vec![Code::PortRange]),
        ("extif \"bad/x\"; open tcp 22;", vec![Code::Interface]),
        ("extif eth0; policy input dorp;", vec![Code::Syntax]),
        (
            "extif eth0; open tcp 22 from 198.51.100.7/24;",
            vec![Code::Address],
        ),
        ("extif eth0 open tcp 22;", vec![Code::Syntax]),
        (
            "extif eth0; open tcp 22; failsafe 10;",
            vec![Code::Failsafe],
        ),
        // No `extif`: the lockout check has no external interface to reason
        // about, so only the missing `extif` is reported.
        ("", vec![Code::Interface]),
        ("icmp accept;", vec![Code::Interface]),
        // A braced block is one bad statement; the `extif` inside it must not
        // also be reported missing.
        ("{ extif eth0; open tcp 22; }", vec![Code::Syntax]),
        // A misspelt `extif` is one mistake, not also a missing `extif`.
        ("exitf eth0; open tcp 22;", vec![Code::Syntax]),
        ("Extif eth0; open tcp 22;", vec![Code::Syntax]),
    ] {
        assert_eq!(codes(text), want, "for {text:?}");
    }
}

/// `ssh -;`: the `;` ends the statement; it is not read as the port.
#[test]
fn a_lone_minus_does_not_swallow_the_semicolon() {
    let text = "open tcp 22; ssh -; extif eth0;";
    let e = Policy::parse(text).unwrap_err();
    let ds = e.diagnostics();
    assert_eq!(ds.len(), 1, "{e}");
    assert_eq!(ds[0].start.to_string(), "1:18", "{e}");
    assert!(!ds[0].message.contains("-;"), "{e}");
}

/// An error at the end of the text points at the end, not at 1:1.
#[test]
fn errors_at_the_end_point_at_the_end() {
    for (text, at_least) in [
        ("extif eth0; open tcp 22", (1, 22)),
        ("extif eth0; open tcp 22 from", (1, 25)),
        ("extif eth0;\nopen tcp 22; dnat 1 -> 192.0.2.1:", (2, 24)),
        ("extif eth0;\nopen tcp 22;\nfailsafe", (3, 1)),
    ] {
        let e = Policy::parse(text).unwrap_err();
        let d = &e.diagnostics()[0];
        assert!(
            (d.start.line, d.start.column) >= at_least,
            "{text:?}: reported at {}, expected at or after {}:{}",
            d.start,
            at_least.0,
            at_least.1
        );
    }
}

/// Lines and columns are 1-based and count characters, not bytes; `end` is
/// just past the last character.
#[test]
fn positions_count_characters() {
    let e = Policy::parse("extif eth0; /* ünï ✓ */ opne tcp 22;").unwrap_err();
    let d = &e.diagnostics()[0];
    assert_eq!(
        (d.code, d.start.to_string(), d.end.to_string()),
        (Code::Syntax, "1:25".to_string(), "1:29".to_string()),
        "{e}"
    );

    let e = Policy::parse("// ünï\nextif eth0;\n  open tcp 22, 443, 443;\n").unwrap_err();
    let d = &e.diagnostics()[0];
    assert_eq!(
        (d.code, d.start.to_string(), d.end.to_string()),
        (Code::Duplicate, "3:21".to_string(), "3:24".to_string()),
        "{e}"
    );
}

/// 100,000 nested brackets overflowed the stack inside syn (an abort the test
/// harness cannot even report): now one `syntax` diagnostic, of every bracket
/// kind, anywhere in the policy.
#[test]
fn deep_nesting_is_an_error_not_an_abort() {
    let n = 100_000;
    for (open, close) in [("(", ")"), ("[", "]"), ("{", "}")] {
        for text in [
            format!("{}{}", open.repeat(n), close.repeat(n)),
            format!(
                "extif eth0; open tcp 22; {}{}",
                open.repeat(n),
                close.repeat(n)
            ),
            format!(
                "extif eth0; open tcp 22 {}{};",
                open.repeat(n),
                close.repeat(n)
            ),
        ] {
            check(&text);
            assert_eq!(codes(&text), vec![Code::Syntax], "{open}{close} x {n}");
        }
    }
    // Unbalanced: the lexer refuses it first, also without recursing.
    check(&"(".repeat(n));
    check(&format!("extif eth0; {}", "[(".repeat(n / 2)));
}

//! Renderers: one [`Model`] in, the texts out. The rules themselves are
//! decided once, by [`crate::plan::lower`]; the printers here only spell them.

use crate::model::Model;
use crate::plan;
pub use printed::{Printed, Texts};

pub mod bash;
pub mod guard;
pub mod iptables;
pub mod kernel;
pub mod nft;
pub mod policy;
pub mod preflight;
pub mod printed;
pub mod shell;

/// Every text rendered from one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The bash script.
    pub bash: String,
    /// IPv4 rules, `iptables-save` format.
    pub ipv4: String,
    /// IPv6 rules, `ip6tables-save` format.
    pub ipv6: String,
    /// The nftables file (`nft -f`), see [`nft`].
    pub nft: String,
    /// The policy in canonical form ([`policy::text`]).
    pub source: String,
    /// The three rulesets with their maps (what `apply()` loads).
    pub texts: Texts,
}

/// Renders every text of `model`.
pub fn render(model: &Model) -> Rendered {
    let plan = plan::lower(model);
    let texts = Texts::of_plan(&plan);
    let ipv4 = texts.ipv4.text().to_string();
    let ipv6 = texts.ipv6.text().to_string();
    let nft = texts.nft.text().to_string();
    let bash = bash::script(model, &ipv4, &ipv6, &nft);
    let source = policy::text(model);
    Rendered {
        bash,
        ipv4,
        ipv6,
        nft,
        source,
        texts,
    }
}

/// A rule comment both backends take: no `"` (dropped: quotes only delimit
/// IPv6 networks and odd interface names in statement text, and a comment
/// reads better without them) or `\` (made `'`), no control characters, at
/// most `max` bytes (cut on a character boundary, ending in `...`).
///
/// Reads only as much of `s` as fits: a 10,000-port statement is long, and
/// every chunk of its rules carries the same comment.
fn comment_text(s: &str, max: usize) -> String {
    const ELLIPSIS: &str = "...";
    let mut out = String::with_capacity(max.min(s.len()));
    for c in s.chars().filter(|&c| c != '"') {
        let c = match c {
            '\\' => '\'',
            c if c.is_control() => ' ',
            c => c,
        };
        if out.len() + c.len_utf8() > max {
            let mut end = max - ELLIPSIS.len();
            while !out.is_char_boundary(end) {
                end -= 1;
            }
            out.truncate(end);
            out.push_str(ELLIPSIS);
            return out;
        }
        out.push(c);
    }
    out
}

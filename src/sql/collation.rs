//! Text comparison as MySQL's collations compare it.
//!
//! Contract: a text column compares, groups, joins and counts DISTINCT under its collation.
//! The default (no `COLLATE`, or any `*_ci` collation) is MariaDB's `utf8mb4_general_ci`:
//! case- and accent-insensitive, and PAD SPACE (trailing spaces do not count), so 'DHL',
//! 'dhl' and 'dhl ' are one group. A `*_bin` or `binary` collation compares bytes. An
//! expression is compared binarily when it reads a binary-collated column; literals take the
//! other side's collation (MySQL's coercibility: a column's collation wins over a literal's).
//!
//! The insensitive comparison is on a key ([`fold`]): the text decomposed (NFD), combining
//! marks dropped, each character lower-cased on its own (simple case mapping), trailing spaces
//! removed (so lower-case ASCII text is its own key, and document ids keep its spelling). Which spelling a merged group shows is arbitrary in MySQL; here it is the smallest
//! spelling by bytes among the group's current rows, so it is deterministic and the same on
//! every worker.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Whether a collation name compares bytes (`*_bin`, `binary`).
pub fn is_binary(collation: Option<&str>) -> bool {
    collation.is_some_and(|c| c == "binary" || c.ends_with("_bin"))
}

/// The comparison key of an owned text, reusing it when it is its own key (lower-case ASCII
/// without trailing spaces, the common case).
pub fn fold_owned(s: String) -> String {
    if !s.ends_with(' ') && is_lower_ascii(&s) {
        s
    } else {
        fold(&s)
    }
}

/// ASCII without upper-case letters: its own key once trailing spaces are cut.
fn is_lower_ascii(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase())
}

/// The comparison key of `s` under a case- and accent-insensitive PAD SPACE collation.
pub fn fold(s: &str) -> String {
    let trimmed = s.trim_end_matches(' ');
    if is_lower_ascii(trimmed) {
        return trimmed.to_string();
    }
    let mut out = String::with_capacity(trimmed.len());
    for c in trimmed.nfd().filter(|c| !is_combining_mark(*c)) {
        let mut low = c.to_lowercase();
        match (low.next(), low.next()) {
            (Some(u), None) => out.push(u),
            _ => out.push(c),
        }
    }
    out
}

/// A text that orders as its collation orders it, then by bytes: its [`fold`] key (NULs
/// escaped), a `\0\0` separator, then the text itself. MIN/MAX of case-insensitive text reduce
/// over these and [`unsort_key`] recovers the spelling.
pub fn sort_key(s: &str) -> String {
    let mut out = fold(s).replace('\0', "\0\u{1}");
    out.push_str("\0\0");
    out.push_str(s);
    out
}

/// The text of a [`sort_key`].
pub fn unsort_key(k: &str) -> &str {
    k.find("\0\0").map_or(k, |i| &k[i + 2..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn general_ci_keys() {
        assert_eq!(fold("dhl"), fold("DHL"));
        assert_eq!(fold("dhl  "), fold("DHL"));
        assert_eq!(fold("café"), fold("CAFE"));
        assert_eq!(fold("Ünïcode"), fold("unicode"));
        assert_ne!(fold(" dhl"), fold("dhl"));
        assert!(is_binary(Some("utf8mb4_bin")));
        assert!(is_binary(Some("binary")));
        assert!(!is_binary(Some("utf8mb4_general_ci")));
        assert!(!is_binary(None));
        assert_eq!(fold_owned("dhl".into()), "dhl");
        assert_eq!(fold_owned("DHL ".into()), "dhl");
        // 'B' > 'a' case-insensitively, though not by bytes; equal keys order by bytes.
        assert!(sort_key("B") > sort_key("a"));
        assert!(sort_key("DHL") < sort_key("dhl"));
        assert!(sort_key("a\0b") > sort_key("a"));
        assert_eq!(unsort_key(&sort_key("Ca\0fé")), "Ca\0fé");
    }
}

//! Spec names (`routing-key`, `declare-ok`) → Rust identifiers.

use proc_macro2::{Ident, Span};

/// Words of a spec name: split at `-`, `_` and spaces (older files use spaces).
fn words(name: &str) -> impl Iterator<Item = &str> {
    name.split(['-', '_', ' ']).filter(|w| !w.is_empty())
}

/// `routing-key` → `routing_key`.
pub(crate) fn snake(name: &str) -> String {
    words(name)
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join("_")
}

/// `declare-ok` → `DeclareOk`.
pub(crate) fn camel(name: &str) -> String {
    words(name)
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => {
                    first.to_ascii_uppercase().to_string() + &chars.as_str().to_ascii_lowercase()
                }
                None => String::new(),
            }
        })
        .collect()
}

/// `frame-end` → `FRAME_END`.
pub(crate) fn shouty(name: &str) -> String {
    snake(name).to_ascii_uppercase()
}

/// Rust's strict and reserved keywords (2021 edition).
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "try", "typeof", "unsized", "virtual", "yield", "gen",
];

/// Whether `s` is an identifier character sequence (ASCII letters, digits and `_`, not
/// starting with a digit).
fn is_ident_text(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A Rust identifier for already-cased text, or `None` if the text cannot be one.
///
/// The spec's field `type` becomes `kind`; other keywords become raw identifiers
/// (`r#loop`), except those that cannot be raw, which get a trailing underscore.
pub(crate) fn ident(text: &str) -> Option<Ident> {
    if !is_ident_text(text) || text == "_" {
        return None;
    }
    if text == "type" {
        return Some(Ident::new("kind", Span::call_site()));
    }
    if KEYWORDS.contains(&text) {
        if matches!(text, "self" | "Self" | "super" | "crate") {
            return Some(Ident::new(&format!("{text}_"), Span::call_site()));
        }
        return Some(Ident::new_raw(text, Span::call_site()));
    }
    Some(Ident::new(text, Span::call_site()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        assert_eq!(snake("routing-key"), "routing_key");
        assert_eq!(snake("version major"), "version_major");
        assert_eq!(camel("declare-ok"), "DeclareOk");
        assert_eq!(camel("recover-async"), "RecoverAsync");
        assert_eq!(camel("basic"), "Basic");
        assert_eq!(shouty("frame-min-size"), "FRAME_MIN_SIZE");
    }

    #[test]
    fn idents() {
        assert_eq!(ident("type").map(|i| i.to_string()), Some("kind".into()));
        assert_eq!(ident("loop").map(|i| i.to_string()), Some("r#loop".into()));
        assert_eq!(ident("self").map(|i| i.to_string()), Some("self_".into()));
        assert_eq!(
            ident("no_ack").map(|i| i.to_string()),
            Some("no_ack".into())
        );
        assert!(ident("1st").is_none());
        assert!(ident("a.b").is_none());
        assert!(ident("").is_none());
    }
}

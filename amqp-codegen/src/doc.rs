//! Turning spec text into rustdoc markdown.

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::Docs;

/// Escapes one paragraph of plain text for rustdoc.
///
/// `[`, `]`, `<`, `>`, `*`, `` ` `` and `\` are backslash-escaped so they show as written
/// (no accidental links, HTML or emphasis); bare `http(s)://` URLs are wrapped in `<…>` so
/// they render as links; a paragraph that would start a heading, list or quote is escaped.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if word.starts_with("http://") || word.starts_with("https://") {
            let end = word
                .trim_end_matches(['.', ',', ';', ':', ')', '"', '\''])
                .len();
            let (url, rest) = word.split_at(end);
            if url.contains(['<', '>', ' ']) {
                escape_into(&mut out, word);
            } else {
                out.push('<');
                out.push_str(url);
                out.push('>');
                escape_into(&mut out, rest);
            }
        } else {
            escape_into(&mut out, word);
        }
    }
    // A paragraph that begins like a block construct would turn into one: escape the marker.
    if out.starts_with(['#', '-', '+', '=', '|', '~']) {
        out.insert(0, '\\');
    } else {
        let digits = out.bytes().take_while(u8::is_ascii_digit).count();
        let after = out.get(digits + 1..digits + 2).unwrap_or(" ");
        if digits > 0
            && out.get(digits..).is_some_and(|r| r.starts_with(['.', ')']))
            && after == " "
        {
            out.insert(digits, '\\');
        }
    }
    out
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        // `_` is left alone: it only emphasises at word edges, and names like `no_ack` read
        // better unescaped.
        if matches!(c, '[' | ']' | '<' | '>' | '*' | '`' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Inline code for a value that is shown verbatim (a regexp, a name): `` `…` `` with enough
/// backticks to hold any inside it.
pub(crate) fn code(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest + 1);
    if longest > 0 {
        format!("{fence} {text} {fence}")
    } else {
        format!("{fence}{text}{fence}")
    }
}

/// Builds the markdown of one doc comment, paragraph by paragraph.
#[derive(Debug, Default)]
pub(crate) struct DocBuilder {
    blocks: Vec<Vec<String>>,
}

impl DocBuilder {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds a paragraph of already-escaped markdown.
    pub(crate) fn markdown(&mut self, text: impl Into<String>) -> &mut Self {
        let text = text.into();
        if !text.is_empty() {
            self.blocks.push(vec![text]);
        }
        self
    }

    /// Adds a paragraph of plain text (escaped here).
    pub(crate) fn text(&mut self, text: &str) -> &mut Self {
        self.markdown(escape(text))
    }

    /// Adds a label (`label="publish a message"`) as a sentence.
    pub(crate) fn label(&mut self, label: Option<&str>) -> &mut Self {
        if let Some(label) = label.map(str::trim).filter(|l| !l.is_empty()) {
            let mut sentence = String::new();
            let mut chars = label.chars();
            if let Some(first) = chars.next() {
                sentence.extend(first.to_uppercase());
                sentence.push_str(chars.as_str());
            }
            if !sentence.ends_with(['.', '!', '?']) {
                sentence.push('.');
            }
            self.text(&sentence);
        }
        self
    }

    /// Adds everything in `docs`: paragraphs, then grammar blocks, then rules.
    pub(crate) fn docs(&mut self, docs: &Docs) -> &mut Self {
        for p in &docs.paragraphs {
            self.text(p);
        }
        for grammar in &docs.grammar {
            let mut block = vec!["Grammar:".to_owned(), String::new(), "```text".to_owned()];
            block.extend(grammar.iter().map(|l| l.replace("```", "'''")));
            block.push("```".to_owned());
            self.blocks.push(block);
        }
        if !docs.rules.is_empty() {
            let mut block = vec!["Rules:".to_owned(), String::new()];
            for rule in &docs.rules {
                let text = rule
                    .paragraphs
                    .iter()
                    .map(|p| escape(p))
                    .collect::<Vec<_>>()
                    .join(" ");
                let line = match (&rule.name, text.is_empty()) {
                    (Some(name), false) => format!("- {}: {text}", code(name)),
                    (Some(name), true) => format!("- {}", code(name)),
                    (None, false) => format!("- {text}"),
                    (None, true) => continue,
                };
                block.push(line);
            }
            if block.len() > 2 {
                self.blocks.push(block);
            }
        }
        self
    }

    /// Whether nothing has been added.
    pub(crate) fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// `#[doc = "…"]` attributes, one per line, blank lines between paragraphs.
    pub(crate) fn attrs(&self) -> TokenStream {
        let mut lines: Vec<String> = Vec::new();
        for (i, block) in self.blocks.iter().enumerate() {
            if i > 0 {
                lines.push(String::new());
            }
            lines.extend(block.iter().cloned());
        }
        let lines = lines
            .into_iter()
            .map(|l| if l.is_empty() { l } else { format!(" {l}") });
        quote! { #( #[doc = #lines] )* }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Rule;

    #[test]
    fn escapes_markdown_and_html() {
        assert_eq!(
            escape("a [b] <c> *d* `e` f\\g h_i"),
            r"a \[b\] \<c\> \*d\* \`e\` f\\g h_i"
        );
    }

    #[test]
    fn wraps_bare_urls() {
        assert_eq!(
            escape("see https://example.com/x_y. Or (http://a.b)."),
            "see <https://example.com/x_y>. Or (http://a.b)."
        );
        assert_eq!(escape("at http://a.b/c)."), "at <http://a.b/c>).");
    }

    #[test]
    fn escapes_block_starts() {
        assert_eq!(escape("# not a heading"), r"\# not a heading");
        assert_eq!(escape("- not a list"), r"\- not a list");
        assert_eq!(escape("12. not a list"), r"12\. not a list");
        assert_eq!(escape("1) not a list"), r"1\) not a list");
        assert_eq!(escape("1.5 is fine"), "1.5 is fine");
        assert_eq!(escape("1."), r"1\.");
        assert_eq!(escape("Version 1. fine"), "Version 1. fine");
    }

    #[test]
    fn code_spans_hold_backticks() {
        assert_eq!(code("^[a-z]*$"), "`^[a-z]*$`");
        assert_eq!(code("a`b"), "`` a`b ``");
    }

    #[test]
    fn builder_lays_out_paragraphs_grammar_and_rules() {
        let docs = Docs {
            paragraphs: vec!["First.".into(), "Second [x].".into()],
            grammar: vec![vec!["a = b".into(), "  / c".into()]],
            rules: vec![Rule {
                name: Some("r1".into()),
                paragraphs: vec!["Must <do>.".into()],
            }],
        };
        let mut b = DocBuilder::new();
        b.label(Some("do things")).docs(&docs);
        let text = b.attrs().to_string();
        for expected in [
            "\" Do things.\"",
            "\" Second \\\\[x\\\\].\"",
            "\" ```text\"",
            "\"   / c\"",
            "\" - `r1`: Must \\\\<do\\\\>.\"",
        ] {
            assert!(text.contains(expected), "{expected} not in {text}");
        }
    }
}

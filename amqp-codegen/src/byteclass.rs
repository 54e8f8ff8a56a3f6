//! Compiles the one regular-expression shape the spec uses, `^[…]*$` (or `^[…]+$`), into a
//! check over bytes. Anything else is left to documentation.

/// A member of a bracket expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Item {
    /// One byte.
    Byte(u8),
    /// An inclusive range of bytes.
    Range(u8, u8),
}

/// `^[…]*$` as data: every byte of the value must (or, negated, must not) be in `items`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ByteClass {
    /// `[^…]`.
    pub(crate) negated: bool,
    /// The members, in the order written.
    pub(crate) items: Vec<Item>,
    /// `+` rather than `*`: the value must not be empty.
    pub(crate) non_empty: bool,
}

/// Compiles `^[…]*$` / `^[…]+$`; `None` for any other expression.
///
/// Inside the brackets: `a-z` ranges, a `-` that cannot form a range (first, last, or right
/// after a range, as in `0-9-_`) is literal, a `]` first is literal, and `\` escapes the next
/// character. Only ASCII is accepted, since the check runs over bytes.
pub(crate) fn compile(re: &str) -> Option<ByteClass> {
    let inner = re.strip_prefix("^[")?;
    let (inner, non_empty) = if let Some(i) = inner.strip_suffix("]*$") {
        (i, false)
    } else {
        (inner.strip_suffix("]+$")?, true)
    };
    let (inner, negated) = match inner.strip_prefix('^') {
        Some(i) => (i, true),
        None => (inner, false),
    };
    if !inner.is_ascii() || inner.is_empty() {
        return None;
    }

    // Read the atoms: (byte, escaped).
    let mut atoms = Vec::new();
    let mut bytes = inner.bytes().enumerate();
    while let Some((pos, b)) = bytes.next() {
        match b {
            b'\\' => {
                let (_, next) = bytes.next()?;
                if next.is_ascii_alphanumeric() {
                    // `\d`, `\w`, `\n` and friends: not handled.
                    return None;
                }
                atoms.push((next, true));
            }
            // An unescaped `]` other than first would have ended the class early.
            b']' if pos != 0 => return None,
            // Nested classes (`[:alpha:]`) are not handled.
            b'[' => return None,
            _ => atoms.push((b, false)),
        }
    }

    let mut items = Vec::new();
    let mut i = 0;
    while let Some(&(b, _)) = atoms.get(i) {
        let dash = atoms.get(i + 1).copied();
        let hi = atoms.get(i + 2).copied();
        match (dash, hi) {
            (Some((b'-', false)), Some((hi, _))) => {
                if hi < b {
                    return None;
                }
                items.push(Item::Range(b, hi));
                i += 3;
            }
            _ => {
                items.push(Item::Byte(b));
                i += 1;
            }
        }
    }
    Some(ByteClass {
        negated,
        items,
        non_empty,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_class_of_the_spec() {
        let class = compile("^[a-zA-Z0-9-_.:]*$").unwrap();
        assert!(!class.negated);
        assert!(!class.non_empty);
        assert_eq!(
            class.items,
            vec![
                Item::Range(b'a', b'z'),
                Item::Range(b'A', b'Z'),
                Item::Range(b'0', b'9'),
                Item::Byte(b'-'),
                Item::Byte(b'_'),
                Item::Byte(b'.'),
                Item::Byte(b':'),
            ]
        );
    }

    #[test]
    fn plus_negation_escapes_and_edge_dashes() {
        let class = compile(r"^[^-a\]\-]+$").unwrap();
        assert!(class.negated);
        assert!(class.non_empty);
        assert_eq!(
            class.items,
            vec![
                Item::Byte(b'-'),
                Item::Byte(b'a'),
                Item::Byte(b']'),
                Item::Byte(b'-')
            ]
        );
        let class = compile("^[]a-]*$").unwrap();
        assert_eq!(
            class.items,
            vec![Item::Byte(b']'), Item::Byte(b'a'), Item::Byte(b'-')]
        );
    }

    #[test]
    fn other_shapes_are_not_compiled() {
        for re in [
            "^[a-z]$",
            "[a-z]*",
            "^a*$",
            "^[z-a]*$",
            r"^[\d]*$",
            "^[[:alpha:]]*$",
            "^[é]*$",
            "^[]*$",
            "^[a]b]*$",
        ] {
            assert_eq!(compile(re), None, "{re}");
        }
    }
}

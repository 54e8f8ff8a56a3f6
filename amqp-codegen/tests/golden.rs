//! The generator's exact output for a small spec, checked in as `fixtures/mini.rs`.
//!
//! After an intended change to the generator, run
//! `UPDATE_GOLDEN=1 cargo test -p amqp-codegen --test golden` and review the diff of mini.rs.

use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A line diff (longest common subsequence) showing changed lines with two lines of context.
fn diff(want: &str, got: &str) -> String {
    let a: Vec<&str> = want.lines().collect();
    let b: Vec<&str> = got.lines().collect();
    // lcs[i][j]: length of the LCS of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i], i + 1));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i], i + 1));
            i += 1;
        } else {
            ops.push(('+', b[j], j + 1));
            j += 1;
        }
    }
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    let mut out = String::new();
    let mut last_shown: Option<usize> = None;
    for (k, &(op, line, n)) in ops.iter().enumerate() {
        let near = changed.iter().any(|&c| c.abs_diff(k) <= 2);
        if !near {
            continue;
        }
        if last_shown.is_some_and(|l| l + 1 != k) || (last_shown.is_none() && k > 0) {
            out.push_str("...\n");
        }
        out.push_str(&format!("{op}{n:5} {line}\n"));
        last_shown = Some(k);
    }
    out
}

#[test]
fn mini_spec_generates_the_checked_in_source() {
    let xml = std::fs::read_to_string(fixtures().join("mini.xml")).unwrap();
    let spec = amqp_codegen::parse(&xml).unwrap();
    let got = amqp_codegen::generate(&spec).unwrap();
    let golden = fixtures().join("mini.rs");
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(&golden, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&golden)
        .unwrap_or_default()
        .replace("\r\n", "\n");
    assert!(
        got == want,
        "generated source differs from {} (- checked in, + generated):\n{}\n\
         If the change is intended, rerun with UPDATE_GOLDEN=1 and review the diff.",
        golden.display(),
        diff(&want, &got)
    );
}

#[test]
fn generation_is_deterministic() {
    let xml = std::fs::read_to_string(fixtures().join("mini.xml")).unwrap();
    let first = amqp_codegen::generate(&amqp_codegen::parse(&xml).unwrap()).unwrap();
    for _ in 0..3 {
        let again = amqp_codegen::generate(&amqp_codegen::parse(&xml).unwrap()).unwrap();
        assert!(first == again, "{}", diff(&first, &again));
    }
}

#[test]
fn the_diff_shows_changed_lines_with_context() {
    let d = diff("a\nb\nc\nd\ne\nf\ng\n", "a\nb\nc\nD\ne\nf\ng\n");
    assert_eq!(
        d,
        "...\n     2 b\n     3 c\n-    4 d\n+    4 D\n     5 e\n     6 f\n"
    );
}

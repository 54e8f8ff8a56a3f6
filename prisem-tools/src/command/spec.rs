//! Service files: what program to run and how each appdata field may reach its argv.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;

/// A parsed and checked service file.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// The queue base (`<queue_base>_0.5.5`).
    pub queue_base: String,
    /// What the service does, for the usage text.
    pub description: String,
    /// The program, an absolute path.
    pub program: PathBuf,
    /// The argv template after the program name.
    pub args: Vec<Arg>,
    /// The declared fields, by name.
    pub fields: BTreeMap<String, Field>,
    /// Extra environment variables (literals) besides `PATH` and `LANG`.
    pub env: BTreeMap<String, String>,
    /// Limits.
    pub limits: Limits,
}

/// One element (or none, or two) of the argv template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// A literal argument.
    Literal(String),
    /// A field's value: `prefix` + value as one argument, preceded by `option` as its own
    /// argument when given. A flag field gives `option` (or `prefix`) alone when true. An
    /// absent optional field gives nothing.
    Field {
        /// The field.
        name: String,
        /// An argument of its own before the value (`-k`).
        option: Option<String>,
        /// Text glued before the value in the same argument (`--key=`).
        prefix: String,
    },
}

/// A declared field.
#[derive(Debug, Clone)]
pub struct Field {
    /// Its type and checks.
    pub kind: FieldKind,
    /// Whether a request must give it.
    pub required: bool,
    /// The value used when the request does not give it.
    pub default: Option<String>,
}

/// The type of a declared field.
#[derive(Debug, Clone)]
pub enum FieldKind {
    /// One of a fixed set of strings.
    Choice(Vec<String>),
    /// An integer within bounds (a JSON number or a numeric string).
    Integer {
        /// Smallest accepted.
        min: i64,
        /// Largest accepted.
        max: i64,
    },
    /// A PRISEM flag (`"true"` is true, anything else false).
    Flag,
    /// A string matching a regular expression as a whole, of at most `max_len` octets.
    Pattern {
        /// The expression, anchored.
        regex: Regex,
        /// The longest value accepted.
        max_len: usize,
        /// Whether a value may start with `-` (refused by default, so no value can pass for
        /// an option).
        allow_leading_dash: bool,
    },
    /// base64 contents written to a file in the request's working directory; its path goes in
    /// argv.
    File,
    /// base64 contents fed to the program's standard input.
    Stdin,
}

impl FieldKind {
    /// A short description for the usage text.
    pub fn describe(&self) -> String {
        match self {
            Self::Choice(c) => format!("one of {}", c.join(", ")),
            Self::Integer { min, max } => format!("integer {min}..={max}"),
            Self::Flag => "flag (\"true\" or \"false\")".into(),
            Self::Pattern { regex, max_len, .. } => {
                let pat = regex.as_str();
                let pat = pat
                    .strip_prefix("^(?:")
                    .and_then(|p| p.strip_suffix(")$"))
                    .unwrap_or(pat);
                format!("string matching {pat}, at most {max_len} bytes")
            }
            Self::File => "file (base64)".into(),
            Self::Stdin => "standard input (base64)".into(),
        }
    }
}

/// Limits on one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall time before the program (its whole process group) is killed.
    pub timeout: Duration,
    /// Most octets of standard output kept; more stops the program.
    pub max_stdout: usize,
    /// Most octets of standard error kept; more stops the program.
    pub max_stderr: usize,
    /// Largest decoded file or stdin field.
    pub max_input: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            max_stdout: 16 << 20,
            max_stderr: 1 << 20,
            max_input: 64 << 20,
        }
    }
}

// ---- the file format ------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    queue_base: String,
    #[serde(default)]
    description: String,
    program: PathBuf,
    #[serde(default)]
    args: Vec<RawArg>,
    #[serde(default)]
    fields: BTreeMap<String, RawField>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    limits: RawLimits,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawArg {
    Literal(String),
    Field(RawFieldArg),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFieldArg {
    field: String,
    #[serde(default)]
    option: Option<String>,
    #[serde(default)]
    prefix: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    choices: Vec<String>,
    #[serde(default)]
    min: Option<i64>,
    #[serde(default)]
    max: Option<i64>,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    max_len: Option<usize>,
    #[serde(default)]
    allow_leading_dash: bool,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    default: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    timeout_seconds: Option<f64>,
    max_stdout: Option<usize>,
    max_stderr: Option<usize>,
    max_input: Option<usize>,
}

/// Why a service file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError(pub String);

impl core::fmt::Display for SpecError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SpecError {}

fn err(msg: impl Into<String>) -> SpecError {
    SpecError(msg.into())
}

impl ServiceSpec {
    /// Reads a service file: TOML for `.toml`, YAML otherwise.
    pub fn load(path: &Path) -> Result<Self, SpecError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
        let toml = path.extension().is_some_and(|e| e == "toml");
        Self::parse(&text, toml).map_err(|e| err(format!("{}: {e}", path.display())))
    }

    /// Parses a service file's text (TOML when `toml`, else YAML) and checks it.
    pub fn parse(text: &str, toml: bool) -> Result<Self, SpecError> {
        let raw: RawSpec = if toml {
            ::toml::from_str(text).map_err(|e| err(e.to_string()))?
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| err(e.to_string()))?
        };
        Self::check(raw)
    }

    fn check(raw: RawSpec) -> Result<Self, SpecError> {
        if raw.queue_base.is_empty()
            || !raw
                .queue_base
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        {
            return Err(err(format!(
                "queue_base {:?}: use letters, digits and - _ . :",
                raw.queue_base
            )));
        }
        if !raw.program.is_absolute() {
            return Err(err(format!(
                "program {:?} must be an absolute path",
                raw.program
            )));
        }
        let meta = std::fs::metadata(&raw.program)
            .map_err(|e| err(format!("program {}: {e}", raw.program.display())))?;
        {
            use std::os::unix::fs::PermissionsExt;
            if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
                return Err(err(format!(
                    "program {} is not an executable file",
                    raw.program.display()
                )));
            }
        }
        let mut fields = BTreeMap::new();
        for (name, f) in raw.fields {
            let field = check_field(&name, f)?;
            fields.insert(name, field);
        }
        let stdin_fields: Vec<&String> = fields
            .iter()
            .filter(|(_, f)| matches!(f.kind, FieldKind::Stdin))
            .map(|(n, _)| n)
            .collect();
        if stdin_fields.len() > 1 {
            return Err(err(format!(
                "fields {stdin_fields:?}: at most one field may be the program's standard input"
            )));
        }
        let mut args = Vec::new();
        for a in raw.args {
            args.push(match a {
                RawArg::Literal(s) => {
                    if s.contains('\0') {
                        return Err(err(format!("argument {s:?} contains NUL")));
                    }
                    Arg::Literal(s)
                }
                RawArg::Field(f) => {
                    let Some(field) = fields.get(&f.field) else {
                        return Err(err(format!(
                            "args: field {:?} is not declared under fields",
                            f.field
                        )));
                    };
                    if matches!(field.kind, FieldKind::Stdin) {
                        return Err(err(format!(
                            "args: field {:?} is the standard input and cannot be an argument",
                            f.field
                        )));
                    }
                    if matches!(field.kind, FieldKind::Flag)
                        && f.option.is_none()
                        && f.prefix.is_empty()
                    {
                        return Err(err(format!(
                            "args: flag {:?} needs an option (the argument it adds when true)",
                            f.field
                        )));
                    }
                    Arg::Field {
                        name: f.field,
                        option: f.option,
                        prefix: f.prefix,
                    }
                }
            });
        }
        for (k, v) in &raw.env {
            if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
                return Err(err(format!("env {k:?}: not a valid variable")));
            }
        }
        let d = Limits::default();
        let timeout = match raw.limits.timeout_seconds {
            None => d.timeout,
            Some(t) if t.is_finite() && t > 0.0 && t <= 86_400.0 => Duration::from_secs_f64(t),
            Some(t) => return Err(err(format!("limits.timeout_seconds {t}: 0 < t <= 86400"))),
        };
        Ok(Self {
            queue_base: raw.queue_base,
            description: raw.description,
            program: raw.program,
            args,
            fields,
            env: raw.env,
            limits: Limits {
                timeout,
                max_stdout: raw.limits.max_stdout.unwrap_or(d.max_stdout),
                max_stderr: raw.limits.max_stderr.unwrap_or(d.max_stderr),
                max_input: raw.limits.max_input.unwrap_or(d.max_input),
            },
        })
    }
}

fn check_field(name: &str, f: RawField) -> Result<Field, SpecError> {
    let bad = |m: String| err(format!("field {name:?}: {m}"));
    if name.is_empty() || name.contains('\0') {
        return Err(bad("not a valid name".into()));
    }
    let kind = match f.kind.as_str() {
        "choice" | "enum" => {
            if f.choices.is_empty() {
                return Err(bad("a choice needs `choices`".into()));
            }
            if let Some(c) = f.choices.iter().find(|c| c.contains('\0')) {
                return Err(bad(format!("choice {c:?} contains NUL")));
            }
            FieldKind::Choice(f.choices)
        }
        "integer" => {
            let (min, max) = (f.min.unwrap_or(i64::MIN), f.max.unwrap_or(i64::MAX));
            if min > max {
                return Err(bad(format!("min {min} > max {max}")));
            }
            FieldKind::Integer { min, max }
        }
        "flag" => FieldKind::Flag,
        "pattern" | "string" => {
            let Some(p) = f.pattern else {
                return Err(bad(
                    "a string needs a `pattern` (a regular expression)".into()
                ));
            };
            let regex =
                Regex::new(&format!("^(?:{p})$")).map_err(|e| bad(format!("bad pattern: {e}")))?;
            FieldKind::Pattern {
                regex,
                max_len: f.max_len.unwrap_or(1024),
                allow_leading_dash: f.allow_leading_dash,
            }
        }
        "file" => FieldKind::File,
        "stdin" => FieldKind::Stdin,
        other => {
            return Err(bad(format!(
                "unknown type {other:?} (choice, integer, flag, pattern, file, stdin)"
            )))
        }
    };
    let default = match f.default {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
        Some(_) => return Err(bad("default must be a string, number or boolean".into())),
    };
    if f.required && default.is_some() {
        return Err(bad("a required field cannot have a default".into()));
    }
    Ok(Field {
        kind,
        required: f.required,
        default,
    })
}

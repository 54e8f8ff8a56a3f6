//! `rpcserver`: a PRISEM service that runs a program described by a *service file*, with every
//! request field checked against a declared type before it may reach the program's argv.
//!
//! The originals fronted each program with a hand-written server that built a shell command
//! line; here nothing from a request ever reaches a shell. The program runs with a fixed argv
//! (each value one element, after its check), a scrubbed environment (`PATH=/usr/bin:/bin`,
//! `LANG=C.UTF-8` and the file's own literals), a fresh working directory of its own (removed
//! afterwards), a wall-time limit that kills its whole process group, and limits on what it
//! may print. The reply carries its exit status, standard output and standard error.
//!
//! # The service file (YAML, or TOML for a `.toml` file)
//!
//! ```yaml
//! queue_base: sort                 # served on sort_0.5.5
//! description: sorts the lines of a file
//! program: /usr/bin/sort           # absolute path, checked at load time
//! args:                            # the argv after the program name
//!   - field: reverse               # a flag: adds its option when "true"
//!     option: -r
//!   - field: key                   # "-k" then the value, two elements (nothing when absent)
//!     option: -k
//!   - field: separator             # "--field-separator=" + value, one element
//!     prefix: --field-separator=
//!   - "--"                         # a literal
//!   - field: data                  # the path of a temporary file holding the decoded data
//! fields:
//!   data:      { type: file, required: true }
//!   reverse:   { type: flag }
//!   key:       { type: integer, min: 1, max: 64 }
//!   separator: { type: pattern, pattern: "[,;:|]", max_len: 1 }
//!   order:     { type: choice, choices: [asc, desc], default: asc }
//! env: { LC_ALL: C }               # literals only
//! limits: { timeout_seconds: 30, max_stdout: 1048576, max_stderr: 65536, max_input: 16777216 }
//! ```
//!
//! Field types: `choice` (`choices`), `integer` (`min`, `max`; a number or a numeric string),
//! `flag` (`"true"` is true), `pattern` (a regular expression the whole value must match, at most
//! `max_len` bytes (1024), never starting with `-` unless `allow_leading_dash: true`), `file`
//! (base64 → a file in the working directory, its path in argv) and `stdin` (base64 → the
//! program's standard input; at most one). Each may be `required` or have a `default` (checked
//! like a request's value).
//!
//! # Requests
//!
//! Every appdata field must be declared: any other is an error reply naming it, except `usage`
//! (when not declared), which answers with a description of the fields. A value that fails its
//! check is an error reply naming the field and why; no program runs. NUL bytes are refused in
//! every string.
//!
//! | outcome | retcode | stderr |
//! |---|---|---|
//! | the program ran | its exit status (128 + signal if killed by one) | its standard error |
//! | a field is undeclared or fails its check | 1 | `Error: appdata field 'F': …` |
//! | it ran past `timeout_seconds` | 124 | `Error: … stopped after N s` (after its own stderr) |
//! | it printed more than a limit | 1 | `Error: … more than N bytes on standard output …` |
//! | it could not be started | 127 | `Error: cannot run …` |

mod run;
mod spec;

pub use run::CommandService;
pub use spec::{Arg, Field, FieldKind, Limits, ServiceSpec, SpecError};

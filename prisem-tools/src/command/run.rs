//! Checking a request against a [`ServiceSpec`] and running the program.

use std::collections::HashMap;
use std::ffi::OsString;
use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::spec::{Arg, FieldKind, ServiceSpec};
use crate::rpc::{AppData, AppDataError, Reply, Service, ServiceError};

/// A checked field value.
#[derive(Debug)]
enum Checked {
    Text(String),
    Flag(bool),
    Bytes(Vec<u8>),
}

/// Runs the program of a service file for each request.
#[derive(Debug)]
pub struct CommandService {
    spec: ServiceSpec,
}

impl CommandService {
    /// A service for `spec`; its defaults are checked like request values.
    pub fn new(spec: ServiceSpec) -> Result<Self, super::SpecError> {
        let service = Self { spec };
        for (name, field) in &service.spec.fields {
            if let Some(d) = &field.default {
                service
                    .check_value(name, &Value::String(d.clone()))
                    .map_err(|e| super::SpecError(format!("default of {e}")))?;
            }
        }
        Ok(service)
    }

    /// The service file it runs.
    pub fn spec(&self) -> &ServiceSpec {
        &self.spec
    }

    /// The usage text: the program and each field with its type.
    pub fn usage(&self) -> String {
        let mut out = format!(
            "{} service ({}): {}\n\nappdata fields:\n",
            self.spec.queue_base,
            self.spec.program.display(),
            if self.spec.description.is_empty() {
                "runs a program"
            } else {
                &self.spec.description
            }
        );
        for (name, f) in &self.spec.fields {
            out.push_str(&format!("  {name:<12} {}", f.kind.describe()));
            if f.required {
                out.push_str(", required");
            }
            if let Some(d) = &f.default {
                out.push_str(&format!(", default {d:?}"));
            }
            out.push('\n');
        }
        out
    }

    fn check_value(&self, name: &str, raw: &Value) -> Result<Checked, AppDataError> {
        let Some(field) = self.spec.fields.get(name) else {
            return Err(AppDataError::new(name, "is not a field of this service"));
        };
        let single = AppData::new().with(name, raw.clone());
        let text = || -> Result<String, AppDataError> {
            let s = match raw {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    return Err(AppDataError::new(
                        name,
                        format!("expected a string, got {}", crate::rpc::type_name_of(other)),
                    ))
                }
            };
            if s.contains('\0') {
                return Err(AppDataError::new(name, "contains a NUL byte"));
            }
            Ok(s)
        };
        Ok(match &field.kind {
            FieldKind::Flag => Checked::Flag(single.flag(name)),
            FieldKind::Choice(choices) => {
                let s = text()?;
                if !choices.contains(&s) {
                    return Err(AppDataError::new(
                        name,
                        format!("{s:?} is not one of {}", choices.join(", ")),
                    ));
                }
                Checked::Text(s)
            }
            FieldKind::Integer { min, max } => {
                let n = single
                    .integer(name)?
                    .ok_or_else(|| AppDataError::new(name, "is empty"))?;
                if n < *min || n > *max {
                    return Err(AppDataError::new(
                        name,
                        format!("{n} is outside {min}..={max}"),
                    ));
                }
                Checked::Text(n.to_string())
            }
            FieldKind::Pattern {
                regex,
                max_len,
                allow_leading_dash,
            } => {
                let s = text()?;
                if s.len() > *max_len {
                    return Err(AppDataError::new(
                        name,
                        format!("{} bytes is longer than {max_len}", s.len()),
                    ));
                }
                if s.starts_with('-') && !allow_leading_dash {
                    return Err(AppDataError::new(
                        name,
                        "must not start with '-' (it would read as an option)",
                    ));
                }
                if !regex.is_match(&s) {
                    return Err(AppDataError::new(
                        name,
                        format!("{s:?} does not match the declared pattern"),
                    ));
                }
                Checked::Text(s)
            }
            FieldKind::File | FieldKind::Stdin => {
                let bytes = single.file(name)?;
                if bytes.len() > self.spec.limits.max_input {
                    return Err(AppDataError::new(
                        name,
                        format!(
                            "{} bytes is more than the limit of {}",
                            bytes.len(),
                            self.spec.limits.max_input
                        ),
                    ));
                }
                Checked::Bytes(bytes)
            }
        })
    }

    /// Checks every field of a request (and fills in defaults).
    fn check(&self, appdata: &AppData) -> Result<HashMap<String, Checked>, AppDataError> {
        let mut values = HashMap::new();
        for (name, raw) in &appdata.0 {
            if raw.is_null() {
                continue;
            }
            values.insert(name.clone(), self.check_value(name, raw)?);
        }
        for (name, field) in &self.spec.fields {
            if values.contains_key(name) {
                continue;
            }
            if field.required {
                return Err(AppDataError::new(name, "is required"));
            }
            if let Some(d) = &field.default {
                values.insert(
                    name.clone(),
                    self.check_value(name, &Value::String(d.clone()))?,
                );
            }
        }
        Ok(values)
    }

    /// Runs the program for a checked request.
    async fn run(&self, mut values: HashMap<String, Checked>) -> Result<Reply, ServiceError> {
        let dir = tempfile::Builder::new()
            .prefix("rpcserver-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()
            .map_err(|e| {
                ServiceError::with_retcode(127, format!("Error: no working directory: {e}"))
            })?;
        let mut argv: Vec<OsString> = Vec::new();
        let mut stdin_data = None;
        for (name, field) in &self.spec.fields {
            if matches!(field.kind, FieldKind::Stdin) {
                if let Some(Checked::Bytes(b)) = values.remove(name) {
                    stdin_data = Some(b);
                }
            }
        }
        for arg in &self.spec.args {
            match arg {
                Arg::Literal(s) => argv.push(s.into()),
                Arg::Field {
                    name,
                    option,
                    prefix,
                } => match values.get(name) {
                    None | Some(Checked::Flag(false)) => {}
                    Some(Checked::Flag(true)) => {
                        if let Some(o) = option {
                            argv.push(o.into());
                        }
                        if !prefix.is_empty() {
                            argv.push(prefix.into());
                        }
                    }
                    Some(Checked::Text(t)) => {
                        if let Some(o) = option {
                            argv.push(o.into());
                        }
                        argv.push(format!("{prefix}{t}").into());
                    }
                    Some(Checked::Bytes(b)) => {
                        let path = dir.path().join(format!("{name}.in"));
                        std::fs::write(&path, b).map_err(|e| {
                            ServiceError::with_retcode(
                                127,
                                format!("Error: cannot write {name}: {e}"),
                            )
                        })?;
                        if let Some(o) = option {
                            argv.push(o.into());
                        }
                        let mut a = OsString::from(prefix);
                        a.push(path.as_os_str());
                        argv.push(a);
                    }
                },
            }
        }
        let mut cmd = Command::new(&self.spec.program);
        cmd.args(&argv)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .envs(&self.spec.env)
            .current_dir(dir.path())
            .stdin(if stdin_data.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let program = self.spec.program.display().to_string();
        let mut child = cmd.spawn().map_err(|e| {
            ServiceError::with_retcode(127, format!("Error: cannot run {program}: {e}"))
        })?;
        // Kills the whole group when the run ends however it ends, including when the server
        // gives up on the request and drops this future.
        let group = ProcessGroup(child.id().and_then(|p| i32::try_from(p).ok()));
        let kill_group = || group.kill();
        if let (Some(data), Some(mut input)) = (stdin_data, child.stdin.take()) {
            // A program that exits without reading its input is not an error.
            tokio::spawn(async move {
                let _ = input.write_all(&data).await;
            });
        }
        let limits = self.spec.limits;
        let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
            kill_group();
            return Err(ServiceError::with_retcode(127, "Error: no output pipes"));
        };
        let work = async {
            let (stdout, stderr) = tokio::join!(
                read_limited(out, limits.max_stdout, &kill_group),
                read_limited(err, limits.max_stderr, &kill_group)
            );
            (stdout, stderr, child.wait().await)
        };
        let outcome = tokio::time::timeout(limits.timeout, work).await;
        kill_group(); // whatever it left running in its group goes with it
        let (stdout, stderr, status) = match outcome {
            Ok(o) => o,
            Err(_) => {
                return Ok(Reply::error(
                    124,
                    format!(
                        "Error: {program} ran longer than {} s and was stopped",
                        limits.timeout.as_secs_f64()
                    ),
                ))
            }
        };
        let (stdout, out_over) = stdout;
        let (mut stderr, err_over) = stderr;
        if out_over || err_over {
            let (which, limit) = if out_over {
                ("standard output", limits.max_stdout)
            } else {
                ("standard error", limits.max_stderr)
            };
            stderr.extend_from_slice(
                format!(
                    "Error: {program} wrote more than {limit} bytes on {which} and was stopped\n"
                )
                .as_bytes(),
            );
            return Ok(Reply {
                retcode: 1,
                stdout,
                stderr,
            });
        }
        let retcode = match status {
            Ok(s) => s.code().unwrap_or_else(|| {
                use std::os::unix::process::ExitStatusExt;
                128 + s.signal().unwrap_or(0)
            }),
            Err(e) => {
                return Err(ServiceError::with_retcode(
                    127,
                    format!("Error: waiting for {program}: {e}"),
                ))
            }
        };
        Ok(Reply {
            retcode,
            stdout,
            stderr,
        })
    }
}

/// A program's process group (its pid, as it was started with `process_group(0)`), killed
/// with SIGKILL on [`kill`](Self::kill) and on drop.
struct ProcessGroup(Option<i32>);

impl ProcessGroup {
    fn kill(&self) {
        if let Some(pid) = self.0 {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads up to `limit` octets; when there is more, stops the program (`kill`) and says so.
async fn read_limited(
    mut r: impl AsyncRead + Unpin,
    limit: usize,
    kill: &(dyn Fn() + Sync),
) -> (Vec<u8>, bool) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return (buf, false),
            Ok(n) => {
                let room = limit.saturating_sub(buf.len());
                let take = n.min(room);
                buf.extend_from_slice(chunk.get(..take).unwrap_or_default());
                if n > room {
                    kill();
                    return (buf, true);
                }
            }
        }
    }
}

impl Service for CommandService {
    async fn handle(&self, appdata: AppData) -> Result<Reply, ServiceError> {
        if appdata.flag("usage") && !self.spec.fields.contains_key("usage") {
            return Ok(Reply::ok(self.usage()));
        }
        let values = self.check(&appdata)?;
        self.run(values).await
    }
}

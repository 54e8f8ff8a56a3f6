//! Progress bars for long runs on a terminal: drawn on standard error only when it is a
//! terminal and `--quiet` was not given, so pipes, files and the journal never see them.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether a progress bar would be drawn.
pub(crate) fn wanted(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

fn new(quiet: bool, len: Option<u64>) -> ProgressBar {
    if !wanted(quiet) {
        return ProgressBar::hidden();
    }
    ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr_with_hz(8))
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// A bar counting bytes read from standard input (`total`: its size when it is a regular file),
/// with the number of messages sent as its message.
pub(crate) fn bytes(quiet: bool, total: Option<u64>) -> ProgressBar {
    let bar = new(quiet, total);
    bar.set_style(match total {
        Some(_) => style("{bar:30} {bytes}/{total_bytes} {msg} ({bytes_per_sec}, {eta} left)"),
        None => style("{spinner} {bytes} {msg} ({bytes_per_sec})"),
    });
    bar
}

/// A bar counting messages (`total`: the number expected, when known); `verb` says what is
/// done to them ("consumed").
pub(crate) fn messages(quiet: bool, total: Option<u64>, verb: &str) -> ProgressBar {
    let bar = new(quiet, total);
    bar.set_style(match total {
        Some(_) => style(&format!(
            "{{bar:30}} {{pos}}/{{len}} messages {verb} ({{per_sec}}, {{eta}} left)"
        )),
        None => style(&format!(
            "{{spinner}} {{pos}} messages {verb} ({{per_sec}})"
        )),
    });
    bar
}

/// The size of standard input when it is a regular file (redirected from one).
pub(crate) fn stdin_size() -> Option<u64> {
    use std::os::fd::AsFd;
    let fd = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    meta.is_file().then_some(meta.len())
}

/// A spinner with the time spent while `queue` is sent a request and answers it.
pub(crate) fn waiting(quiet: bool, queue: &str) -> ProgressBar {
    let bar = new(quiet, None);
    bar.set_style(style("{spinner} {msg} ({elapsed})"));
    bar.set_message(format!("calling {queue}, waiting for the reply"));
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}

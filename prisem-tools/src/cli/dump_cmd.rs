//! `amqp dump`: reads the file (or standard input) and prints the frames.

use std::fs::File;
use std::io::{self, BufWriter, Read};

use super::DumpArgs;
use crate::dump::{dump, DumpOptions};
use crate::exit::{Failure, OK, USAGE};

pub(super) fn run(args: &DumpArgs) -> Result<u8, Failure> {
    let opts = DumpOptions {
        frame_max: args.frame_max,
        show_body: args.show_body,
        show_secrets: args.show_secrets,
    };
    let input: Box<dyn Read> = match args.file.as_deref() {
        None => Box::new(io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(io::stdin().lock()),
        Some(p) => Box::new(
            File::open(p)
                .map_err(|e| Failure::usage(format!("cannot open {}: {e}", p.display())))?,
        ),
    };
    let out = BufWriter::new(io::stdout().lock());
    match dump(input, out, opts) {
        Ok(()) => Ok(OK),
        // The error line is already on standard output; say it on standard error as well.
        Err(Ok(e)) => Err(Failure::new(USAGE, format!("malformed input: {e}"))),
        Err(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(OK),
        Err(Err(e)) => Err(Failure::usage(format!("I/O error: {e}"))),
    }
}

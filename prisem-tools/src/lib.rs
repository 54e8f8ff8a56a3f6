//! The `amqp` command-line tool and the PRISEM services.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

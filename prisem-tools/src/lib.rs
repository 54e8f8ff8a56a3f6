//! The `amqp` command-line tool and the PRISEM services, on top of `amqp-client`.
//!
//! The binaries are thin: `src/bin/amqp.rs` parses the command line into [`cli::Cli`] and
//! calls [`cli::run`]. Everything that can be tested without a broker lives in modules of its
//! own:
//!
//! - [`headers`]: `-H key[:type]=value` and `--arg` parsing into field-table values.
//! - [`json`]: the stable JSON forms of field values, properties and deliveries.
//! - [`dump`]: the frame dumper behind `amqp dump`.
//! - [`exit`]: exit statuses and the error type that carries one.
//! - [`addr`]: the address engine — scanner, network map, length-preserving labels, pseudonyms.
//! - [`services`]: the PRISEM services ([`services::anon`], [`services::crosscor`]).
//! - [`cumdist`]: the cumulative distribution of crosscor's per-site statistics.
//! - [`cli`]: the clap definitions, connection options ([`cli::conn`]) and the subcommands.
//!
//! ```
//! use clap::Parser;
//! use prisem_tools::cli::{Cli, Command};
//!
//! let cli = Cli::try_parse_from(["amqp", "get", "-q", "jobs"]).unwrap();
//! assert!(matches!(cli.command, Command::Get(_)));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod addr;
pub mod backbone;
pub mod blockd;
pub mod cli;
pub mod command;
pub mod config;
pub mod cumdist;
pub mod daemon;
pub mod dashboard;
pub mod dimslog;
pub mod dump;
pub mod exit;
pub mod firewall;
pub mod flows;
pub mod headers;
pub mod identity;
pub mod intel;
pub mod json;
pub mod logmon;
pub mod metrics;
pub mod reload;
pub mod rpc;
pub mod services;
pub mod sshwatch;
pub mod syslog;

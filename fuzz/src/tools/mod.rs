//! The properties the PRISEM tools' fuzz targets check: one `check_*` function per target, each
//! taking arbitrary bytes and panicking when a parser breaks one of its promises.

mod addr;
mod backbone;
mod dimslog;
mod feeds;
mod rpc;
mod sshd;
mod syslog;

pub mod seeds;

pub use addr::{check_addr_scan, check_netmap};
pub use backbone::check_backbone_api;
pub use dimslog::check_dimslog_line;
pub use feeds::{check_flow_records, check_intel_feed};
pub use rpc::check_rpc_envelope;
pub use sshd::check_sshd_line;
pub use syslog::{check_syslog_framing, check_syslog_parse, check_syslog_spool, syslog_max_for};

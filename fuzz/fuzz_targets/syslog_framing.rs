//! `syslog_framing`: see [`amqp_wire_fuzz::tools::check_syslog_framing`] for what it checks.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| amqp_wire_fuzz::tools::check_syslog_framing(data));

//! `dimslog_line`: see [`amqp_wire_fuzz::tools::check_dimslog_line`] for what it checks.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| amqp_wire_fuzz::tools::check_dimslog_line(data));

//! `netmap`: see [`amqp_wire_fuzz::tools::check_netmap`] for what it checks.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| amqp_wire_fuzz::tools::check_netmap(data));

//! `frame_decoder`: see [`amqp_wire_fuzz::check_frame_stream`] for what it checks.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| amqp_wire_fuzz::check_frame_stream(data));

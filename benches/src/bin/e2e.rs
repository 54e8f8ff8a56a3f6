//! End-to-end benchmark: our AMQP client side by side with lapin and amqprs against one broker.
//!
//! ```text
//! cargo run --release -p benches --bin e2e -- --count 100000 --size 100 --rounds 3
//! ```
//!
//! Each (scenario, round, client) runs in a fresh child process (this binary re-executed with a
//! hidden `--worker` flag), so CPU time and peak RSS belong to one client doing one thing. The
//! parent declares and deletes the queues, pre-fills them and runs the RPC echo server with one
//! fixed library, so the server side is the same for every client measured.
//!
//! `--clients …,ceiling` adds a reference row: a bare socket speaking through the codec with
//! pre-encoded publishes, whose msgs/s is what the broker itself sustains; every other client
//! is shown in % of it. `--broker-pid` (or `BENCH_BROKER_PID`) adds the broker's CPU per
//! message and its use of a core over each measured interval, next to how idle the whole
//! machine was, so the table tells a client-bound run from a broker-bound one. See `--help`.
#![forbid(unsafe_code)]

#[path = "../e2e/mod.rs"]
mod e2e;

fn main() -> std::process::ExitCode {
    e2e::main()
}

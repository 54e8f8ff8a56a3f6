//! Benchmarks for the workspace.
#![forbid(unsafe_code)]

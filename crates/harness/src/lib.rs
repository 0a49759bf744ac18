//! Spikard's benchmark driver as a library: the binary `harness` is its command line, and
//! the tests use the pieces directly.

pub mod aggregate;
pub mod cli;
pub mod database;
pub mod metrics;
pub mod oha;
pub mod report;
pub mod runner;
pub mod scale;
pub mod servers;
pub mod stream;
pub mod validate;

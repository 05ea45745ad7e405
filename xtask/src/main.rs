//! Project tasks: `cargo xtask simulate`, `cargo xtask soak`, `cargo xtask calibrate`,
//! `cargo xtask bench-fleet`.

mod bench_fleet;
mod calibrate;
mod simulate;
mod soak;
mod study;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "xtask", about = "opspool project tasks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The strategy study: scenarios × strategies × seeds in the simulator (the
    /// real engine against a modeled S3), scored against an oracle of fixed limits.
    Simulate(simulate::Args),
    /// Push many ops through the simulator with random faults and check that
    /// every one is accounted for exactly once.
    Soak(soak::Args),
    /// Run the calibration experiments E1–E5 and print model vs published figures.
    Calibrate(calibrate::Args),
    /// Time the built-in fleet scenario over one virtual hour (median of 3 runs).
    BenchFleet(bench_fleet::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Simulate(a) => simulate::run(a),
        Cmd::Soak(a) => soak::run(a),
        Cmd::Calibrate(a) => calibrate::run(a),
        Cmd::BenchFleet(a) => bench_fleet::run(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

//! Developer tasks: `cargo xtask <task>`.

mod bench;
mod stress;

use clap::Parser;
use std::process::{Command, ExitCode};

fn run(program: &str, args: &[&str]) -> bool {
    eprintln!("$ {program} {}", args.join(" "));
    Command::new(program)
        .args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        // What every submission runs before it lands.
        "check" => {
            let ok = run("cargo", &["fmt", "--all", "--", "--check"])
                && run(
                    "cargo",
                    &[
                        "clippy",
                        "--workspace",
                        "--all-targets",
                        "--",
                        "-D",
                        "warnings",
                    ],
                )
                && run("cargo", &["test", "--workspace"]);
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        "bench" => {
            let args = bench::Args::parse_from(std::env::args().skip(1));
            match bench::main(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("bench: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
        "stress" => {
            let args = stress::Args::parse_from(std::env::args().skip(1));
            match stress::main(args) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(error) => {
                    eprintln!("stress: {error:#}");
                    ExitCode::from(2)
                }
            }
        }
        _ => {
            eprintln!("usage: cargo xtask check   (fmt --check, clippy -D warnings, tests)");
            eprintln!("       cargo xtask bench WORKLOAD [options]   (see BENCHMARKS.md)");
            eprintln!(
                "       cargo xtask stress [options]   (invariants under concurrent clients; see README)"
            );
            ExitCode::from(2)
        }
    }
}

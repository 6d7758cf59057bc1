//! The `pillarbox` command line.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = pillarbox::cli::Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("pillarbox: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(pillarbox::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line: the error and its causes.
            // One line: the error and those of its causes it does not already say.
            let mut line = String::new();
            for cause in error.chain().map(|e| e.to_string()) {
                if !line.contains(&cause) {
                    if !line.is_empty() {
                        line.push_str(": ");
                    }
                    line.push_str(&cause);
                }
            }
            eprintln!("pillarbox: {line}");
            ExitCode::FAILURE
        }
    }
}

//! The publisher's entry point: parse the command line, publish, exit with what happened.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = publisher::Cli::parse();
    match publisher::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("publisher: {e:#}");
            ExitCode::FAILURE
        }
    }
}

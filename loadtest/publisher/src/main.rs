//! The publisher's entry point: parse the command line, publish, exit with what happened.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = publisher::Cli::from_env();
    match publisher::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("publisher: {e:#}");
            ExitCode::FAILURE
        }
    }
}

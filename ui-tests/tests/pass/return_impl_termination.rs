//! `-> impl Termination`, and the other forms of `main`'s return type.

#![deny(warnings)]

use std::process::{ExitCode, Termination};

#[pulse::main(writer = "null")]
async fn main() -> impl Termination {
    // A runtime cannot start inside another: run the others on a thread.
    let others = std::thread::spawn(|| (exit_code(), unit_result()));
    assert_eq!(others.join().unwrap(), (ExitCode::SUCCESS, Ok(())));
    ExitCode::SUCCESS
}

#[pulse::main(flavor = "current_thread", writer = "null")]
async fn exit_code() -> ExitCode {
    ExitCode::SUCCESS
}

#[pulse::main(flavor = "current_thread", writer = "null")]
async fn unit_result() -> Result<(), String> {
    Ok(())
}

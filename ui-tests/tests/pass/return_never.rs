//! `-> !`: a `main` that never returns.

#![deny(warnings)]

#[pulse::main(writer = "null")]
async fn main() -> ! {
    tokio::task::yield_now().await;
    std::process::exit(0)
}

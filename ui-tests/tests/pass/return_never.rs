//! `-> !`: a `main` that never returns.

#[pulse::main(writer = "null")]
async fn main() -> ! {
    tokio::task::yield_now().await;
    std::process::exit(0)
}

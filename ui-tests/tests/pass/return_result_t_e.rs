//! Any `Result<T, E>` is returned unchanged, `Err` included.

#[derive(Debug, PartialEq)]
struct Failed(&'static str);

#[pulse::main(flavor = "current_thread", writer = "null")]
async fn succeeds() -> Result<u64, Failed> {
    tokio::task::yield_now().await;
    Ok(42)
}

#[pulse::main(writer = "null")]
async fn fails() -> Result<u64, Failed> {
    tokio::task::yield_now().await;
    Err(Failed("no"))
}

fn main() {
    assert_eq!(succeeds(), Ok(42));
    assert_eq!(fails(), Err(Failed("no")));
}

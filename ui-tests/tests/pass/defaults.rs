//! The one-line change from `#[tokio::main]`: no arguments, the default
//! multi-thread runtime, recording to `pulse-trace.bin` with every default.

#[pulse::main]
async fn main() {
    let flavor = tokio::runtime::Handle::current().runtime_flavor();
    assert_eq!(flavor, tokio::runtime::RuntimeFlavor::MultiThread);
    let sum = tokio::spawn(async { 1 + 1 }).await.unwrap();
    assert_eq!(sum, 2);
}

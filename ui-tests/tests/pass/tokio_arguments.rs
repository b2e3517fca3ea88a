//! Every `#[tokio::main]` argument, with the same meaning.

#![deny(warnings)]

use std::time::Duration;
use tokio::runtime::{Handle, RuntimeFlavor};

#[pulse::main(flavor = "multi_thread", worker_threads = 3, writer = "null")]
async fn multi_thread() {
    let handle = Handle::current();
    assert_eq!(handle.runtime_flavor(), RuntimeFlavor::MultiThread);
    assert_eq!(handle.metrics().num_workers(), 3);
}

#[pulse::main(flavor = "current_thread", writer = "null")]
async fn current_thread() {
    let handle = Handle::current();
    assert_eq!(handle.runtime_flavor(), RuntimeFlavor::CurrentThread);
    assert_eq!(handle.metrics().num_workers(), 1);
}

// Time starts paused and auto-advances: an hour passes at once.
#[pulse::main(flavor = "current_thread", start_paused = true, writer = "null")]
async fn start_paused() {
    let started = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(started.elapsed() < Duration::from_secs(60));
}

// A panicking task does not take the runtime down.
#[pulse::main(flavor = "current_thread", unhandled_panic = "ignore", writer = "null")]
async fn unhandled_panic_ignore() {
    let failed = tokio::spawn(async { panic!("expected by the test") }).await;
    assert!(failed.unwrap_err().is_panic());
}

#[pulse::main(flavor = "current_thread", unhandled_panic = "shutdown_runtime", writer = "null")]
async fn unhandled_panic_shutdown() {
    assert_eq!(tokio::spawn(async { 5 }).await.unwrap(), 5);
}

#[pulse::main(name = "pulse-ui", writer = "null")]
async fn named() {
    assert_eq!(Handle::current().name(), Some("pulse-ui"));
}

// A LocalRuntime: spawned tasks need not be `Send`, and it is recorded.
#[pulse::main(flavor = "local", start_paused = true, writer = "null")]
async fn local() {
    let not_send = std::rc::Rc::new(21);
    let doubled = tokio::task::spawn_local(async move { *not_send * 2 }).await;
    assert_eq!(doubled.unwrap(), 42);
    assert_eq!(Handle::current().runtime_flavor(), RuntimeFlavor::CurrentThread);
}

fn main() {
    std::panic::set_hook(Box::new(|_| {})); // quiet the expected task panic
    multi_thread();
    current_thread();
    start_paused();
    unhandled_panic_ignore();
    unhandled_panic_shutdown();
    named();
    local();
}

//! `config = ...`: the whole `pulse::Config`, from a function or a closure,
//! combined with tokio arguments.

use pulse::{Config, WriterConfig};
use std::time::Duration;

fn quiet() -> Config {
    Config::new().writer(WriterConfig::Null)
}

#[pulse::main(config = quiet)]
async fn from_function() -> &'static str {
    "function"
}

#[pulse::main(
    flavor = "current_thread",
    config = || Config::new()
        .flush_ms(20)
        .run_queue_wait(false)
        .writer(WriterConfig::file("ui-pass-config.bin")),
)]
async fn from_closure() -> &'static str {
    "closure"
}

#[pulse::main(worker_threads = 2, config = self::quiet)]
async fn from_path() {}

fn main() {
    assert_eq!(from_function(), "function");
    assert_eq!(from_closure(), "closure");
    assert!(std::path::Path::new("ui-pass-config.bin").exists());
    from_path();
}

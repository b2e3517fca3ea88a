// Tokio arguments that need the other runtime flavor, as in `#[tokio::main]`.

#[pulse::main(flavor = "current_thread", worker_threads = 4)]
async fn workers_on_current_thread() {}

#[pulse::main(flavor = "local", worker_threads = 2)]
async fn workers_on_local() {}

#[pulse::main(start_paused = true)]
async fn paused_on_default_flavor() {}

#[pulse::main(flavor = "multi_thread", unhandled_panic = "shutdown_runtime")]
async fn panic_behaviour_on_multi_thread() {}

fn main() {}

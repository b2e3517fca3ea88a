// Each argument takes one kind of literal; the message names the kind
// expected and the kind found, and says how to fix the usual slips.

#[pulse::main(flush_ms = "250")]
async fn quoted_integer() {}

#[pulse::main(enabled = "false")]
async fn quoted_boolean() {}

#[pulse::main(writer = rotating)]
async fn unquoted_string() {}

#[pulse::main(worker_threads = 2.5)]
async fn float() {}

#[pulse::main(sample_ms = -5)]
async fn negative() {}

#[pulse::main(start_paused = 1, flavor = "current_thread")]
async fn integer_for_boolean() {}

#[pulse::main(max_file_size = true)]
async fn boolean_for_size() {}

#[pulse::main(path = 5)]
async fn integer_for_path() {}

#[pulse::main(name = "")]
async fn empty_name() {}

#[pulse::main(crate = 5)]
async fn integer_for_crate() {}

#[pulse::main(crate = "not a path")]
async fn unparsable_crate() {}

#[pulse::main(config = "my_config")]
async fn string_for_config() {}

#[pulse::main(config = pulse::Config::new())]
async fn value_for_config() {}

#[pulse::main(buffer_events = SIZE)]
async fn constant() {}

const SIZE: usize = 1024;

fn main() {}

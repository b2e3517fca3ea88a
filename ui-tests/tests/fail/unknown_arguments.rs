// Misspelled and unknown arguments: the closest valid name is suggested and
// every valid name is listed.

#[pulse::main(flush_msec = 100)]
async fn misspelled() {}

#[pulse::main(core_threads = 4)]
async fn renamed_in_tokio() {}

#[pulse::main(flush_interval = 100)]
async fn config_method_name() {}

#[pulse::main(colour = "blue")]
async fn unrelated() {}

#[pulse::main(multi_thread)]
async fn flavor_as_a_word() {}

#[pulse::main(flush_ms)]
async fn missing_value() {}

#[pulse::main(flush_ms(100))]
async fn call_syntax() {}

#[pulse::main(tokio::flavor = "current_thread")]
async fn path_as_name() {}

fn main() {}

// `config = ...` decides every recording setting, so an inline recording
// setting next to it is rejected (tokio arguments are fine).

fn my_config() -> pulse::Config {
    pulse::Config::new()
}

#[pulse::main(config = my_config, flush_ms = 100, path = "t.bin", enabled = false)]
async fn overridden_settings() {}

#[pulse::main(flavor = "current_thread", config = my_config, writer = "null")]
async fn tokio_arguments_are_fine_but_writer_is_not() {}

fn main() {}

// Writer arguments that do not apply to the chosen writer.

#[pulse::main(writer = "null", path = "trace.bin")]
async fn path_for_null() {}

#[pulse::main(writer = "file", max_file_size = "64MiB", max_total_size = "1GiB")]
async fn rotation_for_file() {}

#[pulse::main(writer = "null", max_total_size = "1GiB")]
async fn rotation_for_null() {}

fn main() {}

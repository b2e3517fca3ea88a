// String arguments with a fixed set of values list them, and suggest the
// closest.

#[pulse::main(writer = "roating")]
async fn misspelled_writer() {}

#[pulse::main(writer = "s3")]
async fn unknown_writer() {}

#[pulse::main(flavor = "multithread")]
async fn misspelled_flavor() {}

#[pulse::main(flavor = "basic_scheduler")]
async fn old_flavor_name() {}

#[pulse::main(format = "v7")]
async fn unknown_format() {}

#[pulse::main(flavor = "current_thread", unhandled_panic = "abort")]
async fn unknown_panic_behaviour() {}

fn main() {}

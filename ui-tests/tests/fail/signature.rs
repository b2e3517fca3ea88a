// What `#[pulse::main]` cannot run: the function must be `async`, take no
// arguments and not be generic. All three are reported on one function.

#[pulse::main(writer = "null")]
fn missing_async() {}

#[pulse::main(writer = "null")]
async fn with_arguments(_port: u16, _verbose: bool) {}

#[pulse::main(writer = "null")]
async fn generic<T: Default>() {}

#[pulse::main(writer = "null")]
fn everything_wrong<T>(_value: T) where T: Clone {}

fn main() {}

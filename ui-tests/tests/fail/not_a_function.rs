// The attribute belongs on an `async fn`.

#[pulse::main]
struct Server;

fn main() {}

// Type errors land in the user's code: a body that does not match the
// return type at the statement that disagrees, a config function of the
// wrong type at the function.

#[pulse::main(writer = "null")]
async fn wrong_body() -> u32 {
    let text = "forty-two";
    text
}

#[pulse::main(writer = "null")]
async fn missing_return_type() {
    Ok::<(), ()>(())
}

#[pulse::main(writer = "null")]
async fn early_return_of_the_wrong_type() -> u32 {
    if std::env::args().count() > 5 {
        return "many";
    }
    1
}

#[pulse::main(writer = "null")]
async fn extra_semicolon() -> Result<(), ()> {
    Ok(());
}

fn not_a_config() -> u32 {
    5
}

#[pulse::main(config = not_a_config)]
async fn wrong_config() {}

fn main() {}

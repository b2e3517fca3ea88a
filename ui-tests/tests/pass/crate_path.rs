//! `crate = "..."`: pulse reached under another name; tokio is reached
//! through it, so no `tokio` path is needed at the call site.

mod deps {
    pub use pulse as renamed_pulse;
}
use pulse as my_pulse;

#[my_pulse::main(crate = "my_pulse", writer = "null")]
async fn as_string() -> u8 {
    1
}

#[deps::renamed_pulse::main(crate = "crate::deps::renamed_pulse", writer = "null")]
async fn nested_path() -> u8 {
    2
}

#[pulse::main(crate = my_pulse, flavor = "current_thread", writer = "null")]
async fn bare_path() -> u8 {
    3
}

fn main() {
    assert_eq!(as_string() + nested_path() + bare_path(), 6);
}

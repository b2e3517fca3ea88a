//! `Result<(), Box<dyn Error>>` without `Send + Sync`, from a body that is
//! not `Send` (it holds an `Rc` across an `.await`): the body runs with
//! `block_on`, never spawned.

#![deny(warnings)]

use std::error::Error;
use std::rc::Rc;

#[pulse::main(writer = "null")]
async fn main() -> Result<(), Box<dyn Error>> {
    let shared = Rc::new(41);
    tokio::task::yield_now().await;
    let parsed: u32 = "1".parse()?;
    assert_eq!(*shared + parsed, 42);
    Ok(())
}

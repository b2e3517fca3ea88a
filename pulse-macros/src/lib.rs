//! Procedural macros for [pulse](https://docs.rs/pulse).
//!
//! `#[pulse::main]` lives here and is re-exported by the `pulse` crate;
//! depend on `pulse`, not on this crate directly.

mod errors;
mod main_attr;
mod size;
mod suggest;

use proc_macro::TokenStream;

/// Runs an `async fn main` on a Tokio runtime recorded by pulse; see the `pulse` crate.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    main_attr::main(args.into(), item.into()).into()
}

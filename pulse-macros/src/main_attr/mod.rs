//! `#[pulse::main]`, in phases: read the function (`item`), read each
//! argument (`args`), check them together (`validate`), generate
//! (`expand`). Errors from every phase are collected and emitted next to an
//! expansion built from what was valid, so one mistake does not hide the
//! next, and IDEs keep resolving the rest of the program.

mod args;
mod expand;
mod item;
mod validate;

use crate::errors::Errors;
use item::MainFn;
use proc_macro2::TokenStream;

pub(crate) fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    let func: MainFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(err) => {
            // Not a function: give the item back untouched with the error.
            let message = format!("`#[pulse::main]` goes on an `async fn`: {err}");
            let mut tokens = item;
            tokens.extend(syn::Error::new(err.span(), message).into_compile_error());
            return tokens;
        }
    };
    let mut errors = Errors::default();
    func.check(&mut errors);
    let config = args::parse(args, &mut errors).build(&mut errors);
    let mut tokens = expand::expand(func, &config);
    tokens.extend(errors.into_compile_errors());
    tokens
}

//! `#[pulse::bench]`, in phases: read the arguments (`args`), check them
//! together (`validate`), check the function against them (`item`),
//! generate (`expand`). Errors from every phase are collected and emitted
//! together; with a usable function, next to an expansion built from what
//! was valid, so one mistake does not hide the next.

mod args;
mod expand;
mod item;
mod validate;

use crate::errors::Errors;
use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemFn;

pub(crate) fn bench(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let config = args::parse(args, &mut errors).build(&mut errors);
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(err) => {
            // Not a function: give the item back untouched with the errors.
            errors.push(syn::Error::new(
                err.span(),
                format!(
                    "`#[pulse::bench]` goes on a function, e.g. `fn poll_pair() {{ ... }}`: {err}"
                ),
            ));
            let mut tokens = item;
            tokens.extend(errors.into_compile_errors());
            return tokens;
        }
    };
    let mut tokens = if item::check(&func, config.inputs(), &mut errors) {
        expand::expand(func, &config)
    } else {
        // The function cannot be called as a benchmark: keep it as written
        // (so the rest of the file still resolves it) with the errors.
        quote! {
            #[allow(dead_code)]
            #func
        }
    };
    tokens.extend(errors.into_compile_errors());
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_a_contended_benchmark() {
        let tokens = bench(
            quote!(
                setup = make,
                per_thread = |i| i,
                threads = [1, 4],
                batch = 100
            ),
            quote!(
                fn record(shared: &S, state: &mut usize) -> u64 {
                    1
                }
            ),
        )
        .to_string();
        assert!(tokens.contains("run_threads"), "{tokens}");
        assert!(
            tokens.contains(". threads (& [1usize , 4usize])"),
            "{tokens}"
        );
        assert!(tokens.contains(". batch (100)"), "{tokens}");
        assert!(!tokens.contains("compile_error"), "{tokens}");
    }

    #[test]
    fn a_bad_function_is_kept_with_its_errors() {
        let tokens = bench(
            quote!(bach = 1),
            quote!(
                async fn op() {}
            ),
        )
        .to_string();
        assert!(tokens.contains("async fn op"), "{tokens}");
        assert_eq!(tokens.matches("compile_error").count(), 2, "{tokens}");
        let tokens = bench(
            quote!(),
            quote!(
                struct S;
            ),
        )
        .to_string();
        assert!(tokens.contains("struct S"), "{tokens}");
        assert!(tokens.contains("goes on a function"), "{tokens}");
    }
}

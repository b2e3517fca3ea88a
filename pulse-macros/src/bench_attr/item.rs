//! The function under `#[pulse::bench]`: what it may look like, and which
//! parameters it takes given `setup` and `per_thread`.

use crate::errors::Errors;
use quote::ToTokens;
use syn::{FnArg, ItemFn, Type};

/// Which states the function receives, in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Inputs {
    /// `setup = ...` was given: the first parameter is `&S`.
    pub(crate) shared: bool,
    /// `per_thread = ...` was given: the next parameter is `&mut T` (or `&T`).
    pub(crate) per_thread: bool,
}

impl Inputs {
    fn count(self) -> usize {
        usize::from(self.shared) + usize::from(self.per_thread)
    }

    /// The signature these inputs call for, for messages.
    fn signature(self, name: &str) -> String {
        match (self.shared, self.per_thread) {
            (false, false) => format!("`fn {name}()`"),
            (true, false) => format!("`fn {name}(shared: &S)`, where `setup` returns `S`"),
            (false, true) => {
                format!("`fn {name}(state: &mut T)`, where `per_thread` returns `T`")
            }
            (true, true) => format!(
                "`fn {name}(shared: &S, state: &mut T)`, where `setup` returns `S` and \
                 `per_thread` returns `T`"
            ),
        }
    }
}

/// Rejects what `#[pulse::bench]` cannot call: an `async`, `unsafe`,
/// `extern` or generic function, a method, and parameters that do not
/// match `inputs`. Returns whether the function can be expanded.
pub(crate) fn check(func: &ItemFn, inputs: Inputs, errors: &mut Errors) -> bool {
    let sig = &func.sig;
    let name = sig.ident.to_string();
    let mut ok = true;
    let mut fail = |errors: &mut Errors, tokens: &dyn ToTokens, message: String| {
        ok = false;
        errors.spanned(tokens.to_token_stream(), message);
    };
    if let Some(token) = &sig.asyncness {
        fail(
            errors,
            token,
            format!(
                "a benchmark is a plain `fn`, timed call by call: remove `async` from `{name}`; \
                 to time async code, build a runtime in `setup` and `block_on` in the body"
            ),
        );
    }
    if let Some(token) = &sig.unsafety {
        fail(
            errors,
            token,
            format!(
                "`#[pulse::bench]` functions cannot be `unsafe`: make `{name}` safe and put the \
                 `unsafe` block (with its SAFETY comment) in the body"
            ),
        );
    }
    if let Some(abi) = &sig.abi {
        fail(
            errors,
            abi,
            format!("`#[pulse::bench]` functions use the Rust ABI: remove `extern` from `{name}`"),
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        let mut generics = sig.generics.to_token_stream();
        sig.generics.where_clause.to_tokens(&mut generics);
        fail(
            errors,
            &generics,
            format!(
                "`#[pulse::bench]` functions cannot be generic: `{name}` is benchmarked once, with \
                 no type to fill in; write one function per type"
            ),
        );
    }
    if let Some(variadic) = &sig.variadic {
        fail(
            errors,
            variadic,
            "`#[pulse::bench]` functions cannot be variadic".to_string(),
        );
    }
    if let Some(FnArg::Receiver(receiver)) = sig.inputs.first() {
        fail(
            errors,
            receiver,
            format!(
                "`#[pulse::bench]` goes on a free function, not a method: move `{name}` out of \
                 the `impl` and pass the value through `setup`"
            ),
        );
        return false;
    }
    if sig.inputs.len() != inputs.count() {
        let tokens = if sig.inputs.is_empty() {
            let mut parens = proc_macro2::TokenStream::new();
            sig.paren_token.surround(&mut parens, |_| {});
            parens
        } else {
            sig.inputs.to_token_stream()
        };
        let why = match (inputs.count(), sig.inputs.len()) {
            (0, _) => "no `setup` or `per_thread` is given, so there is nothing to pass; \
                       add `setup = ...` (shared by all threads) or `per_thread = ...` \
                       (one per thread)"
                .to_string(),
            (_, 0) => "the function must take the state it is given".to_string(),
            (_, n) if n < inputs.count() => "a parameter is missing".to_string(),
            _ => "there are more parameters than states; add `setup` or `per_thread` for \
                  them, or remove them"
                .to_string(),
        };
        fail(
            errors,
            &tokens,
            format!(
                "with these arguments the benchmark is {}: {why}",
                inputs.signature(&name)
            ),
        );
        return ok;
    }
    let mut params = sig.inputs.iter().filter_map(|arg| match arg {
        FnArg::Typed(pat) => Some(pat),
        FnArg::Receiver(_) => None,
    });
    if inputs.shared {
        if let Some(param) = params.next() {
            match &*param.ty {
                Type::Reference(r) if r.mutability.is_none() => {}
                Type::Reference(r) => fail(
                    errors,
                    &r.mutability,
                    "what `setup` returns is shared by every thread, so it is borrowed as `&S`, \
                     not `&mut S`; keep per-thread mutable state in `per_thread`"
                        .to_string(),
                ),
                other => fail(
                    errors,
                    other,
                    format!(
                        "the first parameter borrows what `setup` returns: write `&{}`",
                        other.to_token_stream()
                    ),
                ),
            }
        }
    }
    if inputs.per_thread {
        if let Some(param) = params.next() {
            if !matches!(&*param.ty, Type::Reference(_)) {
                fail(
                    errors,
                    &param.ty,
                    format!(
                        "the thread's state stays in its slot between calls, so it is borrowed: \
                         write `&mut {}`",
                        param.ty.to_token_stream()
                    ),
                );
            }
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::TokenStream;
    use quote::quote;

    fn check_of(item: TokenStream, shared: bool, per_thread: bool) -> Vec<String> {
        let func: ItemFn = syn::parse2(item).unwrap();
        let mut errors = Errors::default();
        check(&func, Inputs { shared, per_thread }, &mut errors);
        errors.messages()
    }

    #[test]
    fn accepts_matching_signatures() {
        assert!(check_of(
            quote!(
                fn a() {}
            ),
            false,
            false
        )
        .is_empty());
        assert!(check_of(
            quote!(
                fn a() -> u64 {
                    1
                }
            ),
            false,
            false
        )
        .is_empty());
        assert!(check_of(
            quote!(
                fn a(s: &S) {}
            ),
            true,
            false
        )
        .is_empty());
        assert!(check_of(
            quote!(
                fn a(t: &mut T) {}
            ),
            false,
            true
        )
        .is_empty());
        assert!(check_of(
            quote!(
                fn a(s: &S, t: &mut T) {}
            ),
            true,
            true
        )
        .is_empty());
        assert!(check_of(
            quote!(
                fn a(s: &S, (x, y): &mut (u8, u8)) {}
            ),
            true,
            true
        )
        .is_empty());
    }

    #[test]
    fn reports_every_problem() {
        let messages = check_of(
            quote!(
                async unsafe extern "C" fn a<T>() {}
            ),
            false,
            false,
        );
        assert_eq!(messages.len(), 4, "{messages:#?}");
        assert!(messages[0].contains("remove `async`"));
        assert!(messages[1].contains("cannot be `unsafe`"));
        assert!(messages[2].contains("remove `extern`"));
        assert!(messages[3].contains("cannot be generic"));
    }

    #[test]
    fn parameters_match_the_states() {
        assert!(check_of(
            quote!(
                fn a(x: u8) {}
            ),
            false,
            false
        )[0]
        .contains("nothing to pass"));
        assert!(check_of(
            quote!(
                fn a() {}
            ),
            true,
            false
        )[0]
        .contains("`fn a(shared: &S)`"));
        assert!(check_of(
            quote!(
                fn a(s: &mut S) {}
            ),
            true,
            false
        )[0]
        .contains("not `&mut S`"));
        assert!(check_of(
            quote!(
                fn a(s: S) {}
            ),
            true,
            false
        )[0]
        .contains("write `&S`"));
        assert!(check_of(
            quote!(
                fn a(t: T) {}
            ),
            false,
            true
        )[0]
        .contains("write `&mut T`"));
        assert!(check_of(
            quote!(
                fn a(&self) {}
            ),
            true,
            false
        )[0]
        .contains("not a method"));
    }
}

//! The function under `#[pulse::main]`: its signature parsed, its body kept
//! as tokens (so a body that does not parse yet still expands, which keeps
//! IDEs working while the user types).

use crate::errors::Errors;
use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::{braced, token, Attribute, Signature, Visibility};

pub(crate) struct MainFn {
    pub(crate) outer_attrs: Vec<Attribute>,
    pub(crate) inner_attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    pub(crate) brace: token::Brace,
    pub(crate) body: TokenStream,
    /// First and last token of the body's last statement: a type mismatch
    /// between the body and the return type is reported there.
    pub(crate) last_stmt: (Span, Span),
}

impl Parse for MainFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let outer_attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let content;
        let brace = braced!(content in input);
        let inner_attrs = content.call(Attribute::parse_inner)?;
        let body: TokenStream = content.parse()?;
        let last_stmt = last_statement(&body).unwrap_or((brace.span.close(), brace.span.close()));
        Ok(MainFn {
            outer_attrs,
            inner_attrs,
            vis,
            sig,
            brace,
            body,
            last_stmt,
        })
    }
}

/// Spans of the first and last token of the last `;`-separated run of
/// tokens (the trailing `;` included).
fn last_statement(body: &TokenStream) -> Option<(Span, Span)> {
    let mut start: Option<Span> = None;
    let mut last: Option<(Span, Span)> = None;
    for tree in body.clone() {
        let span = tree.span();
        let first = *start.get_or_insert(span);
        last = Some((first, span));
        if matches!(&tree, TokenTree::Punct(p) if p.as_char() == ';') {
            start = None;
        }
    }
    last
}

impl MainFn {
    /// Rejects what `#[pulse::main]` cannot run: a function that is not
    /// `async`, takes arguments or is generic.
    pub(crate) fn check(&self, errors: &mut Errors) {
        let sig = &self.sig;
        if sig.asyncness.is_none() {
            errors.spanned(
                sig.fn_token,
                format!(
                    "the `async` keyword is missing from the function declaration: \
                     `#[pulse::main]` runs an `async fn`; write `async fn {}`",
                    sig.ident
                ),
            );
        }
        if !sig.inputs.is_empty() || sig.variadic.is_some() {
            let mut inputs = sig.inputs.to_token_stream();
            sig.variadic.to_tokens(&mut inputs);
            errors.spanned(
                inputs,
                format!(
                    "`#[pulse::main]` functions take no arguments, because nothing calls `{}` \
                     with any; read command-line arguments with `std::env::args()` inside it",
                    sig.ident
                ),
            );
        }
        if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
            let mut generics = sig.generics.to_token_stream();
            sig.generics.where_clause.to_tokens(&mut generics);
            errors.spanned(
                generics,
                format!(
                    "`#[pulse::main]` functions cannot be generic: `{}` is called once, with no \
                     type to fill in; remove the generic parameters",
                    sig.ident
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn check(item: TokenStream) -> Vec<String> {
        let func: MainFn = syn::parse2(item).unwrap();
        let mut errors = Errors::default();
        func.check(&mut errors);
        errors.messages()
    }

    #[test]
    fn accepts_async_fn_without_arguments() {
        assert!(check(quote!(
            async fn main() {}
        ))
        .is_empty());
        assert!(check(quote!(
            pub async fn run() -> Result<(), ()> {
                Ok(())
            }
        ))
        .is_empty());
    }

    #[test]
    fn reports_every_problem() {
        let messages = check(quote!(
            fn main<T: Clone>(x: T)
            where
                T: Copy,
            {
            }
        ));
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[0].contains("`async` keyword is missing"));
        assert!(messages[1].contains("take no arguments"));
        assert!(messages[2].contains("cannot be generic"));
    }

    #[test]
    fn keeps_a_body_that_does_not_parse() {
        let func: MainFn = syn::parse2(quote!(async fn main() { let x = ; })).unwrap();
        assert_eq!(func.body.to_string(), "let x = ;");
    }

    #[test]
    fn finds_the_last_statement() {
        assert!(last_statement(&TokenStream::new()).is_none());
        let body = quote!(let a = 1; a + 1);
        assert!(last_statement(&body).is_some());
    }
}

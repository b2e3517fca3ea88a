//! The argument parser both attributes share: `#[pulse::main(...)]` and
//! `#[pulse::bench(...)]` are lists of `key = value` pairs, read by one
//! loop ([`parse`]) that rejects paths, bare words, lists, unknown and
//! repeated keys with one message each, and hands every known pair to the
//! attribute's own setter. The value readers every attribute needs
//! (strings, crate paths, what a wrong value looks like) live here too;
//! each attribute keeps its key table and its own kinds of values.

use crate::errors::Errors;
use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Ident, Lit, LitStr, Meta, MetaNameValue, Token};

/// One accepted key: its name and how it is written.
pub(crate) trait ArgKey: 'static {
    fn name(&self) -> &'static str;
    /// How it is written, for "needs a value" and wrong-type messages.
    fn example(&self) -> &'static str;
}

/// What an attribute's arguments are read into.
pub(crate) trait Arguments: Default {
    type Key: ArgKey;
    /// A key name for the "not a path" message, e.g. `flush_ms`.
    const NAME_EXAMPLE: &'static str;
    fn find_key(name: &str) -> Option<&'static Self::Key>;
    /// The message for a name that is not a key.
    fn unknown_key(name: &str) -> String;
    /// The message for a bare word (`#[attr(name)]`).
    fn bare_word(name: &str) -> String {
        match Self::find_key(name) {
            Some(key) => format!("`{name}` needs a value, e.g. `{}`", key.example()),
            None => Self::unknown_key(name),
        }
    }
    /// Reads `key = value` (each key is given at most once).
    fn set(&mut self, key: &'static Self::Key, nv: &MetaNameValue, errors: &mut Errors);
}

/// A value with the tokens of its `key = value` pair.
pub(crate) struct Arg<T> {
    pub(crate) value: T,
    /// `key = value`, for errors about the argument as a whole.
    pub(crate) pair: TokenStream,
    /// The value alone, for errors and generated code about the value.
    pub(crate) span: Span,
}

impl<T> Arg<T> {
    pub(crate) fn new(value: T, nv: &MetaNameValue) -> Arg<T> {
        Arg {
            value,
            pair: nv.to_token_stream(),
            span: nv.value.span(),
        }
    }
}

/// Parses `args` (the tokens inside the attribute's parentheses).
pub(crate) fn parse<A: Arguments>(args: TokenStream, errors: &mut Errors) -> A {
    let mut config = A::default();
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args) {
        Ok(metas) => metas,
        Err(err) => {
            errors.push(err);
            return config;
        }
    };
    let mut seen: Vec<String> = Vec::new();
    for meta in metas {
        match meta {
            Meta::NameValue(nv) => {
                let Some(name) = nv.path.get_ident().map(Ident::to_string) else {
                    errors.spanned(
                        &nv.path,
                        format!(
                            "expected an argument name such as `{}`, not a path",
                            A::NAME_EXAMPLE
                        ),
                    );
                    continue;
                };
                let Some(key) = A::find_key(&name) else {
                    errors.spanned(&nv.path, A::unknown_key(&name));
                    continue;
                };
                if seen.contains(&name) {
                    errors.spanned(
                        &nv,
                        format!("`{name}` is set more than once; keep one of them"),
                    );
                    continue;
                }
                seen.push(name);
                config.set(key, &nv, errors);
            }
            Meta::Path(path) => {
                let name = path.get_ident().map(Ident::to_string).unwrap_or_default();
                errors.spanned(&path, A::bare_word(&name));
            }
            Meta::List(list) => {
                let name = list
                    .path
                    .get_ident()
                    .map(Ident::to_string)
                    .unwrap_or_default();
                let message = match A::find_key(&name) {
                    Some(key) => {
                        format!("arguments are written `key = value`: `{}`", key.example())
                    }
                    None => A::unknown_key(&name),
                };
                errors.spanned(&list, message);
            }
        }
    }
    config
}

/// The literal inside `value`, looking through the invisible groups that
/// `macro_rules!` puts around fragments.
pub(crate) fn literal(value: &Expr) -> Option<&Lit> {
    match value {
        Expr::Lit(lit) => Some(&lit.lit),
        Expr::Group(group) => literal(&group.expr),
        _ => None,
    }
}

/// "a string", "an integer", ... for "found ..." messages.
pub(crate) fn describe(value: &Expr) -> &'static str {
    match literal(value) {
        Some(Lit::Str(_)) => "a string",
        Some(Lit::Int(_)) => "an integer",
        Some(Lit::Float(_)) => "a floating-point number",
        Some(Lit::Bool(_)) => "a boolean",
        Some(Lit::Char(_)) => "a character",
        Some(Lit::Byte(_) | Lit::ByteStr(_) | Lit::CStr(_)) => "a byte literal",
        Some(_) => "a literal of another kind",
        None => match value {
            Expr::Path(_) => "a name",
            Expr::Array(_) => "an array",
            Expr::Closure(_) => "a closure",
            Expr::Range(_) => "a range",
            Expr::Unary(_) => "an expression",
            _ => "an expression (only literals are accepted here)",
        },
    }
}

/// A non-empty string literal.
pub(crate) fn string(key: &impl ArgKey, value: &Expr, errors: &mut Errors) -> Option<LitStr> {
    match literal(value) {
        Some(Lit::Str(s)) if s.value().trim().is_empty() => {
            errors.spanned(
                value,
                format!("`{}` cannot be empty; e.g. `{}`", key.name(), key.example()),
            );
            None
        }
        Some(Lit::Str(s)) => Some(s.clone()),
        _ => {
            errors.spanned(
                value,
                format!(
                    "`{}` expects a string literal, e.g. `{}`; found {}",
                    key.name(),
                    key.example(),
                    describe(value)
                ),
            );
            None
        }
    }
}

/// `crate = "my_pulse"` as in `#[tokio::main]`; a bare path is accepted too.
pub(crate) fn crate_path(value: &Expr, errors: &mut Errors) -> Option<syn::Path> {
    match (literal(value), value) {
        (Some(Lit::Str(s)), _) => match s.parse::<syn::Path>() {
            Ok(path) => Some(path),
            Err(_) => {
                errors.spanned(
                    value,
                    format!(
                        "`crate = \"{}\"` is not a path; write the path pulse is reachable at, \
                         e.g. `crate = \"my_pulse\"`",
                        s.value()
                    ),
                );
                None
            }
        },
        (None, Expr::Path(path)) if path.qself.is_none() => Some(path.path.clone()),
        _ => {
            errors.spanned(
                value,
                format!(
                    "`crate` expects the path pulse is reachable at, e.g. `crate = \"my_pulse\"`; \
                     found {}",
                    describe(value)
                ),
            );
            None
        }
    }
}

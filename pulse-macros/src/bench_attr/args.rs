//! Reading `#[pulse::bench(...)]`'s arguments into a [`Configuration`]:
//! every value checked on its own and kept with its tokens, so later errors
//! point at it. Combinations are checked in `validate.rs`.

use crate::args::{crate_path, describe, literal, string, Arg, ArgKey, Arguments};
use crate::errors::Errors;
use crate::suggest;
use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Expr, Lit, LitStr, MetaNameValue};

/// One argument `#[pulse::bench]` accepts, with how it is written.
pub(crate) struct Key {
    pub(crate) name: &'static str,
    pub(crate) example: &'static str,
}

/// Every argument, in the order the documentation lists them.
pub(crate) const KEYS: &[Key] = &[
    Key {
        name: "setup",
        example: "setup = make_state",
    },
    Key {
        name: "per_thread",
        example: "per_thread = |thread| thread as u32",
    },
    Key {
        name: "teardown",
        example: "teardown = report",
    },
    Key {
        name: "threads",
        example: "threads = [1, 2, 4, 8, 16]",
    },
    Key {
        name: "batch",
        example: "batch = 100",
    },
    Key {
        name: "elements",
        example: "elements = 2",
    },
    Key {
        name: "group",
        example: "group = \"poll_event\"",
    },
    Key {
        name: "warm_up_ms",
        example: "warm_up_ms = 1000",
    },
    Key {
        name: "measurement_ms",
        example: "measurement_ms = 5000",
    },
    Key {
        name: "sample_size",
        example: "sample_size = 100",
    },
    Key {
        name: "significance",
        example: "significance = 0.05",
    },
    Key {
        name: "crate",
        example: "crate = \"my_pulse\"",
    },
];

/// Names people reach for that are spelled differently here.
const ALIASES: &[(&str, &str)] = &[
    ("thread", "threads"),
    ("thread_counts", "threads"),
    ("contention", "threads"),
    ("workers", "threads"),
    ("batch_size", "batch"),
    ("iterations", "batch"),
    ("throughput", "elements"),
    ("init", "setup"),
    ("state", "setup"),
    ("thread_setup", "per_thread"),
    ("thread_state", "per_thread"),
    ("name", "group"),
    ("warmup_ms", "warm_up_ms"),
    ("warm_up", "warm_up_ms"),
    ("warm_up_time", "warm_up_ms"),
    ("measurement_time", "measurement_ms"),
    ("samples", "sample_size"),
    ("significance_level", "significance"),
    ("crate_name", "crate"),
];

/// Smallest `sample_size` criterion accepts (it panics below).
pub(crate) const MIN_SAMPLE_SIZE: u64 = 10;

pub(crate) fn find_key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// The arguments as written, each checked on its own.
#[derive(Default)]
pub(crate) struct Configuration {
    pub(crate) setup: Option<Arg<Expr>>,
    pub(crate) per_thread: Option<Arg<Expr>>,
    pub(crate) teardown: Option<Arg<Expr>>,
    /// Each count with its own span, for errors about one of them.
    pub(crate) threads: Option<Arg<Vec<(u64, Span)>>>,
    pub(crate) batch: Option<Arg<u64>>,
    pub(crate) elements: Option<Arg<u64>>,
    pub(crate) group: Option<Arg<LitStr>>,
    pub(crate) warm_up_ms: Option<Arg<u64>>,
    pub(crate) measurement_ms: Option<Arg<u64>>,
    pub(crate) sample_size: Option<Arg<u64>>,
    pub(crate) significance: Option<Arg<f64>>,
    pub(crate) crate_path: Option<Arg<syn::Path>>,
}

/// Parses `args` (the tokens inside the attribute's parentheses) with the
/// shared parser.
pub(crate) fn parse(args: TokenStream, errors: &mut Errors) -> Configuration {
    crate::args::parse(args, errors)
}

impl ArgKey for Key {
    fn name(&self) -> &'static str {
        self.name
    }
    fn example(&self) -> &'static str {
        self.example
    }
}

impl Arguments for Configuration {
    type Key = Key;
    const NAME_EXAMPLE: &'static str = "batch";

    fn find_key(name: &str) -> Option<&'static Key> {
        find_key(name)
    }

    fn unknown_key(name: &str) -> String {
        unknown_key(name)
    }

    fn set(&mut self, key: &'static Key, nv: &MetaNameValue, errors: &mut Errors) {
        let value = &nv.value;
        match key.name {
            "setup" => self.setup = callable(key, value, errors).map(|v| Arg::new(v, nv)),
            "per_thread" => self.per_thread = callable(key, value, errors).map(|v| Arg::new(v, nv)),
            "teardown" => self.teardown = callable(key, value, errors).map(|v| Arg::new(v, nv)),
            "threads" => self.threads = threads(key, value, errors).map(|v| Arg::new(v, nv)),
            "batch" => {
                self.batch =
                    int(key, value, 1, u64::from(u32::MAX), errors).map(|v| Arg::new(v, nv))
            }
            "elements" => {
                self.elements = int(key, value, 1, u64::MAX, errors).map(|v| Arg::new(v, nv))
            }
            "group" => self.group = string(key, value, errors).map(|v| Arg::new(v, nv)),
            "warm_up_ms" => {
                self.warm_up_ms = int(key, value, 1, u64::MAX, errors).map(|v| Arg::new(v, nv))
            }
            "measurement_ms" => {
                self.measurement_ms = int(key, value, 1, u64::MAX, errors).map(|v| Arg::new(v, nv))
            }
            "sample_size" => {
                self.sample_size = int(key, value, MIN_SAMPLE_SIZE, u64::from(u32::MAX), errors)
                    .map(|v| Arg::new(v, nv))
            }
            "significance" => {
                self.significance = significance(key, value, errors).map(|v| Arg::new(v, nv))
            }
            "crate" => self.crate_path = crate_path(value, errors).map(|v| Arg::new(v, nv)),
            // Unreachable: `every_key_has_a_setter_and_an_example` checks
            // each key. A proc macro reports rather than panics.
            other => errors.spanned(
                &nv.path,
                format!("pulse-macros has no setter for `{other}` (a bug; please report it)"),
            ),
        }
    }
}

fn is_negative(value: &Expr) -> bool {
    match value {
        Expr::Unary(u) => matches!(u.op, syn::UnOp::Neg(_)),
        Expr::Group(group) => is_negative(&group.expr),
        _ => false,
    }
}

fn int(key: &Key, value: &Expr, min: u64, max: u64, errors: &mut Errors) -> Option<u64> {
    let name = key.name;
    match literal(value) {
        Some(Lit::Int(lit)) => match lit.base10_parse::<u64>() {
            Ok(n) if n < min => {
                let why = match name {
                    "batch" => ": each iteration makes at least one call",
                    "elements" => ": a call does at least one thing",
                    "sample_size" => ": criterion needs at least 10 samples",
                    _ => ": a benchmark needs time to run",
                };
                errors.spanned(value, format!("`{name}` must be at least {min}{why}"));
                None
            }
            Ok(n) if n > max => {
                errors.spanned(value, format!("`{name}` must be at most {max}"));
                None
            }
            Ok(n) => Some(n),
            Err(_) => {
                errors.spanned(value, format!("`{name}` is out of range: at most {max}"));
                None
            }
        },
        Some(Lit::Str(s)) if s.value().trim().parse::<u64>().is_ok() => {
            errors.spanned(
                value,
                format!(
                    "`{name}` expects an integer, not a string; remove the quotes: `{name} = {}`",
                    s.value().trim()
                ),
            );
            None
        }
        _ if is_negative(value) => {
            errors.spanned(
                value,
                format!("`{name}` cannot be negative; e.g. `{}`", key.example),
            );
            None
        }
        _ => {
            errors.spanned(
                value,
                format!(
                    "`{name}` expects an integer literal, e.g. `{}`; found {}",
                    key.example,
                    describe(value)
                ),
            );
            None
        }
    }
}

/// `threads = [1, 2, 4]`: a non-empty array of distinct counts ≥ 1.
fn threads(key: &Key, value: &Expr, errors: &mut Errors) -> Option<Vec<(u64, Span)>> {
    let array = match value {
        Expr::Array(array) => array,
        Expr::Group(group) => return threads(key, &group.expr, errors),
        _ if matches!(literal(value), Some(Lit::Int(_))) => {
            let n = value.to_token_stream().to_string();
            errors.spanned(
                value,
                format!("`threads` expects an array of thread counts; write `threads = [{n}]`"),
            );
            return None;
        }
        _ => {
            errors.spanned(
                value,
                format!(
                    "`threads` expects an array of thread counts, e.g. `{}`; found {}",
                    key.example,
                    describe(value)
                ),
            );
            return None;
        }
    };
    if array.elems.is_empty() {
        errors.spanned(
            value,
            format!(
                "`threads` needs at least one thread count, e.g. `{}`",
                key.example
            ),
        );
        return None;
    }
    let mut counts: Vec<(u64, Span)> = Vec::new();
    let mut ok = true;
    for elem in &array.elems {
        let count = match literal(elem) {
            Some(Lit::Int(lit)) => lit.base10_parse::<u64>().ok(),
            _ => None,
        };
        match count {
            Some(0) => {
                errors.spanned(
                    elem,
                    "a benchmark cannot run on zero threads; thread counts start at 1",
                );
                ok = false;
            }
            Some(n) if n > u64::from(u16::MAX) => {
                errors.spanned(elem, format!("{n} threads is too many; at most 65535"));
                ok = false;
            }
            Some(n) if counts.iter().any(|&(m, _)| m == n) => {
                errors.spanned(
                    elem,
                    format!("thread count {n} is listed twice; each count is one benchmark"),
                );
                ok = false;
            }
            Some(n) => counts.push((n, elem.span())),
            None => {
                let what = if is_negative(elem) {
                    "a thread count cannot be negative".to_string()
                } else {
                    format!(
                        "thread counts are integer literals, e.g. `{}`; found {}",
                        key.example,
                        describe(elem)
                    )
                };
                errors.spanned(elem, what);
                ok = false;
            }
        }
    }
    ok.then_some(counts)
}

/// `significance = 0.05`: strictly between 0 and 1.
fn significance(key: &Key, value: &Expr, errors: &mut Errors) -> Option<f64> {
    let parsed = match literal(value) {
        Some(Lit::Float(lit)) => lit.base10_parse::<f64>().ok(),
        Some(Lit::Int(lit)) => lit.base10_parse::<f64>().ok(),
        Some(Lit::Str(s)) if s.value().trim().parse::<f64>().is_ok() => {
            errors.spanned(
                value,
                format!(
                    "`significance` expects a number, not a string; remove the quotes: \
                     `significance = {}`",
                    s.value().trim()
                ),
            );
            return None;
        }
        _ => None,
    };
    match parsed {
        Some(level) if level > 0.0 && level < 1.0 => Some(level),
        Some(level) => {
            errors.spanned(
                value,
                format!(
                    "`significance` is a probability strictly between 0 and 1 (found {level}), \
                     e.g. `{}`",
                    key.example
                ),
            );
            None
        }
        None => {
            errors.spanned(
                value,
                format!(
                    "`significance` expects a number between 0 and 1, e.g. `{}`; found {}",
                    key.example,
                    describe(value)
                ),
            );
            None
        }
    }
}

/// `setup = make`, `per_thread = |i| ...`: something to call.
fn callable(key: &Key, value: &Expr, errors: &mut Errors) -> Option<Expr> {
    let signature = match key.name {
        "setup" => "`fn() -> S`, called once per benchmark",
        "per_thread" => "`fn(usize) -> T`, called once per thread with its index",
        _ => "`fn(S)`, given the shared state after the benchmark",
    };
    match value {
        Expr::Path(_) | Expr::Closure(_) => Some(value.clone()),
        Expr::Group(group) => callable(key, &group.expr, errors),
        _ => {
            errors.spanned(
                value,
                format!(
                    "`{}` expects a function or closure, {signature}, e.g. `{}`; found {}; \
                     wrap an expression in a closure",
                    key.name,
                    key.example,
                    describe(value)
                ),
            );
            None
        }
    }
}

/// The message for an argument name that is not one of `KEYS`.
pub(crate) fn unknown_key(name: &str) -> String {
    let names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
    let alias = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map(|(_, key)| *key);
    let head = match alias.or_else(|| suggest::closest(name, &names)) {
        Some(key) => format!("unknown argument `{name}`; did you mean `{key}`?"),
        None => format!("unknown argument `{name}`."),
    };
    let all: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    format!("{head} The arguments are {}", all.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn errors_of(args: TokenStream) -> Vec<String> {
        let mut errors = Errors::default();
        parse(args, &mut errors);
        errors.messages()
    }

    #[test]
    fn reads_every_argument() {
        let mut errors = Errors::default();
        let c = parse(
            quote!(
                setup = make,
                per_thread = |i| i,
                teardown = done,
                threads = [1, 2, 4, 8, 16],
                batch = 100,
                elements = 2,
                group = "poll",
                warm_up_ms = 10,
                measurement_ms = 20,
                sample_size = 10,
                significance = 0.01,
                crate = "my_pulse"
            ),
            &mut errors,
        );
        assert!(errors.messages().is_empty(), "{:?}", errors.messages());
        assert!(c.setup.is_some() && c.per_thread.is_some() && c.teardown.is_some());
        let threads: Vec<u64> = c.threads.unwrap().value.iter().map(|t| t.0).collect();
        assert_eq!(threads, [1, 2, 4, 8, 16]);
        assert_eq!(c.batch.unwrap().value, 100);
        assert_eq!(c.elements.unwrap().value, 2);
        assert_eq!(c.group.unwrap().value.value(), "poll");
        assert_eq!(c.warm_up_ms.unwrap().value, 10);
        assert_eq!(c.measurement_ms.unwrap().value, 20);
        assert_eq!(c.sample_size.unwrap().value, 10);
        assert_eq!(c.significance.unwrap().value, 0.01);
        assert!(c.crate_path.unwrap().value.is_ident("my_pulse"));
    }

    #[test]
    fn every_key_has_a_setter_and_an_example() {
        for key in KEYS {
            assert!(key.example.starts_with(key.name), "{}", key.name);
            let nv: MetaNameValue = syn::parse_str(key.example).unwrap();
            let mut errors = Errors::default();
            Configuration::default().set(key, &nv, &mut errors);
            assert!(
                errors.messages().is_empty(),
                "{}: {:?}",
                key.name,
                errors.messages()
            );
        }
        for (alias, key) in ALIASES {
            assert!(
                find_key(alias).is_none() && find_key(key).is_some(),
                "{alias}"
            );
        }
    }

    #[test]
    fn suggests_and_reports_all_at_once() {
        let messages = errors_of(quote!(
            bach = 100,
            threads = [0, 2, 2, x],
            batch = "100",
            sample_size = 5,
            significance = 1.5,
            setup = 5,
            samples = 10,
            batch = 3
        ));
        assert_eq!(messages.len(), 10, "{messages:#?}");
        assert!(messages[0].starts_with("unknown argument `bach`; did you mean `batch`?"));
        assert!(messages[1].contains("zero threads"));
        assert!(messages[2].contains("listed twice"));
        assert!(messages[3].contains("thread counts are integer literals"));
        assert!(messages[4].contains("remove the quotes: `batch = 100`"));
        assert!(messages[5].contains("at least 10"));
        assert!(messages[6].contains("strictly between 0 and 1"));
        assert!(messages[7].contains("`setup` expects a function or closure"));
        assert!(messages[8].contains("did you mean `sample_size`?"));
        assert!(messages[9].contains("`batch` is set more than once"));
    }

    #[test]
    fn threads_forms() {
        assert!(errors_of(quote!(threads = 4))[0].contains("write `threads = [4]`"));
        assert!(errors_of(quote!(threads = []))[0].contains("at least one thread count"));
        assert!(errors_of(quote!(threads = [-1]))[0].contains("cannot be negative"));
        assert!(errors_of(quote!(threads))[0].contains("`threads` needs a value"));
    }
}

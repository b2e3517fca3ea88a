//! Checking the arguments against each other: `Configuration` →
//! `FinalConfig`. An argument that conflicts with another is reported at its
//! own tokens and left out, so the expansion uses only what is consistent.

use super::args::Configuration;
use super::item::Inputs;
use crate::args::Arg;
use crate::errors::Errors;
use syn::{Expr, LitStr};

/// The consistent configuration the expansion is generated from.
pub(crate) struct FinalConfig {
    pub(crate) crate_path: Option<syn::Path>,
    pub(crate) setup: Option<Arg<Expr>>,
    pub(crate) per_thread: Option<Arg<Expr>>,
    pub(crate) teardown: Option<Arg<Expr>>,
    pub(crate) threads: Option<Vec<u64>>,
    pub(crate) batch: Option<Arg<u64>>,
    pub(crate) elements: Option<Arg<u64>>,
    pub(crate) group: Option<Arg<LitStr>>,
    pub(crate) warm_up_ms: Option<Arg<u64>>,
    pub(crate) measurement_ms: Option<Arg<u64>>,
    pub(crate) sample_size: Option<Arg<u64>>,
    pub(crate) significance: Option<Arg<f64>>,
}

impl FinalConfig {
    /// The states the function is given.
    pub(crate) fn inputs(&self) -> Inputs {
        Inputs {
            shared: self.setup.is_some(),
            per_thread: self.per_thread.is_some(),
        }
    }
}

impl Configuration {
    /// Checks combinations, reporting each conflict at the argument that
    /// causes it.
    pub(crate) fn build(self, errors: &mut Errors) -> FinalConfig {
        let teardown = self.teardown.filter(|arg| {
            let ok = self.setup.is_some();
            if !ok {
                errors.spanned(
                    &arg.pair,
                    "`teardown` is given what `setup` returned, and there is no `setup`; \
                     add `setup = ...` or remove `teardown`",
                );
            }
            ok
        });
        FinalConfig {
            crate_path: self.crate_path.map(|arg| arg.value),
            setup: self.setup,
            per_thread: self.per_thread,
            teardown,
            threads: self
                .threads
                .map(|arg| arg.value.into_iter().map(|(n, _)| n).collect()),
            batch: self.batch,
            elements: self.elements,
            group: self.group,
            warm_up_ms: self.warm_up_ms,
            measurement_ms: self.measurement_ms,
            sample_size: self.sample_size,
            significance: self.significance,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::args;
    use super::*;
    use quote::quote;

    #[test]
    fn teardown_needs_setup() {
        let mut errors = Errors::default();
        let config = args::parse(quote!(teardown = done), &mut errors).build(&mut errors);
        assert!(config.teardown.is_none());
        assert!(errors.messages()[0].contains("there is no `setup`"));

        let mut errors = Errors::default();
        let config = args::parse(
            quote!(setup = make, teardown = done, per_thread = |i| i),
            &mut errors,
        )
        .build(&mut errors);
        assert!(errors.messages().is_empty());
        assert!(config.teardown.is_some());
        assert_eq!(
            config.inputs(),
            Inputs {
                shared: true,
                per_thread: true
            }
        );
    }
}

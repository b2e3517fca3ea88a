//! What surrounds the function is kept: attributes (inner ones too),
//! visibility, doc comments; and arguments may come from `macro_rules!`.

#![deny(warnings)]

mod app {
    /// Documented, public, and with an inner attribute.
    #[pulse::main(flavor = "current_thread", writer = "null")]
    #[allow(clippy::needless_return)]
    pub async fn run() -> u8 {
        #![allow(unused_variables)]
        let unused = 1;
        return 2;
    }
}

// `literal` fragments arrive as plain tokens, `expr` fragments inside
// invisible groups: both are read.
macro_rules! traced {
    ($name:ident, $ms:literal, $writer:literal) => {
        #[pulse::main(flush_ms = $ms, writer = $writer)]
        async fn $name() -> u64 {
            $ms
        }
    };
    ($name:ident, expr $ms:expr, $writer:expr) => {
        #[pulse::main(flush_ms = $ms, writer = $writer)]
        async fn $name() -> u64 {
            $ms
        }
    };
}

traced!(from_macro, 50, "null");
traced!(from_macro_expr, expr 60, "null");

fn main() {
    assert_eq!(app::run(), 2);
    assert_eq!(from_macro(), 50);
    assert_eq!(from_macro_expr(), 60);
}

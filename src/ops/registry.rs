//! [`Registry`]: the one map from TF op names to builders. Each op family registers its ops
//! in its own `register` function; a registration carries the variant it builds, so naming an
//! op is one line.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::*;

/// Builds an op from its node. A closure, so one registration can carry the variant it
/// builds: `r.add("Abs", |cx| Unary::build(cx, UnOp::Abs))`.
pub type Builder = Arc<dyn Fn(&mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> + Send + Sync>;

/// Maps TF op names to builders.
#[derive(Default)]
pub struct Registry {
    builders: HashMap<&'static str, Builder>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Registry({} ops)", self.builders.len())
    }
}

impl Registry {
    /// Registers `name` (later registrations replace earlier ones).
    pub fn add(
        &mut self,
        name: &'static str,
        b: impl Fn(&mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> + Send + Sync + 'static,
    ) {
        self.builders.insert(name, Arc::new(b));
    }
    /// The builder for `name`.
    pub fn get(&self, name: &str) -> Option<&Builder> {
        self.builders.get(name)
    }
    /// Every registered op name, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.builders.keys().copied().collect();
        v.sort_unstable();
        v
    }
    /// The registry with every op family.
    pub fn with_all_ops() -> Registry {
        let mut r = Registry::default();
        array::register(&mut r);
        control::register(&mut r);
        image::register(&mut r);
        detection::register(&mut r);
        list::register(&mut r);
        lookup::register(&mut r);
        math::register(&mut r);
        nn::register(&mut r);
        sentencepiece::register(&mut r);
        signal::register(&mut r);
        sparse::register(&mut r);
        strings::register(&mut r);
        text::register(&mut r);
        tf1::register(&mut r);
        variables::register(&mut r);
        r
    }
}

//! [`FlinkUdf`], the one [`ScalarUDFImpl`] behind every Sluice function: a
//! name plus three plain functions (argument coercion, return type,
//! evaluation) and the shared caches those functions may use.
//!
//! Each function module exposes constructors such as `split_index()` that
//! fill this struct; there is no macro or trait-object dispatch to follow.

use std::hash::{Hash, Hasher};

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use regex::Regex;

use super::args::PatternCache;
use super::format::JavaFormat;
use super::random::RandState;

/// Maps the argument types of a call to the types DataFusion must cast them to.
pub(crate) type CoerceFn = fn(&[DataType]) -> Result<Vec<DataType>>;
/// Computes the return type from the (already coerced) argument types.
pub(crate) type ReturnFn = fn(&[DataType]) -> Result<DataType>;
/// Evaluates the function over one batch.
pub(crate) type InvokeFn = fn(&FnState, &ScalarFunctionArgs) -> Result<ColumnarValue>;
/// Optionally rewrites a call at planning time (e.g. `IF` into `CASE`).
pub(crate) type SimplifyFn = fn(Vec<Expr>) -> Result<ExprSimplifyResult>;

/// Caches and state a function instance keeps between batches.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct FnState {
    /// Compiled regular expressions, by pattern text.
    pub(crate) regex: PatternCache<Regex>,
    /// Translated Java date/time patterns, by pattern text.
    pub(crate) formats: PatternCache<JavaFormat>,
    /// Generator state for `RAND`/`RAND_INTEGER`.
    pub(crate) rand: RandState,
}

/// A Flink scalar function implemented natively; see the module docs.
#[derive(Debug)]
pub(crate) struct FlinkUdf {
    name: String,
    aliases: Vec<String>,
    signature: Signature,
    coerce: CoerceFn,
    ret: ReturnFn,
    invoke: InvokeFn,
    simplify: Option<SimplifyFn>,
    state: FnState,
}

impl FlinkUdf {
    /// A deterministic (immutable) function named `name`.
    pub(crate) fn new(name: &str, coerce: CoerceFn, ret: ReturnFn, invoke: InvokeFn) -> Self {
        Self {
            name: name.to_owned(),
            aliases: Vec::new(),
            signature: Signature::user_defined(Volatility::Immutable),
            coerce,
            ret,
            invoke,
            simplify: None,
            state: FnState::default(),
        }
    }

    /// Marks the function volatile: evaluated per batch, never constant-folded.
    pub(crate) fn volatile(mut self) -> Self {
        self.signature = Signature::user_defined(Volatility::Volatile);
        self
    }

    /// Adds another name the function answers to.
    pub(crate) fn alias(mut self, alias: &str) -> Self {
        self.aliases.push(alias.to_owned());
        self
    }

    /// Sets a planning-time rewrite.
    pub(crate) fn with_simplify(mut self, simplify: SimplifyFn) -> Self {
        self.simplify = Some(simplify);
        self
    }

    /// Renames the function (used for Java UDFs registered under a user name).
    pub(crate) fn renamed(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self.aliases.clear();
        self
    }

    /// Wraps the function as a DataFusion [`ScalarUDF`].
    pub(crate) fn into_udf(self) -> ScalarUDF {
        ScalarUDF::new_from_impl(self)
    }
}

impl PartialEq for FlinkUdf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.signature == other.signature
    }
}

impl Eq for FlinkUdf {}

impl Hash for FlinkUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.signature.hash(state);
    }
}

impl ScalarUDFImpl for FlinkUdf {
    fn name(&self) -> &str {
        &self.name
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        (self.coerce)(arg_types)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        (self.ret)(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        (self.invoke)(&self.state, &args)
    }

    fn simplify(&self, args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        match self.simplify {
            Some(f) => f(args),
            None => Ok(ExprSimplifyResult::Original(args)),
        }
    }
}

//! The Slipway API: Tekton kinds, YAML loading with spans, validation and `$(...)` substitution.
//!
//! Pure: no I/O beyond reading the files it is given.

pub mod annotations;
pub mod convert;
pub mod diagnostic;
pub mod documents;
pub mod duration;
pub mod images;
pub mod inputs;
pub mod kaniko;
pub mod kinds;
pub mod library;
pub mod names;
pub mod node;
pub mod param;
pub mod prewarm;
pub mod quantity;
pub mod reference;
pub mod subst;
pub mod suggest;
pub mod validate;

pub use diagnostic::{Diagnostic, Diagnostics, SourceFile};
pub use library::{Library, Object, Origin, RunObject};
pub use param::{Param, ParamSpec, ParamType, ParamValue};

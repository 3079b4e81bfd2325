//! One module per verb.

pub mod cancel;
pub mod history;
pub mod lookup;
pub mod logs;
pub mod remote;
pub mod run;
pub mod serve;
pub mod token;
pub mod validate;

//! One module per verb.

pub mod agent;
pub mod build;
pub mod cancel;
pub mod controller;
pub mod entrypoint;
pub mod history;
pub mod images;
pub mod logs;
pub mod lookup;
pub mod prewarm;
pub mod prewarm_controller;
pub mod prewarm_job;
pub mod remote;
pub mod run;
pub mod secrets;
pub mod serve;
pub mod token;
pub mod validate;

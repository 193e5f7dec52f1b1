//! cronstack: a self-hosted job scheduler — cron as a service.

pub mod api;
pub mod blocks;
pub mod cli;
pub mod client;
pub mod domain;
pub mod engine;
pub mod events;
#[doc(hidden)]
pub mod fuzz;
pub mod http;
pub mod rate_limit;
pub mod secrets;
pub mod service;
pub mod store;
pub mod webhooks;

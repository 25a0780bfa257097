//! siths-operator: SITHS function certificates for server-to-server traffic, publicly
//! trusted certificates for user-facing endpoints, and the policy between them.

pub mod acme;
#[allow(clippy::duplicated_attributes)] // kube-derive repeats `printcolumn`, as intended
pub mod api;
pub mod audit;
pub mod cli;
pub mod controllers;
pub mod dns;
pub mod events;
pub mod fuzzing;
pub mod keypool;
pub mod leader;
pub mod metrics;
pub mod pki;
pub mod policy;
pub mod run;
pub mod server;
pub mod telemetry;
pub mod vocabulary;

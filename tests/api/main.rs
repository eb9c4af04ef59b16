//! Integration tests: the real server over real gRPC against real
//! PostgreSQL, each test with its own database.

mod admin;
mod archive;
mod auth;
mod bounded;
mod browser;
mod changes;
mod cli;
mod compression;
mod create;
mod duplicates;
mod get;
mod grpc_web;
mod helpers;
mod import;
mod limits;
mod load;
mod memory;
mod merges;
mod migrations;
mod parties;
mod partition;
mod raw;
mod replicas;
mod service;
mod stalled;
mod stream;
mod summary;
mod tls;
mod traces;
mod validation;
mod watch;

//! meetings: a gRPC service that stores structured records of diplomatic
//! meetings in PostgreSQL and streams them back by country pair.
//!
//! Layout: [`pb`] holds the generated wire types (client and server);
//! [`api`] implements the service on them; [`domain`] holds the validated
//! types; [`storage`] all SQL; [`startup`], [`config`], [`embedded`] and
//! [`telemetry`] build and run the process.

pub mod admin;
pub mod api;
pub mod auth;
pub mod changefeed;
pub mod cli;
pub mod config;
pub mod domain;
pub mod embedded;
pub mod error;
pub mod metrics;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod tls;

pub use error::Error;

/// Generated `meetings.v1` types, client and server.
pub mod pb {
    #![allow(clippy::derive_partial_eq_without_eq, missing_docs)]
    tonic::include_proto!("meetings.v1");
    // proto3 JSON mapping (camelCase out, both spellings in), as grpcurl.
    include!(concat!(env!("OUT_DIR"), "/meetings.v1.serde.rs"));

    /// Encoded descriptors of `meetings.v1`, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("meetings_descriptor");
}

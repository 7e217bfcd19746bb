//! breakglass-proto: the wire contract shared by the daemon and its clients.
//!
//! - [`pb`]: the gRPC service `breakglass.v1.BreakGlass`, generated from
//!   `breakglass/v1/breakglass.proto` by protox + tonic-prost-build (no system `protoc`).
//! - [`signing`]: the canonical, domain-separated payloads that callers sign and the
//!   daemon verifies. They are built here, once, and used by both sides; their bytes
//!   are pinned by tests. Nothing ever signs a protobuf encoding.
//! - [`transport`]: how a custodian's share travels to the daemon: sealed to the
//!   request's ephemeral X25519 key, bound to the request digest and the custodian.

pub mod signing;
pub mod transport;

/// Generated protobuf messages, client and server for `breakglass.v1`.
#[allow(
    missing_docs,
    clippy::all,
    clippy::unwrap_used,
    clippy::panic,
    clippy::expect_used
)]
pub mod pb {
    tonic::include_proto!("breakglass.v1");

    /// Encoded `FileDescriptorSet` of the breakglass protos, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/breakglass_descriptor.bin"));
}

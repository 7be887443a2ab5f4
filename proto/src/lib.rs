//! Generated gRPC clients and servers for the attestor and gate services.

pub mod attestor {
    pub mod v1 {
        tonic::include_proto!("stella.attestor.v1");
    }
}

pub mod gate {
    pub mod v1 {
        tonic::include_proto!("stella.gate.v1");
    }
}

/// Encoded `google.protobuf.FileDescriptorSet` of the attestor's proto, for the attestor's gRPC
/// server reflection and its list of methods.
pub const ATTESTOR_FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/attestor_descriptor.bin"));

/// Encoded `google.protobuf.FileDescriptorSet` of the gate's proto, for the gate's gRPC server
/// reflection and its list of methods.
pub const GATE_FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/gate_descriptor.bin"));

/// gRPC metadata key that carries the reason code of a rejected request.
pub const REASON_CODE_METADATA_KEY: &str = "stella-reason-code";

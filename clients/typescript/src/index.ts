// The meetings.v1 client for TypeScript: the generated messages and the
// MeetingService descriptor (protobuf-es), to use with a Connect transport
// (@connectrpc/connect-node's createGrpcTransport for Node, or
// @connectrpc/connect-web's createGrpcWebTransport in browsers), and
// google.rpc's error details.
export * from "./gen/meetings/v1/meetings_pb.js";
export * as rpc from "./gen/google/rpc/error_details_pb.js";

//! GetMeeting without re-encoding: the stored record is the canonical
//! encoding of the meeting, so the response is written as that record behind
//! the one-byte tag and length of `GetMeetingResponse.meeting`, instead of
//! decoding the record into a `pb::Meeting` (two dozen allocations for a
//! meeting like the AZERTAC example) and encoding it again.
//!
//! `MeetingServiceRouter` is the generated `MeetingServiceServer` with that
//! one method answered here, through tonic's own unary handling (framing,
//! message size limits, status trailers); every other method goes to the
//! generated server.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codec::{Codec, CompressionEncoding, EnabledCompressionEncodings, EncodeBuf, Encoder};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

use super::MeetingsApi;
use crate::pb;
use crate::pb::meeting_service_server::MeetingServiceServer;

const GET_MEETING: &str = "/meetings.v1.MeetingService/GetMeeting";

/// Message compressions accepted on requests and sent when the client
/// accepts them (`grpc-accept-encoding`), on every method, GetMeeting's
/// stored bytes included.
pub const COMPRESSION: [CompressionEncoding; 2] =
    [CompressionEncoding::Zstd, CompressionEncoding::Gzip];

/// An encoded `GetMeetingResponse`.
#[derive(Debug)]
pub struct EncodedGetMeetingResponse(Vec<u8>);

impl EncodedGetMeetingResponse {
    /// The response whose `meeting` (field 1) is `record`.
    pub fn from_record(record: &[u8]) -> Self {
        let mut out = Vec::with_capacity(record.len() + 6);
        prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut out);
        prost::encoding::encode_varint(record.len() as u64, &mut out);
        out.extend_from_slice(record);
        Self(out)
    }
}

/// Decodes requests with prost; writes encoded responses as they are.
#[derive(Debug)]
struct GetMeetingCodec;

type ProstGet = ProstCodec<pb::GetMeetingResponse, pb::GetMeetingRequest>;

impl Codec for GetMeetingCodec {
    type Encode = EncodedGetMeetingResponse;
    type Decode = pb::GetMeetingRequest;
    type Encoder = RawEncoder;
    type Decoder = <ProstGet as Codec>::Decoder;

    fn encoder(&mut self) -> Self::Encoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstGet::default().decoder()
    }
}

#[derive(Debug)]
struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = EncodedGetMeetingResponse;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        bytes::BufMut::put_slice(dst, &item.0);
        Ok(())
    }
}

struct GetMeeting(Arc<MeetingsApi>);

impl UnaryService<pb::GetMeetingRequest> for GetMeeting {
    type Response = EncodedGetMeetingResponse;
    type Future =
        futures_util::future::BoxFuture<'static, Result<Response<Self::Response>, Status>>;

    fn call(&mut self, request: Request<pb::GetMeetingRequest>) -> Self::Future {
        let api = self.0.clone();
        Box::pin(async move { api.get_meeting_encoded(request).await })
    }
}

/// The meetings.v1 service as served: the generated server, with GetMeeting
/// answered from stored bytes.
#[derive(Clone)]
pub struct MeetingServiceRouter {
    api: Arc<MeetingsApi>,
    generated: MeetingServiceServer<MeetingsApi>,
    max_decoding: usize,
    max_encoding: usize,
}

impl MeetingServiceRouter {
    pub fn new(api: MeetingsApi, max_decoding: usize, max_encoding: usize) -> Self {
        let api = Arc::new(api);
        let mut generated = MeetingServiceServer::from_arc(api.clone())
            .max_decoding_message_size(max_decoding)
            .max_encoding_message_size(max_encoding);
        for encoding in COMPRESSION {
            generated = generated
                .accept_compressed(encoding)
                .send_compressed(encoding);
        }
        Self {
            api,
            generated,
            max_decoding,
            max_encoding,
        }
    }
}

impl NamedService for MeetingServiceRouter {
    const NAME: &'static str = <MeetingServiceServer<MeetingsApi> as NamedService>::NAME;
}

impl tower::Service<http::Request<Body>> for MeetingServiceRouter {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = futures_util::future::BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() != GET_MEETING {
            return self.generated.call(request);
        }
        let method = GetMeeting(self.api.clone());
        let (max_decoding, max_encoding) = (self.max_decoding, self.max_encoding);
        Box::pin(async move {
            let mut encodings = EnabledCompressionEncodings::default();
            for encoding in COMPRESSION {
                encodings.enable(encoding);
            }
            let mut grpc = Grpc::new(GetMeetingCodec)
                .apply_compression_config(encodings, encodings)
                .apply_max_message_size_config(Some(max_decoding), Some(max_encoding));
            Ok(grpc.unary(method, request).await)
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn an_encoded_response_decodes_as_the_response_with_that_meeting() {
        let meeting = pb::Meeting {
            id: "0190c0a8-0000-7000-8000-000000000001".into(),
            summary: "x".repeat(300),
            topics: vec!["energy".into(), "demining".into()],
            ..Default::default()
        };
        let encoded = EncodedGetMeetingResponse::from_record(&meeting.encode_to_vec());
        let decoded = pb::GetMeetingResponse::decode(encoded.0.as_slice()).unwrap();
        assert_eq!(decoded.meeting, Some(meeting));
    }
}

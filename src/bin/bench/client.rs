//! The HTTP/2 load client: gRPC calls framed by hand over `h2`, as h2load
//! would send them, so that the load takes little of the CPU it shares
//! with the server.

#[allow(unused_imports)]
use super::*;

pub(crate) async fn raw_calls(
    addr: &str,
    connections: usize,
    callers: usize,
    method: &str,
    messages: Vec<Vec<u8>>,
) -> anyhow::Result<Sample> {
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        senders.push(h2_connect(addr).await?);
    }
    let uri = method_uri(addr, method)?;
    let method = method.to_owned();
    let frames = messages
        .iter()
        .map(|m| grpc_frame(m).map(bytes::Bytes::from))
        .collect::<anyhow::Result<Vec<_>>>()?;
    concurrently(callers, frames, move |w, frame| {
        let sender = senders[w % senders.len()].clone();
        let request = grpc_request(uri.clone());
        let method = method.clone();
        async move {
            let mut sender = sender.ready().await?;
            let (response, mut send) = sender.send_request(request?, false)?;
            send.send_data(frame, true)?;
            let (received, _, status) = grpc_response(response.await?, false).await?;
            if status.as_deref() != Some("0") || received <= 5 {
                bail!("{method}: grpc-status {status:?}, {received} bytes");
            }
            Ok(())
        }
    })
    .await
}

/// One HTTP/2 connection, without TCP's Nagle delay.
pub(crate) async fn h2_connect(
    addr: &str,
) -> anyhow::Result<h2::client::SendRequest<bytes::Bytes>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (sender, connection) = h2::client::handshake(tcp).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// The path of `method` of the service on the server at `addr`.
pub(crate) fn method_uri(addr: &str, method: &str) -> anyhow::Result<http::Uri> {
    Ok(format!("http://{addr}/meetings.v1.MeetingService/{method}").parse()?)
}

/// The headers of a gRPC call to `uri` (see `method_uri`).
pub(crate) fn grpc_request(uri: http::Uri) -> anyhow::Result<http::Request<()>> {
    Ok(http::Request::post(uri)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())?)
}

/// A message with gRPC's 5-byte prefix (uncompressed, length).
pub(crate) fn grpc_frame(message: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut frame = Vec::with_capacity(5 + message.len());
    frame.push(0);
    frame.extend_from_slice(&u32::try_from(message.len())?.to_be_bytes());
    frame.extend_from_slice(message);
    Ok(frame)
}

/// A call's response: its length, its body if `keep` (unparsed), and its
/// grpc-status (from the trailers, or from the headers of a call that
/// failed at once).
pub(crate) async fn grpc_response(
    response: http::Response<h2::RecvStream>,
    keep: bool,
) -> anyhow::Result<(usize, Vec<u8>, Option<String>)> {
    let status = |h: &http::HeaderMap| {
        h.get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let early = status(response.headers());
    let mut body = response.into_body();
    let mut received = 0;
    let mut kept = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        received += chunk.len();
        if keep {
            kept.extend_from_slice(&chunk);
        }
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let trailers = body.trailers().await?;
    Ok((
        received,
        kept,
        early.or_else(|| trailers.as_ref().and_then(status)),
    ))
}

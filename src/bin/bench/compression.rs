//! Bytes on the wire and rates with and without compression: a
//! 1,000-meeting ListMeetings page and the whole pair stream, each read
//! uncompressed, with gzip and with zstd, side by side in one run. The
//! bytes are counted by a TCP proxy between the client and the service,
//! so they are what crosses the network (frames, headers and all).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::bail;
use meetings::pb;
use meetings::pb::meeting_service_client::MeetingServiceClient;
use tokio::net::{TcpListener, TcpStream};
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;

use crate::report::median;
use crate::{Bench, STREAM_PAIR};

/// Forwards connections to `target`, counting the bytes sent back.
struct CountingProxy {
    addr: std::net::SocketAddr,
    received: Arc<AtomicU64>,
}

impl CountingProxy {
    async fn start(target: String) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let received = Arc::new(AtomicU64::new(0));
        let counter = received.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let target = target.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let up = tokio::io::copy(&mut client_read, &mut server_write);
                    // Counted as it arrives, not when the connection ends.
                    let down = async {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            match server_read.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    counter.fetch_add(n as u64, Ordering::Relaxed);
                                    if client_write.write_all(&buf[..n]).await.is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = client_write.shutdown().await;
                    };
                    let _ = tokio::join!(up, down);
                });
            }
        });
        Ok(Self { addr, received })
    }

    /// A fresh connection through the proxy.
    async fn channel(&self) -> anyhow::Result<Channel> {
        Ok(Channel::from_shared(format!("http://{}", self.addr))?
            .connect()
            .await?)
    }

    fn take(&self) -> u64 {
        self.received.swap(0, Ordering::Relaxed)
    }
}

const PAGE: i32 = 1_000;
const PAGES: usize = 20;

impl Bench {
    /// Needs the pair of the stream figures loaded (`in_pair` meetings).
    pub(crate) async fn compression(&mut self, in_pair: usize) -> anyhow::Result<()> {
        let proxy = CountingProxy::start(self.server.addr().to_owned()).await?;
        let encodings = [
            ("none", None),
            ("gzip", Some(CompressionEncoding::Gzip)),
            ("zstd", Some(CompressionEncoding::Zstd)),
        ];
        for (name, encoding) in encodings {
            let mut page_bytes = Vec::new();
            let mut page_rates = Vec::new();
            let mut stream_bytes = Vec::new();
            let mut stream_rates = Vec::new();
            let mut page_meetings = 0;
            for _ in 0..self.rounds {
                let channel = proxy.channel().await?;
                let mut client =
                    MeetingServiceClient::new(channel).max_decoding_message_size(64 << 20);
                if let Some(encoding) = encoding {
                    client = client.accept_compressed(encoding);
                }
                proxy.take();
                let started = Instant::now();
                for _ in 0..PAGES {
                    let page = client
                        .list_meetings(pb::ListMeetingsRequest {
                            page_size: PAGE,
                            country_code: STREAM_PAIR.0.into(),
                            ..Default::default()
                        })
                        .await?
                        .into_inner();
                    // A page ends early at the server's page budget (1 MiB
                    // of records): the figure says how many it held.
                    if page.meetings.is_empty() {
                        bail!("an empty page: the pair is not loaded");
                    }
                    page_meetings = page.meetings.len();
                }
                page_rates.push(PAGES as f64 / started.elapsed().as_secs_f64());
                page_bytes.push(proxy.take() as f64 / PAGES as f64);

                let started = Instant::now();
                let mut stream = client
                    .stream_meetings_by_country_pair(pb::StreamMeetingsByCountryPairRequest {
                        country_a: STREAM_PAIR.0.into(),
                        country_b: STREAM_PAIR.1.into(),
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                let mut records = 0;
                while stream.message().await?.is_some() {
                    records += 1;
                }
                if records != in_pair {
                    bail!("the stream returned {records} meetings, expected {in_pair}");
                }
                stream_rates.push(records as f64 / started.elapsed().as_secs_f64());
                stream_bytes.push(proxy.take() as f64 / records as f64);
            }
            self.report.add_figure(
                &format!("ListMeetings, pages of {page_meetings}, {name}: bytes a page"),
                median(&page_bytes),
                "B",
            );
            self.report.add_figure(
                &format!("  pages/s, {name}"),
                median(&page_rates),
                "pages/s",
            );
            self.report.add_figure(
                &format!(
                    "StreamMeetingsByCountryPair, {in_pair} meetings, {name}: bytes a meeting"
                ),
                median(&stream_bytes),
                "B",
            );
            self.report.add_figure(
                &format!("  meetings/s, {name}"),
                median(&stream_rates),
                "meetings/s",
            );
        }
        Ok(())
    }
}

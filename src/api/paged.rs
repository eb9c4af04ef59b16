//! One skeleton for the service's response streams (a pair's meetings, a
//! watcher's events): pages from a `PageSource`, sent a row at a time as
//! the client reads; a page is read only when the one in hand is sent.
//! The stream ends after an error, and with UNAVAILABLE / SHUTTING_DOWN on
//! shutdown, also while a page is being read or awaited. It is polled by
//! the connection's own task, so rows go from the page in hand straight to
//! HTTP/2 frames, with no channel or task in between.

use std::future::Future;

use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tracing::Instrument;

use crate::error::{Error, Result};

/// Where a stream's rows come from.
pub(super) trait PageSource: Send + 'static {
    type Row: Send;
    type Item: Send;

    /// The next page of rows, or `None` when the stream is complete. A
    /// source with nothing new yet waits inside (a watcher, for events).
    fn next_page(&mut self) -> impl Future<Output = Result<Option<Vec<Self::Row>>>> + Send;

    /// The message for a row about to be sent; the source's position
    /// moves past the row.
    fn item(&mut self, row: Self::Row) -> Result<Self::Item>;
}

struct State<S: PageSource> {
    source: S,
    page: std::vec::IntoIter<S::Row>,
    /// An error was sent, or the end reached: nothing follows.
    ended: bool,
    shutdown: CancellationToken,
}

/// The stream of `source`'s rows as messages.
pub(super) fn paged<S: PageSource>(
    source: S,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<S::Item, Status>> + Send {
    let state = State {
        source,
        page: Vec::new().into_iter(),
        ended: false,
        shutdown,
    };
    let span = tracing::Span::current();
    futures_util::stream::unfold(state, move |mut st| {
        async move {
            loop {
                if st.ended {
                    return None;
                }
                if st.shutdown.is_cancelled() {
                    st.ended = true;
                    return Some((Err(Error::ShuttingDown.into()), st));
                }
                if let Some(row) = st.page.next() {
                    let item = st.source.item(row).map_err(Status::from);
                    st.ended = item.is_err();
                    return Some((item, st));
                }
                let page = tokio::select! {
                    // The top of the loop reports the shutdown.
                    () = st.shutdown.cancelled() => continue,
                    page = st.source.next_page() => page,
                };
                match page {
                    Ok(Some(rows)) => st.page = rows.into_iter(),
                    Ok(None) => return None,
                    Err(e) => {
                        st.ended = true;
                        return Some((Err(e.into()), st));
                    }
                }
            }
        }
        .instrument(span.clone())
    })
}

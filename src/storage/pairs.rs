//! Country pairs: the pages of a pair stream and a pair's summary.

use super::{
    AnniversaryCount, PAGE_BYTES, PairCounts, PairPage, PairQuery, PairSummary, RecordRow, Storage,
    TopicCount,
};
use crate::domain::CountryPair;
use crate::error::Result;

const PAIR_PAGE_ASC: &str = include_str!("queries/pair_page_asc.sql");
const PAIR_PAGE_DESC: &str = include_str!("queries/pair_page_desc.sql");
const PAIR_TOP_TOPICS: &str = include_str!("queries/pair_top_topics.sql");
const PAIR_ANNIVERSARIES: &str = include_str!("queries/pair_anniversaries.sql");

impl Storage {
    /// One bounded page of a pair lookup, in stream order. Bounded pages keep
    /// a pool connection only while a page is read, so a slow or vanished
    /// client never holds one.
    #[tracing::instrument(name = "storage.pair_page", skip_all, fields(limit = q.limit))]
    /// A page ends early once its records pass `PAGE_BYTES`, so that a
    /// stream holds about that much at most whatever the meetings' sizes.
    pub async fn pair_page(&self, q: &PairQuery) -> Result<PairPage> {
        use futures_util::TryStreamExt;
        let sql = if q.newest_first {
            PAIR_PAGE_DESC
        } else {
            PAIR_PAGE_ASC
        };
        let mut rows = sqlx::query_as::<_, RecordRow>(sql)
            .bind(q.pair.low().to_string())
            .bind(q.pair.high().to_string())
            .bind(q.after.date)
            .bind(q.after.id)
            .bind(q.bound)
            .bind(i64::from(q.limit))
            .fetch(&self.pool);
        let mut page = PairPage {
            rows: Vec::new(),
            more: false,
        };
        let mut bytes = 0;
        while let Some(row) = rows.try_next().await? {
            bytes += row.record.len();
            page.rows.push(row);
            if bytes >= PAGE_BYTES {
                page.more = true;
                break;
            }
        }
        page.more |= page.rows.len() >= q.limit as usize;
        Ok(page)
    }
    /// Counts, dates, top topics and anniversaries of a pair's meetings.
    #[tracing::instrument(name = "storage.pair_summary", skip(self))]
    pub async fn pair_summary(&self, pair: CountryPair, top_topics: u32) -> Result<PairSummary> {
        let counts: PairCounts = sqlx::query_as(
            "SELECT count(*) AS count, min(date) AS first, max(date) AS last \
             FROM meeting_country_pairs WHERE country_low = $1 AND country_high = $2",
        )
        .bind(pair.low().to_string())
        .bind(pair.high().to_string())
        .fetch_one(&self.pool)
        .await?;
        let topics: Vec<TopicCount> = sqlx::query_as(PAIR_TOP_TOPICS)
            .bind(pair.low().to_string())
            .bind(pair.high().to_string())
            .bind(i64::from(top_topics))
            .fetch_all(&self.pool)
            .await?;
        let anniversaries: Vec<AnniversaryCount> = sqlx::query_as(PAIR_ANNIVERSARIES)
            .bind(pair.low().to_string())
            .bind(pair.high().to_string())
            .fetch_all(&self.pool)
            .await?;
        Ok(PairSummary {
            counts,
            topics,
            anniversaries,
        })
    }
}

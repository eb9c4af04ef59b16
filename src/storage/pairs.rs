//! Country pairs: the pages of a pair stream and a pair's summary.

use super::model::PairRow;
use super::{
    AnniversaryCount, IdRecord, PAGE_BYTES, PairCounts, PairPage, PairQuery, PairSummary,
    RecordRow, Storage, TopicCount,
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
        let mut rows = sqlx::query_as::<_, PairRow>(sql)
            .bind(q.pair.low().to_string())
            .bind(q.pair.high().to_string())
            .bind(q.after.date)
            .bind(q.after.id)
            .bind(q.bound)
            .bind(i64::from(q.limit))
            .fetch(&self.pool);
        let mut read = Vec::new();
        let mut bytes = 0;
        let mut cut = false;
        while let Some(row) = rows.try_next().await? {
            bytes += row.record.as_ref().map_or(0, Vec::len);
            read.push(row);
            if bytes >= PAGE_BYTES {
                cut = true;
                break;
            }
        }
        drop(rows);
        // The records the pair rows do not copy, by primary key: a second
        // statement for the few meetings of many countries keeps the page
        // query a plain range scan of the pair index.
        let missing: Vec<uuid::Uuid> = read
            .iter()
            .filter(|r| r.record.is_none())
            .map(|r| r.id)
            .collect();
        let mut found = std::collections::HashMap::new();
        if !missing.is_empty() {
            let records: Vec<IdRecord> =
                sqlx::query_as("SELECT id, record FROM meetings WHERE id = ANY($1)")
                    .bind(&missing)
                    .fetch_all(&self.pool)
                    .await?;
            found.extend(records.into_iter().map(|r| (r.id, r.record)));
        }
        let mut page = PairPage {
            rows: Vec::with_capacity(read.len()),
            more: cut || read.len() >= q.limit as usize,
        };
        for row in read {
            // A meeting deleted between the two statements is left out.
            if let Some(record) = row.record.or_else(|| found.remove(&row.id)) {
                page.rows.push(RecordRow {
                    date: row.date,
                    id: row.id,
                    record,
                });
            }
        }
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

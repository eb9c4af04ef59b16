//! Country pairs: the pages of a pair stream and a pair's summary.

use std::collections::HashMap;

use futures_util::TryStreamExt;
use sqlx::PgConnection;
use uuid::Uuid;

use super::model::PairRow;
use super::{IdRecord, PAGE_BYTES, PairPage, PairQuery, RECORDS_BY_ID, RecordRow, Storage, begin};
use crate::error::Result;

const PAIR_PAGE_ASC: &str = include_str!("queries/pair_page_asc.sql");
const PAIR_PAGE_DESC: &str = include_str!("queries/pair_page_desc.sql");
/// A read-only transaction whose statements all see one snapshot.
pub(super) const SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

impl Storage {
    /// One bounded page of a pair lookup, in stream order. Bounded pages keep
    /// a pool connection only while a page is read, so a slow or vanished
    /// client never holds one. A page also ends once its records pass
    /// `PAGE_BYTES`, so that a stream holds about that much at most,
    /// whatever the meetings' sizes.
    #[tracing::instrument(name = "storage.pair_page", skip_all, fields(limit = q.limit))]
    pub async fn pair_page(&self, q: &PairQuery) -> Result<PairPage> {
        let mut conn = self.pool.acquire().await?;
        let rows = pair_rows(&mut conn, q).await?;
        if rows.iter().all(|r| r.record.is_some()) {
            return Ok(page_of(rows, q, HashMap::new()));
        }
        // Some pair rows keep no copy of their record (meetings of many
        // countries): read the rows again with those records in one
        // snapshot, so that a record matches the row it is sent for. A
        // plain range scan of the pair index stays the common case; a join
        // in it made the planner slow every page of a large pair.
        drop(conn);
        let mut tx = begin(&self.pool, Some(SNAPSHOT)).await?;
        let rows = pair_rows(&mut tx, q).await?;
        let missing: Vec<Uuid> = rows
            .iter()
            .filter(|r| r.record.is_none())
            .map(|r| r.id)
            .collect();
        let mut found = HashMap::new();
        let mut bytes: usize = rows
            .iter()
            .filter_map(|r| r.record.as_ref())
            .map(Vec::len)
            .sum();
        let mut records = sqlx::query_as::<_, IdRecord>(RECORDS_BY_ID)
            .bind(&missing)
            .fetch(&mut *tx);
        while let Some(r) = records.try_next().await? {
            bytes += r.record.len();
            found.insert(r.id, r.record);
            if bytes >= PAGE_BYTES {
                break;
            }
        }
        drop(records);
        tx.commit().await?;
        Ok(page_of(rows, q, found))
    }
}

/// The rows of one pair page, as the index has them, up to `PAGE_BYTES` of
/// copied records.
async fn pair_rows(conn: &mut PgConnection, q: &PairQuery) -> Result<Vec<PairRow>> {
    let sql = if q.newest_first {
        PAIR_PAGE_DESC
    } else {
        PAIR_PAGE_ASC
    };
    let mut rows = sqlx::query_as::<_, PairRow>(sql)
        .bind(q.pair.low().key())
        .bind(q.pair.high().key())
        .bind(q.after.date)
        .bind(q.after.id)
        .bind(q.bound)
        .bind(i64::from(q.limit))
        .bind(q.ends_from)
        .fetch(&mut *conn);
    let mut read = Vec::new();
    let mut bytes = 0;
    while let Some(row) = rows.try_next().await? {
        bytes += row.record.as_ref().map_or(0, Vec::len);
        read.push(row);
        if bytes >= PAGE_BYTES {
            break;
        }
    }
    Ok(read)
}

/// The page of `rows`, each with its record (copied, or among `found`).
/// It ends before the first row whose record was not read (the byte budget
/// ran out) and then says more follow, as it does after a full page.
fn page_of(rows: Vec<PairRow>, q: &PairQuery, mut found: HashMap<Uuid, Vec<u8>>) -> PairPage {
    let full = rows.len() >= q.limit as usize;
    let read = rows.len();
    let mut page = PairPage {
        rows: Vec::with_capacity(read),
        more: full,
    };
    let mut bytes = 0;
    for row in rows {
        let Some(record) = row.record.or_else(|| found.remove(&row.id)) else {
            page.more = true;
            break;
        };
        bytes += record.len();
        page.rows.push(RecordRow {
            date: row.date,
            id: row.id,
            record,
        });
        if bytes >= PAGE_BYTES {
            page.more = true;
            break;
        }
    }
    page
}

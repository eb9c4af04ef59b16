//! The phases of a run, one function each; each measures its figure next
//! to its reference, round by round, and adds it to the report.

#[allow(unused_imports)]
use super::*;

impl Bench {
    /// CreateMeeting at 32 and at 1 client, next to the same statement
    /// through sqlx at the same concurrency.
    pub(crate) async fn creates(&mut self) -> anyhow::Result<()> {
        for (clients, n, name) in [
            (
                CLIENTS,
                self.plan.creates_concurrent,
                "CreateMeeting, 32 clients",
            ),
            (1, self.plan.creates_single, "CreateMeeting, 1 client"),
        ] {
            let mut svc = Vec::new();
            let mut reference = Vec::new();
            for _ in 0..self.rounds {
                let batch = sample_meetings(self.seq, n, None);
                self.seq += n;
                svc.push(run_creates(self.server.addr(), self.connections, clients, batch).await?);
                let batch = sample_meetings(self.seq, n, None);
                self.seq += n;
                reference.push(run_direct_inserts(&self.storage, clients, batch).await?);
            }
            self.report.add_rates(
                name,
                "meetings/s",
                &svc,
                &reference,
                0.75,
                "the same INSERT through sqlx",
            );
        }

        Ok(())
    }

    /// ImportMeetings from one client, next to the same rows through the
    /// service's multi-row insert; and against one-by-one CreateMeeting from
    /// one client, run just before each import round so that each ratio
    /// compares two rates taken in the same minute on the same data; its
    /// median is quoted. The database settles before each of the two.
    pub(crate) async fn import(&mut self) -> anyhow::Result<()> {
        let mut svc = Vec::new();
        let mut reference = Vec::new();
        let mut ratios = Vec::new();
        let postmaster = self.db.postmaster_pid();
        let mut cpu_us = Vec::new();
        for round in 1..=self.rounds {
            let batch = sample_meetings(self.seq, 3 * self.plan.creates_single, None);
            self.seq += 3 * self.plan.creates_single;
            settle(&self.storage).await;
            let single = run_creates(self.server.addr(), 1, 1, batch).await?;
            settle(&self.storage).await;
            let cpu = Cpu::read(postmaster, self.server.pid());
            let wal = wal_stats(&self.storage).await;
            let import = run_import(self.server.addr(), self.seq, self.plan.imports, None).await?;
            let import_cpu = cpu.map(|c| c.per_record(self.plan.imports));
            if let (Ok(before), Ok(after)) = (wal, wal_stats(&self.storage).await) {
                let per = |i: usize| (after[i] - before[i]) as f64 / self.plan.imports as f64;
                println!(
                    "  WAL a record: {:.0} bytes, {:.2} full-page images, {:.1} records",
                    per(0),
                    per(1),
                    per(2)
                );
            }
            self.seq += self.plan.imports;
            let cpu = Cpu::read(postmaster, None);
            reference.push(run_direct_batches(&self.storage, self.seq, self.plan.imports).await?);
            let reference_cpu = cpu.map(|c| c.per_record(self.plan.imports));
            self.seq += self.plan.imports;
            println!(
                "round {round}: ImportMeetings {:.0} records/s, CreateMeeting 1 client {:.0}/s: {:.1}×",
                import.rate,
                single.rate,
                import.rate / single.rate
            );
            if let (Some((db, service)), Some((db_reference, _))) = (import_cpu, reference_cpu) {
                println!(
                    "  CPU µs a record: PostgreSQL {db:.0} (reference {db_reference:.0}), service {service:.0}"
                );
                cpu_us.push((db, db_reference, service));
            }
            ratios.push(import.rate / single.rate);
            svc.push(import);
        }
        self.report.add_rates(
            &format!("ImportMeetings, {} records, 1 client", self.plan.imports),
            "records/s",
            &svc,
            &reference,
            0.75,
            &format!("the same rows through the multi-row INSERT, {IMPORT_BATCH} a statement"),
        );
        self.report.add_figure(
            "  ImportMeetings / CreateMeeting 1 client, same round (target ≥ 10)",
            median(&ratios),
            "×",
        );
        if !cpu_us.is_empty() {
            let column =
                |f: fn(&(f64, f64, f64)) -> f64| median(&cpu_us.iter().map(f).collect::<Vec<_>>());
            self.report.add_figure(
                "  PostgreSQL CPU a record, ImportMeetings",
                column(|c| c.0),
                "µs",
            );
            self.report.add_figure(
                "  PostgreSQL CPU a record, reference",
                column(|c| c.1),
                "µs",
            );
            self.report.add_figure(
                "  service CPU a record, ImportMeetings",
                column(|c| c.2),
                "µs",
            );
        }
        Ok(())
    }

    /// GetMeeting at 32 clients, next to the same SELECT through sqlx.
    pub(crate) async fn gets(&mut self) -> anyhow::Result<()> {
        if self.seq == 0 {
            run_import(self.server.addr(), self.seq, 10_000, None).await?;
            self.seq += 10_000;
        }
        let ids = sample_ids(&self.storage, 10_000).await?;
        let mut svc = Vec::new();
        let mut reference = Vec::new();
        for _ in 0..self.rounds {
            svc.push(
                run_gets(
                    self.server.addr(),
                    self.connections,
                    CLIENTS,
                    &ids,
                    self.plan.gets,
                )
                .await?,
            );
            reference.push(run_direct_gets(&self.storage, &ids, self.plan.gets).await?);
        }
        self.report.add_rates(
            "GetMeeting, 32 clients",
            "calls/s",
            &svc,
            &reference,
            0.75,
            "the same SELECT through sqlx",
        );
        Ok(())
    }

    /// StreamMeetingsByCountryPair over one pair, next to psql's \copy of
    /// the same full records. Returns how many meetings the pair has.
    /// Loads the stream figures' pair; returns how many meetings it has.
    pub(crate) async fn load_stream_pair(&mut self) -> anyhow::Result<usize> {
        let load = load_pair(self.server.addr(), self.plan.stream_meetings, &mut self.seq).await?;
        println!(
            "loaded {} {}-{} meetings at {:.0}/s through ImportMeetings",
            self.plan.stream_meetings, STREAM_PAIR.0, STREAM_PAIR.1, load
        );
        Ok(self.plan.stream_meetings)
    }

    pub(crate) async fn stream(&mut self) -> anyhow::Result<usize> {
        self.load_stream_pair().await?;
        let mut svc = Vec::new();
        let mut reference = Vec::new();
        let mut first = Vec::new();
        for _ in 0..self.rounds {
            let s = run_stream(&self.channel, None).await?;
            if s.records != self.plan.stream_meetings {
                bail!(
                    "the stream returned {} meetings, expected {}",
                    s.records,
                    self.plan.stream_meetings
                );
            }
            first.push(s.first_record.as_secs_f64() * 1e3);
            svc.push(Sample::rate(s.records, s.elapsed));
            reference.push(run_psql_copy(&self.db.options, self.plan.stream_meetings)?);
        }
        self.report.add_rates(
            &format!(
                "StreamMeetingsByCountryPair, {} meetings",
                self.plan.stream_meetings
            ),
            "meetings/s",
            &svc,
            &reference,
            1.5,
            "psql \\copy of the same full records to /dev/null",
        );
        self.report
            .add_figure("  time to first record", median(&first), "ms");
        Ok(self.plan.stream_meetings)
    }

    /// Memory of the server process while it streams a large pair, of
    /// which `in_pair` meetings are loaded already.
    /// The same meetings reported three times, spelled differently, as
    /// three ImportMeetings streams: with MERGE they end as one meeting
    /// each, with three sources; with KEEP (the reference, the same
    /// streams side by side) as three meetings each.
    pub(crate) async fn merge(&mut self) -> anyhow::Result<()> {
        let n = self.plan.merge_meetings;
        let mut merged = Vec::new();
        let mut kept = Vec::new();
        for round in 1..=self.rounds {
            for policy in [pb::DuplicatePolicy::Keep, pb::DuplicatePolicy::Merge] {
                let streams: Vec<Vec<pb::Meeting>> = (0..3)
                    .map(|spelling| report_stream(self.seq, n, spelling))
                    .collect();
                self.seq += n;
                settle(&self.storage).await;
                let started = Instant::now();
                let mut counts = (0, 0);
                let mut rates = Vec::new();
                for stream in streams {
                    let one = Instant::now();
                    let report = run_import_with(self.server.addr(), stream, policy).await?;
                    rates.push(format!("{:.0}", n as f64 / one.elapsed().as_secs_f64()));
                    counts.0 += report.created_count;
                    counts.1 += report.merged_count;
                }
                let sample = Sample::rate(3 * n, started.elapsed());
                let expected = match policy {
                    pb::DuplicatePolicy::Merge => (n as u64, 2 * n as u64),
                    _ => (3 * n as u64, 0),
                };
                if counts != expected {
                    bail!("{policy:?} import of 3 × {n} reports: (created, merged) {counts:?}");
                }
                println!(
                    "round {round}: ImportMeetings of 3 × {n} reports, {policy:?}: {:.0} records/s \
                     (streams: {} records/s)",
                    sample.rate,
                    rates.join(", ")
                );
                match policy {
                    pb::DuplicatePolicy::Merge => merged.push(sample),
                    _ => kept.push(sample),
                }
            }
        }
        self.report.add_rates(
            &format!("ImportMeetings MERGE, 3 × {n} reports of {n} meetings"),
            "records/s",
            &merged,
            &kept,
            0.5,
            "the same three streams with KEEP",
        );
        Ok(())
    }

    pub(crate) async fn rss(&mut self, pid: u32, in_pair: usize) -> anyhow::Result<()> {
        if self.plan.rss_meetings > in_pair {
            load_pair(
                self.server.addr(),
                self.plan.rss_meetings - in_pair,
                &mut self.seq,
            )
            .await?;
        }
        let rest = rss_kib(pid)?;
        let peak = Arc::new(Mutex::new(rest));
        let sampler = {
            let peak = peak.clone();
            tokio::spawn(async move {
                loop {
                    if let Ok(kib) = rss_kib(pid) {
                        let mut p = peak.lock().await;
                        *p = (*p).max(kib);
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        let s = run_stream(&self.channel, None).await?;
        sampler.abort();
        let peak = *peak.lock().await;
        self.report
            .add_figure("server RSS at rest", rest as f64 / 1024.0, "MiB");
        self.report.add_figure(
            &format!(
                "server RSS peak above rest, streaming {} meetings (target < 64)",
                s.records
            ),
            peak.saturating_sub(rest) as f64 / 1024.0,
            "MiB",
        );
        Ok(())
    }
}

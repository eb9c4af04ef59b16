//! The report: medians of the rounds, ratios, targets, JSON.

#[allow(unused_imports)]
use super::*;

#[derive(Default)]
pub(crate) struct Report {
    pub(crate) rows: Vec<Row>,
}

pub(crate) struct Row {
    pub(crate) what: String,
    pub(crate) unit: &'static str,
    pub(crate) service: f64,
    pub(crate) reference: Option<(f64, f64, String)>,
    pub(crate) latency: Option<(f64, f64)>,
}

pub(crate) fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

impl Report {
    pub(crate) fn add_rates(
        &mut self,
        what: &str,
        unit: &'static str,
        svc: &[Sample],
        reference: &[Sample],
        target: f64,
        reference_name: &str,
    ) {
        let service = median(&svc.iter().map(|s| s.rate).collect::<Vec<_>>());
        let reference_rate = median(&reference.iter().map(|s| s.rate).collect::<Vec<_>>());
        let latency = svc[0].p50_ms.map(|_| {
            (
                median(&svc.iter().filter_map(|s| s.p50_ms).collect::<Vec<_>>()),
                median(&svc.iter().filter_map(|s| s.p99_ms).collect::<Vec<_>>()),
            )
        });
        self.rows.push(Row {
            what: what.into(),
            unit,
            service,
            reference: Some((reference_rate, target, reference_name.to_owned())),
            latency,
        });
    }

    pub(crate) fn add_figure(&mut self, what: &str, value: f64, unit: &'static str) {
        self.rows.push(Row {
            what: what.into(),
            unit,
            service: value,
            reference: None,
            latency: None,
        });
    }

    /// A read's latency, p50 and p99, in ms.
    pub(crate) fn add_latency(&mut self, what: &str, p50: f64, p99: f64) {
        self.rows.push(Row {
            what: what.into(),
            unit: "ms (p50)",
            service: p50,
            reference: None,
            latency: Some((p50, p99)),
        });
    }

    pub(crate) fn print(&self) {
        println!();
        println!("| what | service | p50 / p99 ms | reference | ratio | target |");
        println!("|---|---|---|---|---|---|");
        for r in &self.rows {
            let latency = r
                .latency
                .map_or(String::new(), |(p50, p99)| format!("{p50:.2} / {p99:.2}"));
            match &r.reference {
                Some((reference, target, name)) => println!(
                    "| {} | {:.0} {} | {latency} | {:.0} ({name}) | {:.2} | ≥ {target} |",
                    r.what,
                    r.service,
                    r.unit,
                    reference,
                    r.service / reference
                ),
                None => println!(
                    "| {} | {:.1} {} | {latency} | | | |",
                    r.what, r.service, r.unit
                ),
            }
        }
    }

    pub(crate) fn json(&self) -> String {
        let rows: Vec<String> = self
            .rows
            .iter()
            .map(|r| {
                let mut fields = vec![
                    format!("\"what\": {:?}", r.what),
                    format!("\"unit\": {:?}", r.unit),
                    format!("\"service\": {:.3}", r.service),
                ];
                if let Some((reference, target, name)) = &r.reference {
                    fields.push(format!("\"reference\": {reference:.3}"));
                    fields.push(format!("\"reference_is\": {name:?}"));
                    fields.push(format!("\"ratio\": {:.3}", r.service / reference));
                    fields.push(format!("\"target_ratio\": {target}"));
                }
                if let Some((p50, p99)) = r.latency {
                    fields.push(format!("\"p50_ms\": {p50:.3}"));
                    fields.push(format!("\"p99_ms\": {p99:.3}"));
                }
                format!("  {{{}}}", fields.join(", "))
            })
            .collect();
        format!("[\n{}\n]\n", rows.join(",\n"))
    }
}

//! `sithsctl audit -o html`: one self-contained HTML file (inline CSS and SVG, no script,
//! font or image from elsewhere) for the people who decide: summary cards, an expiry
//! timeline, SITHS spend by month and the findings by severity.
//!
//! Pure: the caller gives the reports, certificates and the evaluation time. The rules
//! stay where they are ([`super::findings`], `policy::cost`, `policy::renewal`); this
//! module lays them out. Everything from the cluster reaches the page through the askama
//! template (`operator/templates/report.html`), which escapes it.

use std::collections::BTreeMap;

use askama::Template;
use jiff::{SignedDuration, Span, Timestamp, civil::Date, tz::TimeZone};

use super::{CertClass, Report, Severity, timeline::TimelineCert};
use crate::policy::cost;

/// Public TLS certificate lifetimes fall to 100 days on this date.
pub const PUBLIC_100_DAYS: Date = jiff::civil::date(2027, 3, 15);
/// Public TLS certificate lifetimes fall to 47 days on this date.
pub const PUBLIC_47_DAYS: Date = jiff::civil::date(2029, 3, 15);

/// Rows per timeline chart: a namespace with more certificates gets several pages, so no
/// picture grows past about 2 000 pixels.
pub const PAGE_ROWS: usize = 100;
/// Timeline groups start open (printed) up to this many certificates in the report;
/// above it they start closed, one `<details>` per cluster and namespace.
pub const OPEN_LIMIT: usize = 200;

/// Width of the label column of the timeline, SVG units.
pub const LABEL_WIDTH: f64 = 300.0;
/// Width of the plot area of the timeline, SVG units.
pub const PLOT_WIDTH: f64 = 660.0;
/// Height of the header (year ticks and marker labels) above the rows.
pub const HEADER_HEIGHT: f64 = 36.0;
/// Height of one row.
pub const ROW_HEIGHT: f64 = 18.0;

/// One cluster's audit, or why it has none.
#[derive(Debug, Clone)]
pub struct ClusterAudit {
    /// The cluster's name (kubeconfig context, `--cluster NAME`, or empty for one).
    pub name: String,
    /// The audit, unless the cluster did not answer.
    pub report: Option<Report>,
    /// Every certificate, for the timeline.
    pub certificates: Vec<TimelineCert>,
    /// Why there is no report.
    pub error: Option<String>,
}

/// The time axis of the timeline: from 90 days before `now` to the later of six months
/// after the 47-day step and two years after `now`, so every marker is on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Axis {
    /// Left edge.
    pub start: Timestamp,
    /// Right edge.
    pub end: Timestamp,
}

fn midnight(d: Date) -> Timestamp {
    d.to_zoned(TimeZone::UTC)
        .map_or(Timestamp::UNIX_EPOCH, |z| z.timestamp())
}

fn day(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%d").to_string()
}

fn days_of(d: SignedDuration) -> i64 {
    d.as_secs() / 86_400
}

impl Axis {
    /// The axis for a report evaluated at `now`.
    pub fn around(now: Timestamp) -> Axis {
        let start = now - SignedDuration::from_hours(90 * 24);
        let after_47 = midnight(PUBLIC_47_DAYS) + SignedDuration::from_hours(183 * 24);
        let two_years = now + SignedDuration::from_hours(730 * 24);
        Axis {
            start,
            end: after_47.max(two_years),
        }
    }

    /// Horizontal position of `t` in the plot, clamped to its edges.
    pub fn x(&self, t: Timestamp) -> f64 {
        let span = self.end.duration_since(self.start).as_secs_f64();
        let at = t.duration_since(self.start).as_secs_f64();
        LABEL_WIDTH + (at / span).clamp(0.0, 1.0) * PLOT_WIDTH
    }

    /// 1 January of every year inside the axis.
    pub fn year_ticks(&self) -> Vec<(i16, f64)> {
        let first = self.start.to_zoned(TimeZone::UTC).year() + 1;
        let last = self.end.to_zoned(TimeZone::UTC).year();
        (first..=last)
            .map(|y| (y, self.x(midnight(jiff::civil::date(y, 1, 1)))))
            .collect()
    }
}

fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// A vertical marker of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// `today`, `public-100` or `public-47`.
    pub id: &'static str,
    /// Label.
    pub label: String,
    /// The date, `YYYY-MM-DD`.
    pub date: String,
    /// Horizontal position.
    pub x: String,
    /// Text in the chart: `today`, `100 d`, `47 d`.
    pub short: &'static str,
    /// Baseline of the text (staggered so that close markers do not overlap).
    pub label_y: &'static str,
}

/// The markers: today, and the dates public lifetimes fall to 100 and 47 days.
pub fn markers(axis: &Axis, now: Timestamp) -> Vec<Marker> {
    let mut out = vec![Marker {
        id: "today",
        label: format!("today {}", day(now)),
        date: day(now),
        x: px(axis.x(now)),
        short: "today",
        label_y: "22",
    }];
    for (id, date, days, short, label_y) in [
        ("public-100", PUBLIC_100_DAYS, 100, "100 d", "32"),
        ("public-47", PUBLIC_47_DAYS, 47, "47 d", "22"),
    ] {
        let at = midnight(date);
        out.push(Marker {
            id,
            label: format!("public max {days} days from {date}"),
            date: date.to_string(),
            x: px(axis.x(at)),
            short,
            label_y,
        });
    }
    out
}

/// One bar of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Row label: the holder and the first name, its class, cut to fit.
    pub label: String,
    /// The whole label.
    pub full_label: String,
    /// `SITHS production`, ...
    pub class_label: &'static str,
    /// CSS class: `siths-production`, `siths-test`, `public`, `other`.
    pub css: &'static str,
    /// Whether an Ingress serves it.
    pub user_facing: bool,
    /// Validity, `YYYY-MM-DD`.
    pub not_before: String,
    /// Validity, `YYYY-MM-DD`.
    pub not_after: String,
    /// Renewal start, `YYYY-MM-DD`.
    pub renewal: String,
    /// Expiry minus lead time: the last day to order, `YYYY-MM-DD`.
    pub order_by: String,
    /// Lead time in days (0 when none).
    pub lead_days: i64,
    /// Top of the row.
    pub y: String,
    /// Top of the bar.
    pub bar_y: String,
    /// Text baseline.
    pub text_y: String,
    /// Bar.
    pub x: String,
    /// Bar.
    pub width: String,
    /// The lead-time window before expiry (start and width); `None` without lead time.
    pub lead: Option<(String, String)>,
    /// Renewal point.
    pub renewal_x: String,
    /// The bar continues past the right edge of the axis.
    pub beyond: bool,
    /// Expired at the evaluation time (written next to the bar, not only drawn).
    pub expired: bool,
    /// Where text after the bar starts.
    pub after_x: String,
}

/// Characters of a row label before it is cut (the rest is in its tooltip).
pub const LABEL_CHARS: usize = 34;

/// `text` cut to `max` characters, with an ellipsis when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('\u{2026}');
    out
}

fn css(class: CertClass) -> &'static str {
    match class {
        CertClass::SithsProduction => "siths-production",
        CertClass::SithsTest => "siths-test",
        CertClass::Public => "public",
        CertClass::Other => "other",
    }
}

/// The bar of certificate `c` in row `row`, evaluated at `now`.
pub fn bar(axis: &Axis, c: &TimelineCert, row: usize, now: Timestamp) -> Bar {
    let top = HEADER_HEIGHT + row as f64 * ROW_HEIGHT;
    let x0 = axis.x(c.not_before);
    let x1 = axis.x(c.not_after);
    let lead = (c.lead_time > SignedDuration::ZERO).then(|| {
        let from = axis.x(c.not_after - c.lead_time);
        (px(from), px((x1 - from).max(1.0)))
    });
    let full_label = format!("{} {} ({})", c.holder.kind, c.holder.name, c.name);
    let tag = match c.class {
        CertClass::SithsProduction => "SITHS prod",
        CertClass::SithsTest => "SITHS test",
        CertClass::Public => "public",
        CertClass::Other => "other",
    };
    Bar {
        label: format!("{} [{tag}]", cut(&full_label, LABEL_CHARS)),
        full_label,
        class_label: c.class.label(),
        css: css(c.class),
        user_facing: c.user_facing,
        not_before: day(c.not_before),
        not_after: day(c.not_after),
        renewal: day(c.renewal),
        order_by: day(c.not_after - c.lead_time),
        lead_days: days_of(c.lead_time),
        y: px(top),
        bar_y: px(top + 4.0),
        text_y: px(top + 13.0),
        x: px(x0),
        width: px((x1 - x0).max(1.0)),
        lead,
        renewal_x: px(axis.x(c.renewal)),
        beyond: c.not_after > axis.end,
        expired: c.not_after < now,
        after_x: px(x0.max(x1) + 4.0),
    }
}

/// One chart: up to [`PAGE_ROWS`] certificates of one cluster and namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Cluster name (empty for a single cluster).
    pub cluster: String,
    /// Namespace (empty for cluster-scoped holders).
    pub namespace: String,
    /// 1-based page, and the number of pages of this group.
    pub page: (usize, usize),
    /// Bars, soonest expiry first.
    pub bars: Vec<Bar>,
    /// SITHS certificates in the chart.
    pub siths: usize,
    /// Earliest expiry, `YYYY-MM-DD`.
    pub first_expiry: String,
    /// SVG height.
    pub height: String,
    /// Bottom of the markers.
    pub bottom: String,
    /// Start open.
    pub open: bool,
}

/// The timeline: certificates grouped by cluster and namespace, soonest expiry first,
/// in pages of [`PAGE_ROWS`].
pub fn charts(axis: &Axis, clusters: &[ClusterAudit], now: Timestamp) -> Vec<Chart> {
    let total: usize = clusters.iter().map(|c| c.certificates.len()).sum();
    let mut groups: BTreeMap<(&str, &str), Vec<&TimelineCert>> = BTreeMap::new();
    for cl in clusters {
        for c in &cl.certificates {
            groups
                .entry((
                    cl.name.as_str(),
                    c.holder.namespace.as_deref().unwrap_or(""),
                ))
                .or_default()
                .push(c);
        }
    }
    let mut out = Vec::new();
    for ((cluster, namespace), mut certs) in groups {
        certs.sort_by(|a, b| {
            (a.not_after, &a.holder, &a.key).cmp(&(b.not_after, &b.holder, &b.key))
        });
        let pages = certs.len().div_ceil(PAGE_ROWS);
        for (i, chunk) in certs.chunks(PAGE_ROWS).enumerate() {
            let rows = chunk.len() as f64;
            out.push(Chart {
                cluster: cluster.to_string(),
                namespace: namespace.to_string(),
                page: (i + 1, pages),
                bars: chunk
                    .iter()
                    .enumerate()
                    .map(|(row, c)| bar(axis, c, row, now))
                    .collect(),
                siths: chunk
                    .iter()
                    .filter(|c| c.class.siths_environment().is_some())
                    .count(),
                first_expiry: day(chunk[0].not_after),
                height: px(HEADER_HEIGHT + rows * ROW_HEIGHT + 4.0),
                bottom: px(HEADER_HEIGHT + rows * ROW_HEIGHT),
                open: total <= OPEN_LIMIT,
            });
        }
    }
    out
}

/// SITHS spend in one month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthSpend {
    /// First day of the period, `YYYY-MM-DD`.
    pub from: String,
    /// SEK.
    pub sek: u64,
    /// Certificates to renew.
    pub certificates: usize,
    /// `sek` formatted.
    pub sek_text: String,
    /// Share of the largest month, percent.
    pub pct: u64,
}

/// SITHS spend in each of the next twelve months (the first one from `now`, expired
/// certificates included there): each certificate's renewal priced by
/// `cost::estimated_spend_next_12_months` in the month it expires, so the months add up
/// to the summary's twelve-month figure.
pub fn spend_by_month<'a>(
    certificates: impl IntoIterator<Item = &'a TimelineCert>,
    now: Timestamp,
) -> Vec<MonthSpend> {
    let zoned = now.to_zoned(TimeZone::UTC);
    let bound = |k: i64| {
        zoned
            .checked_add(Span::new().months(k))
            .map_or(Timestamp::MAX, |z| z.timestamp())
    };
    let mut months: Vec<(Timestamp, Vec<_>)> = (0..12).map(|k| (bound(k), Vec::new())).collect();
    for c in certificates {
        let Some(env) = c.price_environment() else {
            continue;
        };
        // The month it expires in; expired ones in the first; later ones in none (the
        // price function leaves them out as well).
        let i = (1..12)
            .rev()
            .find(|&k| c.not_after >= bound(k as i64))
            .unwrap_or(0);
        if c.not_after < bound(12) {
            months[i].1.push((env, c.not_after));
        }
    }
    let mut out: Vec<MonthSpend> = months
        .into_iter()
        .map(|(from, certs)| {
            let sek = cost::estimated_spend_next_12_months(&certs, now);
            MonthSpend {
                from: day(from),
                sek,
                certificates: certs.len(),
                sek_text: super::sek(sek),
                pct: 0,
            }
        })
        .collect();
    let max = out.iter().map(|m| m.sek).max().unwrap_or(0);
    for m in &mut out {
        m.pct = (m.sek * 100).checked_div(max).unwrap_or(0);
    }
    out
}

/// Months the expiry overview covers after the current one.
pub const OVERVIEW_MONTHS: usize = 24;

/// One column of the expiry overview: certificates expiring in a period, by class.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExpiryColumn {
    /// `expired`, `YYYY-MM`, or `later`.
    pub label: String,
    /// The label under the column: `expired`, `YY-MM`, `later`.
    pub short: String,
    /// SITHS production.
    pub siths_production: usize,
    /// SITHS test.
    pub siths_test: usize,
    /// Public.
    pub public: usize,
    /// Other.
    pub other: usize,
    /// All of them.
    pub total: usize,
    /// Drawing: x of the column, and the tops and heights of the stacked parts (SITHS
    /// production at the bottom, then SITHS test, public, other).
    pub x: String,
    /// `(css class, y, height)` of each non-empty part.
    pub parts: Vec<(&'static str, String, String)>,
    /// Baseline of the count above the column.
    pub count_y: String,
}

/// Height of the overview's plot area.
pub const OVERVIEW_HEIGHT: f64 = 120.0;
/// Width of one overview column slot.
pub const OVERVIEW_SLOT: f64 = 36.0;

/// Certificates expiring per calendar month (UTC) from the month of `now`, by class: a
/// column for the expired ones, [`OVERVIEW_MONTHS`] months, and one for later.
pub fn expiry_overview<'a>(
    certificates: impl IntoIterator<Item = &'a TimelineCert>,
    now: Timestamp,
) -> Vec<ExpiryColumn> {
    let month_of = |t: Timestamp| {
        let z = t.to_zoned(TimeZone::UTC);
        i32::from(z.year()) * 12 + i32::from(z.month()) - 1
    };
    let first = month_of(now);
    let mut cols: Vec<ExpiryColumn> = Vec::with_capacity(OVERVIEW_MONTHS + 2);
    cols.push(ExpiryColumn {
        label: "expired".into(),
        short: "expired".into(),
        ..Default::default()
    });
    for m in first..first + OVERVIEW_MONTHS as i32 {
        let (year, month) = (m.div_euclid(12), m.rem_euclid(12) + 1);
        cols.push(ExpiryColumn {
            label: format!("{year:04}-{month:02}"),
            short: format!("{:02}-{month:02}", year % 100),
            ..Default::default()
        });
    }
    cols.push(ExpiryColumn {
        label: "later".into(),
        short: "later".into(),
        ..Default::default()
    });
    for c in certificates {
        let i = if c.not_after < now {
            0
        } else {
            let m = (month_of(c.not_after) - first).max(0) as usize;
            1 + m.min(OVERVIEW_MONTHS)
        };
        let col = &mut cols[i];
        match c.class {
            CertClass::SithsProduction => col.siths_production += 1,
            CertClass::SithsTest => col.siths_test += 1,
            CertClass::Public => col.public += 1,
            CertClass::Other => col.other += 1,
        }
        col.total += 1;
    }
    let max = cols.iter().map(|c| c.total).max().unwrap_or(0).max(1) as f64;
    let bottom = 20.0 + OVERVIEW_HEIGHT;
    for (i, col) in cols.iter_mut().enumerate() {
        col.x = px(40.0 + i as f64 * OVERVIEW_SLOT);
        let mut y = bottom;
        for (css, n) in [
            ("siths-production", col.siths_production),
            ("siths-test", col.siths_test),
            ("public", col.public),
            ("other", col.other),
        ] {
            if n == 0 {
                continue;
            }
            let h = n as f64 / max * OVERVIEW_HEIGHT;
            y -= h;
            col.parts.push((css, px(y), px(h)));
        }
        col.count_y = px(y - 4.0);
    }
    cols
}

/// One row of the findings table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingRow {
    /// Cluster name.
    pub cluster: String,
    /// `error`, `warning`, `info`.
    pub severity: &'static str,
    /// Code.
    pub code: &'static str,
    /// `Kind/namespace/name`.
    pub object: String,
    /// What was found.
    pub message: String,
    /// What to do.
    pub remediation: &'static str,
}

/// A cluster as listed in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRow {
    /// Name.
    pub name: String,
    /// `answered` or why not.
    pub status: String,
    /// Whether it answered.
    pub ok: bool,
    /// Certificates.
    pub certificates: usize,
    /// Findings.
    pub findings: usize,
}

/// Everything the template shows.
#[derive(Debug, Template)]
#[template(path = "report.html")]
pub struct Page {
    /// Evaluation time.
    pub evaluated_at: String,
    /// Clusters (shown when more than one, or one that did not answer).
    pub clusters: Vec<ClusterRow>,
    /// Show the cluster column and list.
    pub fleet: bool,
    /// Certificates by class.
    pub siths_production: usize,
    /// Certificates by class.
    pub siths_test: usize,
    /// Certificates by class.
    pub public: usize,
    /// Certificates by class.
    pub other: usize,
    /// All certificates.
    pub total: usize,
    /// User-facing SITHS endpoints left to replace.
    pub user_facing_siths: usize,
    /// Findings by severity.
    pub errors: usize,
    /// Findings by severity.
    pub warnings: usize,
    /// Findings by severity.
    pub infos: usize,
    /// Estimated SITHS spend, next 12 months, formatted.
    pub spend_total: String,
    /// Spend by month.
    pub months: Vec<MonthSpend>,
    /// Timeline markers.
    pub markers: Vec<Marker>,
    /// Year ticks (year, x).
    pub ticks: Vec<(i16, String)>,
    /// Timeline charts.
    pub charts: Vec<Chart>,
    /// Expiries by month, all certificates.
    pub overview: Vec<ExpiryColumn>,
    /// Width of the overview SVG.
    pub overview_width: String,
    /// Findings, most severe first.
    pub findings: Vec<FindingRow>,
    /// Axis ends, for readers of the SVG.
    pub axis_start: String,
    /// Axis ends, for readers of the SVG.
    pub axis_end: String,
    /// Plot geometry.
    pub plot_left: String,
    /// Plot geometry.
    pub plot_right: String,
    /// The SVG width.
    pub svg_width: String,
    /// Height of a row.
    pub row_height: String,
}

/// The page for `clusters` evaluated at `now`.
pub fn page(clusters: &[ClusterAudit], now: Timestamp) -> Page {
    let axis = Axis::around(now);
    let reports: Vec<&Report> = clusters.iter().filter_map(|c| c.report.as_ref()).collect();
    let sum = |f: &dyn Fn(&Report) -> usize| reports.iter().map(|r| f(r)).sum::<usize>();
    let mut findings = Vec::new();
    for cl in clusters {
        for f in cl.report.iter().flat_map(|r| &r.findings) {
            findings.push(FindingRow {
                cluster: cl.name.clone(),
                severity: f.severity.as_str(),
                code: f.code.as_str(),
                object: f.object.display(),
                message: f.message.clone(),
                remediation: f.remediation,
            });
        }
    }
    let rank = |s: &str| match s {
        "error" => Severity::Error,
        "warning" => Severity::Warning,
        _ => Severity::Info,
    };
    // Stable: clusters in order within each severity.
    findings.sort_by_key(|f| rank(f.severity));
    let months = spend_by_month(clusters.iter().flat_map(|c| &c.certificates), now);
    let spend_total: u64 = reports
        .iter()
        .map(|r| r.summary.estimated_siths_spend_next_12_months_sek)
        .sum();
    Page {
        evaluated_at: crate::policy::rfc3339(now),
        clusters: clusters
            .iter()
            .map(|c| ClusterRow {
                name: c.name.clone(),
                status: c.error.clone().unwrap_or_else(|| "answered".to_string()),
                ok: c.error.is_none(),
                certificates: c.certificates.len(),
                findings: c.report.as_ref().map_or(0, |r| r.findings.len()),
            })
            .collect(),
        fleet: clusters.len() > 1 || clusters.iter().any(|c| c.error.is_some()),
        siths_production: sum(&|r| r.summary.certificates.siths_production),
        siths_test: sum(&|r| r.summary.certificates.siths_test),
        public: sum(&|r| r.summary.certificates.public),
        other: sum(&|r| r.summary.certificates.other),
        total: sum(&|r| r.summary.certificates.total),
        user_facing_siths: sum(&|r| r.summary.user_facing_siths_endpoints),
        errors: sum(&|r| r.summary.findings.error),
        warnings: sum(&|r| r.summary.findings.warning),
        infos: sum(&|r| r.summary.findings.info),
        spend_total: super::sek(spend_total),
        months,
        markers: markers(&axis, now),
        ticks: axis
            .year_ticks()
            .into_iter()
            .map(|(y, x)| (y, px(x)))
            .collect(),
        charts: charts(&axis, clusters, now),
        overview: expiry_overview(clusters.iter().flat_map(|c| &c.certificates), now),
        overview_width: px(40.0 + (OVERVIEW_MONTHS + 2) as f64 * OVERVIEW_SLOT + 10.0),
        findings,
        axis_start: crate::policy::rfc3339(axis.start),
        axis_end: crate::policy::rfc3339(axis.end),
        plot_left: px(LABEL_WIDTH),
        plot_right: px(LABEL_WIDTH + PLOT_WIDTH),
        svg_width: px(LABEL_WIDTH + PLOT_WIDTH + 10.0),
        row_height: px(ROW_HEIGHT),
    }
}

/// The HTML report of `clusters` evaluated at `now`.
pub fn render(clusters: &[ClusterAudit], now: Timestamp) -> Result<String, askama::Error> {
    page(clusters, now).render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{
        Code, Finding, ObjectRef,
        findings::{ClassCounts, SeverityCounts, Summary},
    };

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn now() -> Timestamp {
        ts("2026-06-01T00:00:00Z")
    }

    fn cert(ns: &str, name: &str, class: CertClass, not_after: &str) -> TimelineCert {
        let not_after = ts(not_after);
        let lead = if class.siths_environment().is_some() {
            cost::MANUAL_LEAD_TIME
        } else {
            SignedDuration::ZERO
        };
        TimelineCert {
            holder: ObjectRef::namespaced("Secret", ns, name),
            key: "tls.crt".into(),
            name: format!("{name}.region.se"),
            class,
            not_before: not_after - SignedDuration::from_hours(365 * 24),
            not_after,
            renewal: not_after - SignedDuration::from_hours(50 * 24),
            lead_time: lead,
            user_facing: false,
        }
    }

    fn days_between(a: Timestamp, b: Timestamp) -> f64 {
        b.duration_since(a).as_secs_f64() / 86_400.0
    }

    #[test]
    fn markers_sit_at_their_dates_on_the_axis() {
        let axis = Axis::around(now());
        assert_eq!(axis.start, ts("2026-03-03T00:00:00Z"));
        // Six months after 2029-03-15 is later than two years after now.
        assert_eq!(axis.end, ts("2029-09-14T00:00:00Z"));
        let span = days_between(axis.start, axis.end);
        let m = markers(&axis, now());
        let ids: Vec<_> = m.iter().map(|m| m.id).collect();
        assert_eq!(ids, ["today", "public-100", "public-47"]);
        let expect = |d: &str| LABEL_WIDTH + days_between(axis.start, ts(d)) / span * PLOT_WIDTH;
        assert_eq!(m[0].x, px(expect("2026-06-01T00:00:00Z")));
        assert_eq!(m[1].x, px(expect("2027-03-15T00:00:00Z")));
        assert_eq!(m[2].x, px(expect("2029-03-15T00:00:00Z")));
        assert_eq!(
            (m[1].date.as_str(), m[2].date.as_str()),
            ("2027-03-15", "2029-03-15")
        );
        // In order, inside the plot.
        let xs: Vec<f64> = m.iter().map(|m| m.x.parse().unwrap()).collect();
        assert!(
            LABEL_WIDTH < xs[0]
                && xs[0] < xs[1]
                && xs[1] < xs[2]
                && xs[2] < LABEL_WIDTH + PLOT_WIDTH
        );
        // Years later the axis grows to two years after now and still holds every marker.
        let later = Axis::around(ts("2029-01-01T00:00:00Z"));
        assert_eq!(later.end, ts("2031-01-01T00:00:00Z"));
        assert!(later.x(ts("2029-03-15T00:00:00Z")) < LABEL_WIDTH + PLOT_WIDTH);
        // Ticks: 1 January 2027, 2028, 2029.
        let years: Vec<i16> = axis.year_ticks().into_iter().map(|(y, _)| y).collect();
        assert_eq!(years, [2027, 2028, 2029]);
    }

    #[test]
    fn bars_follow_validity_renewal_and_lead_time_and_clamp_to_the_axis() {
        let axis = Axis::around(now());
        let c = cert("a", "s", CertClass::SithsProduction, "2027-01-01T00:00:00Z");
        let b = bar(&axis, &c, 2, now());
        assert_eq!(b.x, px(axis.x(c.not_before)));
        let w: f64 = b.width.parse().unwrap();
        assert!((w - (axis.x(c.not_after) - axis.x(c.not_before))).abs() < 0.11);
        let (lead_x, lead_w) = b.lead.clone().unwrap();
        assert_eq!(lead_x, px(axis.x(c.not_after - cost::MANUAL_LEAD_TIME)));
        assert!(lead_w.parse::<f64>().unwrap() > 5.0);
        assert_eq!(b.renewal_x, px(axis.x(c.renewal)));
        assert_eq!(b.order_by, "2026-12-04");
        assert_eq!(b.y, px(HEADER_HEIGHT + 2.0 * ROW_HEIGHT));
        assert!(b.label.ends_with("[SITHS prod]"), "{}", b.label);
        assert!(!b.beyond && !b.expired);
        // A public certificate has no lead-time window; one valid past the axis is clamped.
        let long = cert("a", "p", CertClass::Public, "2030-06-01T00:00:00Z");
        let b = bar(&axis, &long, 0, now());
        assert!(b.lead.is_none() && b.beyond);
        let right: f64 = b.x.parse::<f64>().unwrap() + b.width.parse::<f64>().unwrap();
        assert!((right - (LABEL_WIDTH + PLOT_WIDTH)).abs() < 0.11, "{right}");
        // Expired long ago: a sliver at the left edge, never negative.
        let old = cert("a", "o", CertClass::Other, "2020-01-01T00:00:00Z");
        let b = bar(&axis, &old, 0, now());
        assert_eq!((b.x.as_str(), b.width.as_str()), ("300.0", "1.0"));
        assert!(b.expired);
        assert_eq!(b.after_x, "304.0");
    }

    fn cluster(name: &str, certificates: Vec<TimelineCert>) -> ClusterAudit {
        ClusterAudit {
            name: name.into(),
            report: None,
            certificates,
            error: None,
        }
    }

    #[test]
    fn charts_group_by_cluster_and_namespace_page_and_keep_every_certificate() {
        let axis = Axis::around(now());
        let mut big = Vec::new();
        for i in 0..250 {
            let month = 1 + i % 12;
            big.push(cert(
                "big",
                &format!("s{i:03}"),
                CertClass::Public,
                &format!("2027-{month:02}-10T00:00:00Z"),
            ));
        }
        let small = vec![
            cert("b", "late", CertClass::SithsTest, "2028-01-01T00:00:00Z"),
            cert(
                "b",
                "soon",
                CertClass::SithsProduction,
                "2026-07-01T00:00:00Z",
            ),
        ];
        let clusters = [cluster("east", big), cluster("west", small.clone())];
        let charts = charts(&axis, &clusters, now());
        let keys: Vec<_> = charts
            .iter()
            .map(|c| {
                (
                    c.cluster.as_str(),
                    c.namespace.as_str(),
                    c.page,
                    c.bars.len(),
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("east", "big", (1, 3), 100),
                ("east", "big", (2, 3), 100),
                ("east", "big", (3, 3), 50),
                ("west", "b", (1, 1), 2),
            ]
        );
        assert_eq!(charts.iter().map(|c| c.bars.len()).sum::<usize>(), 252);
        // Soonest expiry first, across pages too.
        let ends: Vec<&str> = charts[..3]
            .iter()
            .flat_map(|c| c.bars.iter().map(|b| b.not_after.as_str()))
            .collect();
        assert!(ends.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(
            charts[3].bars[0].label,
            "Secret soon (soon.region.se) [SITHS prod]"
        );
        assert_eq!(
            (charts[3].siths, charts[3].first_expiry.as_str()),
            (2, "2026-07-01")
        );
        // No chart is taller than a page of rows; many certificates start closed.
        let tallest = HEADER_HEIGHT + PAGE_ROWS as f64 * ROW_HEIGHT + 4.0;
        assert!(
            charts
                .iter()
                .all(|c| c.height.parse::<f64>().unwrap() <= tallest)
        );
        assert!(charts.iter().all(|c| !c.open));
        assert!(
            super::charts(&axis, &[cluster("west", small)], now())
                .iter()
                .all(|c| c.open)
        );
    }

    #[test]
    fn spend_by_month_adds_up_to_the_twelve_month_estimate() {
        let certs = vec![
            cert(
                "a",
                "expired",
                CertClass::SithsProduction,
                "2026-05-01T00:00:00Z",
            ),
            cert(
                "a",
                "june",
                CertClass::SithsProduction,
                "2026-06-20T00:00:00Z",
            ),
            cert(
                "a",
                "june-test",
                CertClass::SithsTest,
                "2026-06-30T00:00:00Z",
            ),
            cert(
                "a",
                "march",
                CertClass::SithsProduction,
                "2027-03-14T00:00:00Z",
            ),
            cert(
                "a",
                "may",
                CertClass::SithsProduction,
                "2027-05-31T23:59:59Z",
            ),
            cert(
                "a",
                "horizon",
                CertClass::SithsProduction,
                "2027-06-01T00:00:00Z",
            ),
            cert("a", "public", CertClass::Public, "2026-07-01T00:00:00Z"),
        ];
        let months = spend_by_month(&certs, now());
        assert_eq!(months.len(), 12);
        assert_eq!(months[0].from, "2026-06-01");
        assert_eq!(months[11].from, "2027-05-01");
        let sek: Vec<u64> = months.iter().map(|m| m.sek).collect();
        assert_eq!(
            sek,
            [3_500 * 2 + 150, 0, 0, 0, 0, 0, 0, 0, 0, 3_500, 0, 3_500]
        );
        assert_eq!(months[0].certificates, 3);
        assert_eq!((months[0].pct, months[9].pct), (100, 48));
        // The same rule as the summary's figure.
        let all: Vec<_> = certs
            .iter()
            .filter_map(|c| c.price_environment().map(|e| (e, c.not_after)))
            .collect();
        assert_eq!(
            sek.iter().sum::<u64>(),
            cost::estimated_spend_next_12_months(&all, now())
        );
    }

    #[test]
    fn the_overview_counts_expiries_by_month_and_class() {
        let certs = vec![
            cert("a", "old", CertClass::SithsTest, "2026-05-31T23:00:00Z"),
            cert(
                "a",
                "june",
                CertClass::SithsProduction,
                "2026-06-30T00:00:00Z",
            ),
            cert("a", "june2", CertClass::Public, "2026-06-02T00:00:00Z"),
            cert("a", "jan", CertClass::Other, "2027-01-15T00:00:00Z"),
            cert(
                "a",
                "last",
                CertClass::SithsProduction,
                "2028-05-31T00:00:00Z",
            ),
            cert(
                "a",
                "later",
                CertClass::SithsProduction,
                "2028-06-01T00:00:00Z",
            ),
        ];
        let cols = expiry_overview(&certs, now());
        assert_eq!(cols.len(), OVERVIEW_MONTHS + 2);
        let label = |i: usize| cols[i].label.as_str();
        assert_eq!(
            (label(0), label(1), label(8), label(24), label(25)),
            ("expired", "2026-06", "2027-01", "2028-05", "later")
        );
        assert_eq!(
            (cols[0].short.as_str(), cols[1].short.as_str()),
            ("expired", "26-06")
        );
        let counts: Vec<(usize, usize, usize, usize)> = [0, 1, 8, 24, 25]
            .iter()
            .map(|&i| {
                let c = &cols[i];
                (c.siths_production, c.siths_test, c.public, c.other)
            })
            .collect();
        assert_eq!(
            counts,
            [
                (0, 1, 0, 0),
                (1, 0, 1, 0),
                (0, 0, 0, 1),
                (1, 0, 0, 0),
                (1, 0, 0, 0)
            ]
        );
        assert_eq!(cols.iter().map(|c| c.total).sum::<usize>(), certs.len());
        // The tallest column fills the plot; parts stack upwards from the baseline.
        let june = &cols[1];
        assert_eq!(june.parts.len(), 2);
        assert_eq!(june.parts[0], ("siths-production", px(80.0), px(60.0)));
        assert_eq!(june.parts[1], ("public", px(20.0), px(60.0)));
        assert!(cols[2].parts.is_empty());
    }

    #[test]
    fn labels_are_cut_on_characters() {
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abcdef", 4), "abc\u{2026}");
        assert_eq!(cut("åäöåäö", 3), "åä\u{2026}");
    }

    #[test]
    fn the_page_escapes_cluster_text_and_loads_nothing_from_elsewhere() {
        let hostile = "<script>alert(1)</script>\"'&";
        let mut c = cert(
            "ns",
            "s",
            CertClass::SithsProduction,
            "2026-09-01T00:00:00Z",
        );
        c.name = hostile.into();
        let report = Report {
            evaluated_at: "2026-06-01T00:00:00Z".into(),
            findings: vec![Finding {
                code: Code::SithsOnUserFacingIngress,
                severity: Severity::Error,
                object: ObjectRef::namespaced("Ingress", "ns", "<img src=x>"),
                message: format!("serves {hostile}"),
                remediation: Code::SithsOnUserFacingIngress.remediation(),
            }],
            summary: Summary {
                certificates: ClassCounts {
                    siths_production: 1,
                    total: 1,
                    ..Default::default()
                },
                user_facing_siths_endpoints: 1,
                estimated_siths_spend_next_12_months_sek: 3_500,
                findings: SeverityCounts {
                    error: 1,
                    ..Default::default()
                },
            },
        };
        let clusters = [
            ClusterAudit {
                name: "prod<1>".into(),
                report: Some(report),
                certificates: vec![c],
                error: None,
            },
            ClusterAudit {
                name: "down".into(),
                report: None,
                certificates: vec![],
                error: Some("did not answer within 10 s: <timeout>".into()),
            },
        ];
        let html = render(&clusters, now()).unwrap();
        assert!(!html.contains("<script"), "no script at all");
        assert!(!html.contains("<img"));
        // askama writes numeric character references.
        assert!(html.contains("serves &#60;script&#62;alert(1)&#60;/script&#62;&#34;&#39;&#38;"));
        assert!(html.contains("prod&#60;1&#62;") && !html.contains("prod<1>"));
        assert!(html.contains("&#60;timeout&#62;"));
        assert!(html.contains("Ingress/ns/&#60;img src=x&#62;"));
        for external in [" src=\"", "http://", "https://", "@import", "url(http"] {
            assert!(!html.contains(external), "{external}");
        }
        assert_eq!(html.matches("class=\"bar ").count(), 1);
        assert_eq!(html.matches("<tr class=\"finding sev-error\"").count(), 1);
        assert!(html.contains("3 500 SEK"));
        // A fleet shows its clusters, the one that did not answer included.
        assert!(html.contains("did not answer:"));
        assert!(html.contains("<th scope=\"col\">Cluster</th>"));
    }
}

//! Rendering of audit reports and plans: a table for people, JSON for scripts, Markdown
//! for pull-request comments.

use std::io::{IsTerminal, Write};

use crate::audit::{
    Report, Severity,
    plan::{Decision, Plan},
};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Grouped by severity, coloured on a terminal.
    Table,
    /// `{"findings": [...], "summary": {...}}`, stable for scripts.
    Json,
    /// For a pull-request comment.
    Markdown,
    /// One self-contained HTML file: summary, expiry timeline, spend by month, findings
    /// (`sithsctl audit` only).
    Html,
}

/// Whether to colour stdout: a terminal, and `NO_COLOR` unset.
pub fn colour_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn paint(on: bool, code: &str, text: &str) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn severity_colour(s: Severity) -> &'static str {
    match s {
        Severity::Error => "1;31",
        Severity::Warning => "1;33",
        Severity::Info => "1;36",
    }
}

pub use crate::audit::sek;

/// Rows as aligned columns: each as wide as its widest cell (header included), two spaces
/// apart; columns whose index is in `right` are right-aligned. Long names never push a
/// row out of line.
pub fn columns(rows: &[Vec<String>], right: &[usize]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = " ".repeat(widths[i].saturating_sub(c.chars().count()));
                if right.contains(&i) {
                    format!("{pad}{c}")
                } else if i + 1 == row.len() {
                    c.clone()
                } else {
                    format!("{c}{pad}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn md(cell: &str) -> String {
    cell.replace('|', "\\|").replace('\n', " ")
}

fn html_elsewhere() -> std::io::Error {
    std::io::Error::other("-o html is available for sithsctl audit only")
}

/// Writes an audit report (HTML is written by `cli::audit`, which has the certificates).
pub fn report(
    r: &Report,
    format: Format,
    colour: bool,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let s = &r.summary;
    let c = &s.certificates;
    let classes = format!(
        "{} (SITHS production {}, SITHS test {}, public {}, other {})",
        c.total, c.siths_production, c.siths_test, c.public, c.other
    );
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, r)?;
            writeln!(out)
        }
        Format::Html => Err(html_elsewhere()),
        Format::Table => {
            for sev in [Severity::Error, Severity::Warning, Severity::Info] {
                let group: Vec<_> = r.findings.iter().filter(|f| f.severity == sev).collect();
                if group.is_empty() {
                    continue;
                }
                let title = format!("{} ({})", sev.as_str().to_uppercase(), group.len());
                writeln!(out, "{}", paint(colour, severity_colour(sev), &title))?;
                for f in group {
                    writeln!(out, "  {:<40} {}", f.code.as_str(), f.object.display())?;
                    writeln!(out, "      {}", f.message)?;
                    writeln!(
                        out,
                        "      {} {}",
                        paint(colour, "2", "fix:"),
                        f.remediation
                    )?;
                }
                writeln!(out)?;
            }
            if r.findings.is_empty() {
                writeln!(out, "No findings.\n")?;
            }
            writeln!(out, "{}", paint(colour, "1", "Summary"))?;
            writeln!(out, "  Certificates:                            {classes}")?;
            writeln!(
                out,
                "  User-facing SITHS endpoints to replace:  {}",
                s.user_facing_siths_endpoints
            )?;
            writeln!(
                out,
                "  Estimated SITHS spend, next 12 months:   {}",
                sek(s.estimated_siths_spend_next_12_months_sek)
            )?;
            writeln!(
                out,
                "  Findings:                                {} error, {} warning, {} info (evaluated at {})",
                s.findings.error, s.findings.warning, s.findings.info, r.evaluated_at
            )
        }
        Format::Markdown => {
            writeln!(out, "### SITHS migration audit\n")?;
            writeln!(out, "| | |\n| --- | --- |")?;
            writeln!(out, "| Certificates | {classes} |")?;
            writeln!(
                out,
                "| User-facing SITHS endpoints to replace | {} |",
                s.user_facing_siths_endpoints
            )?;
            writeln!(
                out,
                "| Estimated SITHS spend, next 12 months | {} |",
                sek(s.estimated_siths_spend_next_12_months_sek)
            )?;
            writeln!(
                out,
                "| Findings | {} error, {} warning, {} info |\n",
                s.findings.error, s.findings.warning, s.findings.info
            )?;
            if r.findings.is_empty() {
                return writeln!(out, "No findings.");
            }
            writeln!(
                out,
                "| Severity | Code | Object | Finding | Remediation |\n| --- | --- | --- | --- | --- |"
            )?;
            for f in &r.findings {
                writeln!(
                    out,
                    "| {} | `{}` | `{}` | {} | {} |",
                    f.severity.as_str(),
                    f.code.as_str(),
                    f.object.display(),
                    md(&f.message),
                    md(f.remediation)
                )?;
            }
            Ok(())
        }
    }
}

/// Writes a plan.
pub fn plan(p: &Plan, format: Format, colour: bool, out: &mut impl Write) -> std::io::Result<()> {
    let cost = |e: &crate::audit::plan::PlanEntry| {
        e.estimated_cost_sek
            .map_or_else(|| "-".to_string(), |c| sek(u64::from(c)))
    };
    let lead = |e: &crate::audit::plan::PlanEntry| {
        e.lead_time_days
            .map_or_else(|| "-".to_string(), |d| format!("{d} days"))
    };
    let decision = |e: &crate::audit::plan::PlanEntry| match e.decision {
        Decision::Issue => "Issue",
        Decision::Blocked => "Blocked",
    };
    let totals = format!(
        "{} to issue, {} blocked, estimated cost {}",
        p.summary.issue,
        p.summary.blocked,
        sek(p.summary.estimated_cost_sek)
    );
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, p)?;
            writeln!(out)
        }
        Format::Html => Err(html_elsewhere()),
        Format::Table => {
            writeln!(
                out,
                "{:<20} {:<28} {:<8} {:<32} {:<8} {:>10} {:>9}  REASON",
                "NAMESPACE", "NAME", "ROUTE", "ISSUER", "DECISION", "COST", "LEAD"
            )?;
            for e in &p.certificates {
                let d = decision(e);
                let padded = format!("{d:<8}");
                let d = if e.decision == Decision::Blocked {
                    paint(colour, severity_colour(e.severity), &padded)
                } else {
                    paint(colour, "32", &padded)
                };
                writeln!(
                    out,
                    "{:<20} {:<28} {:<8} {:<32} {} {:>10} {:>9}  {}",
                    e.object.namespace.as_deref().unwrap_or_default(),
                    e.object.name,
                    e.route,
                    e.issuer,
                    d,
                    cost(e),
                    lead(e),
                    e.reason
                )?;
            }
            let blocked: Vec<_> = p
                .certificates
                .iter()
                .filter(|e| e.decision == Decision::Blocked)
                .collect();
            if !blocked.is_empty() {
                writeln!(out)?;
                for e in blocked {
                    writeln!(out, "{}: {}", e.object.display(), e.message)?;
                }
            }
            writeln!(out, "\n{totals}")
        }
        Format::Markdown => {
            writeln!(out, "### siths-operator plan\n\n{totals}\n")?;
            writeln!(
                out,
                "| Certificate | Route | Issuer | Decision | Cost | Lead time | Reason |\n| --- | --- | --- | --- | --- | --- | --- |"
            )?;
            for e in &p.certificates {
                let reason = if e.decision == Decision::Blocked {
                    format!("{}: {}", e.reason, e.message)
                } else {
                    e.reason.clone()
                };
                writeln!(
                    out,
                    "| `{}` | {} | {} | {} | {} | {} | {} |",
                    e.object.display(),
                    e.route,
                    e.issuer,
                    decision(e),
                    cost(e),
                    lead(e),
                    md(&reason)
                )?;
            }
            Ok(())
        }
    }
}

/// Writes an inventory.
pub fn inventory(
    rows: &[crate::audit::inventory::Row],
    format: Format,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let used = |r: &crate::audit::inventory::Row| {
        if r.used_by.is_empty() {
            "-".to_string()
        } else {
            r.used_by.join(", ")
        }
    };
    let names = |r: &crate::audit::inventory::Row| r.dns_names.join(", ");
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &serde_json::json!({ "certificates": rows }))?;
            writeln!(out)
        }
        Format::Html => Err(html_elsewhere()),
        Format::Table => {
            writeln!(
                out,
                "{:<20} {:<28} {:<10} {:<17} {:<11} {:>6}  {:<40} USED BY",
                "NAMESPACE", "SECRET", "KEY", "CLASS", "EXPIRES", "DAYS", "DNS NAMES"
            )?;
            for r in rows {
                writeln!(
                    out,
                    "{:<20} {:<28} {:<10} {:<17} {:<11} {:>6}  {:<40} {}",
                    r.secret.namespace.as_deref().unwrap_or_default(),
                    r.secret.name,
                    r.key,
                    r.class.label(),
                    &r.not_after[..10.min(r.not_after.len())],
                    r.days_left,
                    names(r),
                    used(r)
                )?;
            }
            Ok(())
        }
        Format::Markdown => {
            writeln!(
                out,
                "| Secret | Key | Class | Expires | Days left | DNS names | Used by |\n| --- | --- | --- | --- | --- | --- | --- |"
            )?;
            for r in rows {
                writeln!(
                    out,
                    "| `{}` | {} | {} | {} | {} | {} | {} |",
                    r.secret.display(),
                    r.key,
                    r.class.label(),
                    r.not_after,
                    r.days_left,
                    md(&names(r)),
                    md(&used(r))
                )?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_grow_with_their_widest_cell() {
        let rows = vec![
            vec!["NAMESPACE".to_string(), "ORDER".into(), "COST".into()],
            vec![
                "a-very-long-namespace-name-indeed".into(),
                "x".into(),
                "3500".into(),
            ],
            vec!["ns".into(), "order-1".into(), "0".into()],
        ];
        let text = columns(&rows, &[2]);
        let lines: Vec<&str> = text.lines().collect();
        // Every column starts at the same place on every line.
        let at = |l: &str, s: &str| l.find(s).unwrap();
        assert_eq!(at(lines[0], "ORDER"), at(lines[1], "x"));
        assert_eq!(at(lines[1], "x"), at(lines[2], "order-1"));
        // Right-aligned numbers end together.
        assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{text}");
    }

    #[test]
    fn thousands_are_spaced() {
        assert_eq!(sek(0), "0 SEK");
        assert_eq!(sek(750), "750 SEK");
        assert_eq!(sek(3_500), "3 500 SEK");
        assert_eq!(sek(1_234_567), "1 234 567 SEK");
    }

    #[test]
    fn markdown_cells_escape_pipes() {
        assert_eq!(md("a|b\nc"), "a\\|b c");
    }
}

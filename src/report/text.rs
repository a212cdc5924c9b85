//! Short sentences shared by the JUnit and HTML views, so both say the same thing the same way.

use crate::checks::{FailureCluster, Phase};
use crate::checks::timeline::{next_to, offset};

/// A number without noise: integers bare, others to at most 3 decimals.
pub fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        let s = format!("{x:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

pub fn ms(x: f64) -> String {
    if x >= 100.0 { format!("{x:.0} ms") } else if x >= 10.0 { format!("{x:.1} ms") } else { format!("{x:.2} ms") }
}

/// `600 sent, 137 failed (502 x137), 199.8 req/s of 200 planned, p50 0.41 ms, p99 1.20 ms, p99.9 3.10 ms`.
pub fn phase_line(p: &Phase) -> String {
    let Some(s) = &p.traffic else { return "no traffic".into() };
    let mut kinds: Vec<String> = s.status_codes.iter().filter(|(k, _)| k.parse::<u16>().is_ok_and(|c| c >= 400)).map(|(k, n)| format!("{k} x{n}")).collect();
    kinds.extend(s.failures.iter().map(|(k, n)| format!("{k} x{n}")));
    let failed = if s.failed == 0 { "0 failed".to_string() } else { format!("{} failed ({})", s.failed, kinds.join(", ")) };
    let planned = if s.mode == "open" { format!(" of {:.1} planned", s.planned_rps) } else { String::new() };
    format!(
        "{} sent, {failed}, {:.1} req/s{planned}, p50 {}, p99 {}, p99.9 {}",
        s.sent,
        s.achieved_rps,
        ms(s.latency_ms.p50),
        ms(s.latency_ms.p99),
        ms(s.latency_ms.p999)
    )
}

pub fn kinds(c: &FailureCluster) -> String {
    c.kinds.iter().map(|(k, n)| format!("{k} x{n}")).collect::<Vec<_>>().join(", ")
}

/// `137 failed (502 x137) at 1.20-2.19 s, backend backend-b, next to: Action/backend-b SIGKILL (0.0 s before)`.
pub fn cluster_line(c: &FailureCluster) -> String {
    let backend = c.backend.as_deref().map(|b| format!(", backend {b}")).unwrap_or_else(|| ", backend unknown".into());
    let next = match next_to(c) {
        Some((e, d)) => format!(", next to: {} {} ({})", e.object, e.message, offset(d)),
        None => ", no event near it".into(),
    };
    format!("{} failed ({}) at {:.2}-{:.2} s{backend}{next}", c.count, kinds(c), c.from_s, c.to_s)
}

/// The first `n` characters of `s`, cut at a word and marked, for a one-line summary.
pub fn truncate_words(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let head: String = s.chars().take(n).collect();
    let cut = head.rfind(' ').filter(|i| *i > n / 2).unwrap_or(head.len());
    format!("{}…", head[..cut].trim_end_matches([',', ';', ':']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_plainly() {
        assert_eq!(num(3.0), "3");
        assert_eq!(num(2.5), "2.5");
        assert_eq!(num(0.123456), "0.123");
        assert_eq!(ms(0.4123), "0.41 ms");
        assert_eq!(ms(1234.0), "1234 ms");
    }
}


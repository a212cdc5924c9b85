//! When each request is planned: a piecewise-linear rate over time (a constant rate is one flat piece).

use std::time::Duration;

use anyhow::{bail, Context};

/// Requests per second as a function of time: straight lines between breakpoints `(t, rate)`.
/// The i-th request (from 0) is planned at the instant where the integral of the rate reaches i,
/// so a constant 1,000 req/s plans requests at exactly 0, 1, 2, ... ms.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    /// (seconds, requests per second); first at 0 s, strictly increasing times.
    points: Vec<(f64, f64)>,
}

impl Schedule {
    pub fn constant(rps: f64, duration: Duration) -> anyhow::Result<Schedule> {
        Schedule::ramp(&[(Duration::ZERO, rps), (duration, rps)])
    }

    /// Rate changes linearly between the given breakpoints; the first must be at 0, the last one
    /// ends the schedule.
    pub fn ramp(points: &[(Duration, f64)]) -> anyhow::Result<Schedule> {
        if points.len() < 2 {
            bail!("a ramp needs at least two points (start and end), e.g. 0s:100,30s:1000");
        }
        if points[0].0 != Duration::ZERO {
            bail!("a ramp must start at 0s (it starts at {:?})", points[0].0);
        }
        for w in points.windows(2) {
            if w[1].0 <= w[0].0 {
                bail!("ramp times must increase: {:?} comes after {:?}", w[1].0, w[0].0);
            }
        }
        for &(_, r) in points {
            if !r.is_finite() || r < 0.0 {
                bail!("a rate must be a number >= 0 (got {r})");
            }
        }
        if points.iter().all(|&(_, r)| r == 0.0) {
            bail!("the rate is 0 everywhere: nothing to send");
        }
        Ok(Schedule { points: points.iter().map(|&(t, r)| (t.as_secs_f64(), r)).collect() })
    }

    /// The breakpoints as (seconds, requests per second).
    pub fn points(&self) -> &[(f64, f64)] {
        &self.points
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.points.last().unwrap().0)
    }

    /// The rate at `t` (0 outside the schedule).
    pub fn rate_at(&self, t: Duration) -> f64 {
        let t = t.as_secs_f64();
        for w in self.points.windows(2) {
            let ((t0, r0), (t1, r1)) = (w[0], w[1]);
            if t >= t0 && t < t1 {
                return r0 + (r1 - r0) * (t - t0) / (t1 - t0);
            }
        }
        0.0
    }

    /// The highest rate anywhere in the schedule.
    pub fn peak_rate(&self) -> f64 {
        self.points.iter().map(|p| p.1).fold(0.0, f64::max)
    }

    /// Whether the rate is the same everywhere.
    pub fn is_constant(&self) -> bool {
        self.points.iter().all(|p| p.1 == self.points[0].1)
    }

    /// Planned send offsets in nanoseconds, in order.
    pub fn offsets(&self) -> Offsets<'_> {
        Offsets { s: self, seg: 0, base: 0.0, i: 0 }
    }

    /// How many requests the whole schedule plans.
    pub fn planned_count(&self) -> u64 {
        self.offsets().count() as u64
    }
}

/// Iterator over a [`Schedule`]'s planned offsets (ns).
pub struct Offsets<'a> {
    s: &'a Schedule,
    seg: usize,
    /// Requests planned before segment `seg` (the integral of the rate up to its start).
    base: f64,
    i: u64,
}

impl Iterator for Offsets<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let pts = &self.s.points;
        let target = self.i as f64;
        loop {
            if self.seg + 1 >= pts.len() {
                return None;
            }
            let ((t0, r0), (t1, r1)) = (pts[self.seg], pts[self.seg + 1]);
            let d = t1 - t0;
            let count = (r0 + r1) / 2.0 * d;
            let x = target - self.base;
            if x < count {
                // Solve r0*t + (r1-r0)/(2d)*t^2 = x in the form that stays exact when r0 = 0 or
                // the slope is 0.
                let a = (r1 - r0) / (2.0 * d);
                let disc = (r0 * r0 + 4.0 * a * x).max(0.0);
                let t = if x == 0.0 { 0.0 } else { 2.0 * x / (r0 + disc.sqrt()) };
                let at = t0 + t.min(d);
                if at >= t1 {
                    // Rounding put it on the boundary: it belongs to the next segment.
                    self.base += count;
                    self.seg += 1;
                    continue;
                }
                self.i += 1;
                return Some((at * 1e9).round() as u64);
            }
            self.base += count;
            self.seg += 1;
        }
    }
}

/// `--rate`: a number of requests per second, or `max` for the closed model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    PerSecond(f64),
    Max,
}

pub fn parse_rate(s: &str) -> anyhow::Result<Rate> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("max") {
        return Ok(Rate::Max);
    }
    let s = s.strip_suffix("/s").unwrap_or(s);
    let r: f64 = s
        .parse()
        .map_err(|_| anyhow::anyhow!("`{s}` is not a rate: give requests per second (e.g. 1000) or `max`"))?;
    if !r.is_finite() || r <= 0.0 {
        bail!("the rate must be > 0 requests per second (got {r})");
    }
    Ok(Rate::PerSecond(r))
}

/// `10s`, `500ms`, `2m`, `1m30s`, `1.5s`, `1h`; a bare number is seconds.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    if s.is_empty() {
        bail!("empty duration");
    }
    if let Ok(secs) = s.parse::<f64>() {
        return secs_to_duration(secs, s);
    }
    let mut total = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_len == 0 {
            bail!("`{s}` is not a duration (e.g. 10s, 500ms, 2m, 1m30s)");
        }
        let n: f64 = rest[..num_len].parse().with_context(|| format!("`{s}` is not a duration"))?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        total += n * match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            _ => bail!("`{s}`: unknown unit `{unit}` (use ms, s, m or h)"),
        };
    }
    secs_to_duration(total, s)
}

fn secs_to_duration(secs: f64, s: &str) -> anyhow::Result<Duration> {
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        bail!("`{s}` is not a usable duration");
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `0s:100,30s:1000,60s:1000`: rate 100 at the start, up linearly to 1000 at 30 s, held to 60 s.
pub fn parse_ramp(s: &str) -> anyhow::Result<Schedule> {
    let mut points = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (t, r) = part
            .split_once(':')
            .with_context(|| format!("ramp point `{part}` is not TIME:RATE (e.g. 30s:1000)"))?;
        let t = parse_duration(t).with_context(|| format!("in ramp point `{part}`"))?;
        let r: f64 = r
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("in ramp point `{part}`: `{r}` is not a rate"))?;
        points.push((t, r));
    }
    Schedule::ramp(&points).with_context(|| format!("bad --ramp `{s}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_rate_is_exact() {
        let s = Schedule::constant(1000.0, Duration::from_secs(3)).unwrap();
        let v: Vec<u64> = s.offsets().collect();
        assert_eq!(v.len(), 3000);
        for (i, o) in v.iter().enumerate() {
            assert_eq!(*o, i as u64 * 1_000_000);
        }
    }

    #[test]
    fn fractional_rate() {
        let s = Schedule::constant(3.0, Duration::from_secs(1)).unwrap();
        let v: Vec<u64> = s.offsets().collect();
        assert_eq!(v, vec![0, 333_333_333, 666_666_667]);
    }

    #[test]
    fn ramp_counts_integral() {
        // 0 -> 100 over 10 s: 500 requests, denser at the end.
        let s = parse_ramp("0s:0,10s:100").unwrap();
        let v: Vec<u64> = s.offsets().collect();
        assert_eq!(v.len(), 500);
        assert!(v.windows(2).all(|w| w[0] < w[1]));
        let first_half = v.iter().filter(|&&o| o < 5_000_000_000).count();
        assert_eq!(first_half, 125);
        // Then down again: symmetric.
        let s = parse_ramp("0s:100,10s:100,20s:0").unwrap();
        assert_eq!(s.planned_count(), 1500);
        assert_eq!(s.rate_at(Duration::from_secs(15)), 50.0);
    }

    #[test]
    fn parses() {
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("10 parsecs").is_err());
        assert_eq!(parse_rate("max").unwrap(), Rate::Max);
        assert_eq!(parse_rate("500").unwrap(), Rate::PerSecond(500.0));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_ramp("10s:5,20s:5").is_err());
        assert!(parse_ramp("0s:5,0s:6").is_err());
        assert!(parse_ramp("0s:5").is_err());
    }
}

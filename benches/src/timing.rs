//! Wall-clock timing of repeated runs (medians), and a description of the machine.

use std::time::Instant;

/// The median of `v` (0 for an empty slice).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        0.5 * (s[m - 1] + s[m])
    }
}

/// How long to measure one configuration.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Keep repeating until this many seconds have passed...
    pub min_time: f64,
    /// ...and at least this many runs were timed...
    pub min_reps: usize,
    /// ...but never more than this many.
    pub max_reps: usize,
}

/// Median seconds of `body(setup())` (the setup untimed), after one untimed warm-up run, and
/// the number of timed runs.
pub fn time_runs<T, R>(
    budget: Budget,
    mut setup: impl FnMut() -> T,
    mut body: impl FnMut(T) -> R,
) -> (f64, usize) {
    std::hint::black_box(body(setup()));
    let start = Instant::now();
    let mut times = Vec::new();
    while times.len() < budget.min_reps
        || (start.elapsed().as_secs_f64() < budget.min_time && times.len() < budget.max_reps)
    {
        let s = setup();
        let t0 = Instant::now();
        std::hint::black_box(body(s));
        times.push(t0.elapsed().as_secs_f64());
    }
    (median(&times), times.len())
}

/// The CPU model (from /proc/cpuinfo) and the number of logical CPUs.
pub fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{model}, {cpus} logical CPUs")
}

/// Today's date (UTC) as `YYYY-MM-DD`.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_lengths() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn today_is_a_plausible_date() {
        let d = today();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"), "{d}");
    }
}

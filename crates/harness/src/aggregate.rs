//! Pure functions over run results: medians, spreads, ratios, regressions.

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 0 {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

/// Minimum and maximum.
pub fn spread(values: &[f64]) -> Option<(f64, f64)> {
    let min = values.iter().copied().reduce(f64::min)?;
    let max = values.iter().copied().reduce(f64::max)?;
    Some((min, max))
}

/// Relative change from `before` to `after` (0.1 = 10% more).
pub fn change(before: f64, after: f64) -> f64 {
    (after - before) / before
}

/// Whether a throughput change is a regression past `threshold` (0.1 = 10% less).
pub fn is_regression(before: f64, after: f64, threshold: f64) -> bool {
    change(before, after) < -threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_spreads() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
        assert_eq!(spread(&[3.0, 1.0, 2.0]), Some((1.0, 3.0)));
    }

    #[test]
    fn regressions() {
        assert!(is_regression(100.0, 85.0, 0.1));
        assert!(!is_regression(100.0, 95.0, 0.1));
        assert!(!is_regression(100.0, 150.0, 0.1));
        assert!((change(100.0, 110.0) - 0.1).abs() < 1e-12);
    }
}

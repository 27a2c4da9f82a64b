//! The benchmarks' JSON output: every bench ends with one JSON object on one line, built with
//! `serde_json::json!` (never by string formatting), whose measured figures are rounded here to
//! a fixed number of decimal places.
//!
//! Guarantees: the line is valid JSON whatever the values (a non-finite figure becomes `null`).

/// `x` rounded to `places` decimal places (as `format!("{x:.places$}")` would print it).
pub fn rounded(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_and_serialises() {
        assert_eq!(rounded(12.3456, 2), 12.35);
        assert_eq!(rounded(0.00049, 3), 0.0);
        assert_eq!(rounded(7.0, 1), 7.0);
        let v = serde_json::json!({ "a": rounded(1.0 / 3.0, 4), "b": f64::NAN });
        assert_eq!(v.to_string(), r#"{"a":0.3333,"b":null}"#);
    }
}

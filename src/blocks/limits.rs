//! Bounds every config value is checked against before anything is built, so that a typo
//! (`kernel = 0`, `dropout = 2.0`, a width of 10⁹) is refused with the key named, not met as a
//! panic or an out-of-memory crash later.

/// The largest channel count, hidden size or width accepted.
pub const MAX_WIDTH: usize = 1 << 16;
/// The largest kernel accepted.
pub const MAX_KERNEL: usize = 1 << 12;
/// The largest input length accepted.
pub const MAX_LENGTH: usize = 1 << 20;

/// `value` must be in `1..=max`.
pub fn count(key: &str, value: usize, max: usize) -> Result<(), String> {
    if value == 0 || value > max {
        return Err(format!("{key} = {value} must be between 1 and {max}"));
    }
    Ok(())
}

/// An odd kernel width in `1..=max` (a `same` convolution pads it evenly).
pub fn odd_kernel(key: &str, value: usize, max: usize) -> Result<(), String> {
    count(key, value, max)?;
    if value.is_multiple_of(2) {
        return Err(format!(
            "{key} = {value} must be odd (a `same` convolution pads (k − 1)/2 on each side)"
        ));
    }
    Ok(())
}

/// A dropout probability: in `[0, 1)`.
pub fn dropout(key: &str, p: f64) -> Result<(), String> {
    if !(0.0..1.0).contains(&p) {
        return Err(format!(
            "{key} = {p} must be a probability in [0, 1) (the fraction of activations dropped)"
        ));
    }
    Ok(())
}

/// A finite number in `[lo, hi]`.
pub fn within(key: &str, v: f64, lo: f64, hi: f64) -> Result<(), String> {
    if !(v.is_finite() && (lo..=hi).contains(&v)) {
        return Err(format!(
            "{key} = {v} must be a finite number in [{lo}, {hi}]"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_key() {
        assert!(
            count("first.kernel", 0, 9)
                .unwrap_err()
                .contains("first.kernel = 0")
        );
        assert!(
            dropout("core.dropout", 2.0)
                .unwrap_err()
                .contains("core.dropout = 2")
        );
        assert!(dropout("core.dropout", f64::NAN).is_err());
        assert!(dropout("core.dropout", 0.0).is_ok());
        assert!(within("recipe.x", f64::INFINITY, 0.0, 1.0).is_err());
    }
}

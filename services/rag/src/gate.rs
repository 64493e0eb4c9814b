//! The vector sanity gate: nothing reaches a store unless its vector can be searched.
//!
//! A NaN or infinite component poisons every distance it touches, a zero vector has no
//! direction for cosine similarity, and a vector of the wrong size belongs to another
//! model. Each is refused with the chunk it came from named.

use thiserror::Error;

/// Why a vector was refused.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum GateError {
    #[error("has {actual} dimensions where the store holds {expected}")]
    Dimensions { expected: usize, actual: usize },
    #[error("has a non-finite value ({value}) at component {component}")]
    NotFinite { component: usize, value: f32 },
    #[error("has zero norm")]
    ZeroNorm,
}

/// Checks one vector against the store's dimension count.
pub fn check(vector: &[f32], dimensions: usize) -> Result<(), GateError> {
    if vector.len() != dimensions {
        return Err(GateError::Dimensions {
            expected: dimensions,
            actual: vector.len(),
        });
    }
    if let Some((component, &value)) = vector.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(GateError::NotFinite { component, value });
    }
    let norm: f64 = vector.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    // Below f32's smallest normal squared, cosine similarity divides by (almost) nothing.
    if norm.sqrt() < f64::from(f32::MIN_POSITIVE) {
        return Err(GateError::ZeroNorm);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_plain_vector() {
        assert_eq!(check(&[0.6, 0.8, 0.0], 3), Ok(()));
        assert_eq!(check(&[0.0, 0.0, 1e-20], 3), Ok(()));
    }

    #[test]
    fn refuses_nan_infinity_zero_and_wrong_size() {
        let nan = check(&[0.1, f32::NAN, 0.2], 3).unwrap_err();
        assert!(matches!(nan, GateError::NotFinite { component: 1, .. }));
        assert_eq!(
            nan.to_string(),
            "has a non-finite value (NaN) at component 1"
        );
        let inf = check(&[f32::NEG_INFINITY, 0.0, 0.0], 3).unwrap_err();
        assert!(matches!(inf, GateError::NotFinite { component: 0, .. }));
        assert_eq!(check(&[0.0; 3], 3), Err(GateError::ZeroNorm));
        assert_eq!(check(&[-0.0; 3], 3), Err(GateError::ZeroNorm));
        assert_eq!(
            check(&[1.0; 4], 3),
            Err(GateError::Dimensions {
                expected: 3,
                actual: 4
            })
        );
        assert_eq!(
            check(&[], 3).unwrap_err().to_string(),
            "has 0 dimensions where the store holds 3"
        );
    }
}

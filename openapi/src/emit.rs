//! The catalog as the libraries carry it: JSON with one model per line (a change to a model is
//! a one-line diff in review), read into the same [`ModelSpec`] type [`crate::catalog::extract`]
//! returns, so the built-in catalog and one read from a newer document are one type.

use crate::catalog::ModelSpec;

/// `[` and `]` around one compact JSON object per model, in the order given.
pub fn catalog_json(models: &[ModelSpec]) -> Result<String, serde_json::Error> {
    let mut out = String::from("[\n");
    for (i, m) in models.iter().enumerate() {
        out.push_str(&serde_json::to_string(m)?);
        out.push_str(if i + 1 < models.len() { ",\n" } else { "\n" });
    }
    out.push_str("]\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{CostRow, Kind};

    #[test]
    fn one_model_per_line_reads_back_as_the_same_models() {
        let mut a = ModelSpec::unlisted(Kind::Video, "a", "b");
        a.title = "Quote \" and\nnewline".into();
        a.compute_units = vec![CostRow::new(
            vec![("Duration".into(), "5s".into())],
            60.1,
            None,
        )];
        a.typical_seconds = Some(7.0);
        let b = ModelSpec::unlisted(Kind::Image, "c", "d");
        let json = catalog_json(&[a.clone(), b.clone()]).expect("serializes");
        assert_eq!(json.lines().count(), 4, "{json}");
        assert!(
            json.contains(r#""title":"Quote \" and\nnewline""#),
            "{json}"
        );
        let back: Vec<ModelSpec> = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, vec![a, b]);
    }
}

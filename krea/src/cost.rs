//! What a request will cost, in compute units, from the model's published pricing table: the
//! rows whose conditions the request meets (resolution, duration, audio, mode, references...).
//! A condition the request leaves open (no value and no default) keeps every row it allows, so
//! the estimate is then a range.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::models::{Kind, ModelSpec};

/// An estimate in compute units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Estimate {
    /// The cheapest the request can cost.
    pub low: f64,
    /// The dearest it can cost.
    pub high: f64,
    /// Part of it is an assumed price, for a model Krea publishes no price for
    /// ([`assumed_price`]): `high` is a ceiling, not a price.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub assumed: bool,
}

impl Estimate {
    /// Nothing.
    pub fn zero() -> Estimate {
        Estimate {
            low: 0.0,
            high: 0.0,
            assumed: false,
        }
    }

    /// Exactly `cu` compute units (a cost already known, such as what completed jobs cost).
    ///
    /// ```
    /// assert_eq!(krea::Estimate::exactly(10320.000000001).to_string(), "10320 CU");
    /// ```
    pub fn exactly(cu: f64) -> Estimate {
        Estimate {
            low: cu,
            high: cu,
            assumed: false,
        }
    }

    /// A job of a model with no published price, held to `ceiling` compute units.
    pub fn assumed(ceiling: f64) -> Estimate {
        Estimate {
            low: 0.0,
            high: ceiling,
            assumed: true,
        }
    }

    /// One figure when the table gives one.
    pub fn exact(&self) -> Option<f64> {
        (self.low == self.high).then_some(self.low)
    }

    /// `n` times this (for `n` jobs).
    pub fn times(self, n: usize) -> Estimate {
        Estimate {
            low: self.low * n as f64,
            high: self.high * n as f64,
            assumed: self.assumed,
        }
    }

    /// The sum of two estimates.
    pub fn plus(self, other: Estimate) -> Estimate {
        Estimate {
            low: self.low + other.low,
            high: self.high + other.high,
            assumed: self.assumed || other.assumed,
        }
    }
}

impl std::fmt::Display for Estimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tenths at most, and no `.0`: sums of prices such as 300 x 34.4 land a hair off a
        // whole number and must still read `10320`.
        let n = |v: f64| {
            // `+ 0.0` turns -0 (an empty f64 sum is -0) into 0: never "-0 CU".
            let tenths = (v * 10.0).round() / 10.0 + 0.0;
            if tenths.fract() == 0.0 {
                format!("{tenths:.0}")
            } else {
                format!("{tenths:.1}")
            }
        };
        match self.exact() {
            Some(v) => write!(f, "{} CU", n(v))?,
            None => write!(f, "{}-{} CU", n(self.low), n(self.high))?,
        }
        if self.assumed {
            write!(f, " (includes an assumed price)")?;
        }
        Ok(())
    }
}

/// The estimate for `body` on `model`; `None` when Krea publishes no pricing for it, or no
/// row of the table fits the request.
pub fn estimate(model: &ModelSpec, body: &Value) -> Option<Estimate> {
    krea_gen::pricing::compute_units(model, body).map(|(low, high)| Estimate {
        low,
        high,
        assumed: false,
    })
}

/// The ceiling assumed for one job of a model Krea publishes no price for (the Topaz
/// upscalers), so that a budget can hold it: the dearest price published for any model of the
/// same kind, or for an image where no model of the kind has one. Shown wherever it is used,
/// and replaced by [`crate::KreaBuilder::assumed_price`].
pub fn assumed_price(kind: Kind) -> f64 {
    let dearest = |k: Kind| {
        crate::models::of_kind(k)
            .flat_map(|m| m.compute_units.iter().map(|r| r.compute_units))
            .max_by(f64::total_cmp)
    };
    dearest(kind)
        .or_else(|| dearest(Kind::Image))
        .unwrap_or(0.0)
}

/// What `body` may cost at most on `model`: the published estimate, or the assumed ceiling
/// (`assumed`, or [`assumed_price`] when `None`) where there is none.
pub(crate) fn worst_case(model: &ModelSpec, body: &Value, assumed: Option<f64>) -> Estimate {
    estimate(model, body)
        .unwrap_or_else(|| Estimate::assumed(assumed.unwrap_or_else(|| assumed_price(model.kind))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model(id: &str) -> &'static ModelSpec {
        krea_gen::catalog::model(id).expect("in the catalog")
    }

    #[test]
    fn sums_of_prices_read_as_whole_numbers_or_tenths() {
        let one = Estimate {
            low: 34.4,
            high: 34.4,
            assumed: false,
        };
        let mut sum = Estimate::zero();
        for _ in 0..300 {
            sum = sum.plus(one);
        }
        assert_eq!(sum.to_string(), "10320 CU");
        assert_eq!(one.times(3).to_string(), "103.2 CU");
        // An empty f64 sum is -0: it reads 0.
        assert_eq!(
            Estimate::exactly(std::iter::empty::<f64>().sum()).to_string(),
            "0 CU"
        );
    }

    #[test]
    fn a_video_is_priced_by_resolution_audio_and_duration() {
        let veo = model("google/veo-3.1-fast");
        let e = estimate(
            veo,
            &json!({"prompt": "x", "resolution": "720p", "duration": 4, "generate_audio": false}),
        )
        .expect("priced");
        assert_eq!(e.exact(), Some(183.0));
        let e = estimate(
            veo,
            &json!({"prompt": "x", "resolution": "4K", "duration": 8, "generate_audio": true}),
        )
        .expect("priced");
        assert_eq!(e.exact(), Some(1375.0));
    }

    use crate::models::CostRow;

    #[test]
    fn open_conditions_give_a_range() {
        let row = |r: &str, cu| CostRow::new(vec![("Resolution".into(), r.into())], cu, None);
        // A model whose table depends on a resolution it takes no parameter for.
        let mut m = model("google/imagen-3").clone();
        m.compute_units = vec![row("720p", 100.0), row("1080p", 150.0)];
        let e = estimate(&m, &json!({"prompt": "x"})).expect("priced");
        assert_eq!((e.low, e.high), (100.0, 150.0));
        assert_eq!(e.to_string(), "100-150 CU");
        let veo = model("google/veo-3.1-fast");
        assert_eq!(
            estimate(veo, &json!({"resolution": "8K"})),
            None,
            "no row fits"
        );
    }

    #[test]
    fn a_flat_price_is_exact_and_unpriced_models_say_so() {
        let flux = model("bfl/flux-1-dev");
        assert_eq!(
            estimate(flux, &json!({"prompt": "x"})).and_then(|e| e.exact()),
            Some(3.0)
        );
        assert_eq!(estimate(model("topaz/standard-enhance"), &json!({})), None);
        let e = Estimate {
            low: 2.0,
            high: 3.5,
            assumed: false,
        }
        .times(2);
        assert_eq!(e.to_string(), "4-7 CU");
    }

    #[test]
    fn an_unpriced_model_is_held_to_the_dearest_published_price_of_its_kind() {
        // No enhance model has a price: the dearest image stands in.
        assert_eq!(assumed_price(Kind::Enhance), 179.0);
        assert_eq!(assumed_price(Kind::Image), 179.0);
        assert_eq!(assumed_price(Kind::Video), 3608.0);
        let topaz = model("topaz/standard-enhance");
        let w = worst_case(topaz, &json!({}), None);
        assert_eq!((w.low, w.high, w.assumed), (0.0, 179.0, true));
        assert!(w.to_string().contains("assumed"), "{w}");
        assert_eq!(worst_case(topaz, &json!({}), Some(40.0)).high, 40.0);
        // A published price is never replaced.
        let flux = model("bfl/flux-1-dev");
        assert_eq!(
            worst_case(flux, &json!({"prompt": "x"}), Some(40.0)).high,
            3.0
        );
    }
}

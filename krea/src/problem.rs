//! One thing wrong with a request, found before anything is sent: where it is and what is
//! wrong, as data, so that a program can point at the field and a person reads one line.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a request goes wrong and what is allowed there ([`crate::Error::InvalidRequest`]).
///
/// ```
/// let krea = krea::Krea::builder().token("t").build()?;
/// let err = krea.image("flux").prompt("x").width(9000).check().unwrap_err();
/// let krea::Error::InvalidRequest { problems, .. } = err else { unreachable!() };
/// assert_eq!(problems[0].field.as_deref(), Some("width"));
/// assert!(problems[0].message.contains("2368"));
/// # Ok::<(), krea::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Problem {
    /// The field it concerns, as a path into the body (`width`, `styles[0].strength`; `width,
    /// height` for two that go together), or the place in a file (`steps.draw.width`, `line
    /// 3`); `None` for the request as a whole.
    pub field: Option<String>,
    /// What is wrong, and what would be right.
    pub message: String,
}

impl Problem {
    /// A problem with `field`.
    pub fn at(field: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// A problem with the request as a whole.
    pub fn whole(message: impl Into<String>) -> Problem {
        Problem {
            field: None,
            message: message.into(),
        }
    }

    /// The same problem, placed under `outer` (`steps.draw` + `width` = `steps.draw.width`).
    pub(crate) fn within(self, outer: &str) -> Problem {
        let field = match self.field {
            Some(f) if f.starts_with('[') => format!("{outer}{f}"),
            Some(f) => format!("{outer}.{f}"),
            None => outer.to_string(),
        };
        Problem {
            field: Some(field),
            message: self.message,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl From<krea_gen::validate::Violation> for Problem {
    fn from(v: krea_gen::validate::Violation) -> Problem {
        // A problem with the body as a whole is filed under the model id (`bfl/flux-1-dev`),
        // which no field path looks like.
        if v.field.contains('/') {
            Problem::whole(v.problem)
        } else {
            Problem::at(v.field, v.problem)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_reads_as_one_line_and_nests_under_its_place() {
        assert_eq!(
            Problem::at("width", "too wide").to_string(),
            "width: too wide"
        );
        assert_eq!(Problem::whole("no steps").to_string(), "no steps");
        let nested = Problem::at("styles[0].strength", "too strong").within("steps.draw");
        assert_eq!(
            nested.field.as_deref(),
            Some("steps.draw.styles[0].strength")
        );
        assert_eq!(
            Problem::whole("x").within("line 3").field.as_deref(),
            Some("line 3")
        );
    }
}

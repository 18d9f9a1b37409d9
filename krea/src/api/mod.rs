//! The rest of the API: jobs, assets, styles, node apps.

pub mod assets;
pub mod jobs;
pub mod node_apps;
pub mod styles;

use crate::client::Krea;

impl Krea {
    /// Jobs: list, get, wait, cancel, delete, resume.
    pub fn jobs(&self) -> jobs::Jobs {
        jobs::Jobs { krea: self.clone() }
    }

    /// Uploaded assets.
    pub fn assets(&self) -> assets::Assets {
        assets::Assets { krea: self.clone() }
    }

    /// Styles (LoRAs): train, list, get, update, share.
    pub fn styles(&self) -> styles::Styles {
        styles::Styles { krea: self.clone() }
    }

    /// Node apps: get, execute.
    pub fn node_apps(&self) -> node_apps::NodeApps {
        node_apps::NodeApps { krea: self.clone() }
    }
}

/// A page of results and the cursor of the next one.
pub(crate) fn next_cursor(cursor: Option<&str>) -> Option<chrono::DateTime<chrono::Utc>> {
    cursor
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
}

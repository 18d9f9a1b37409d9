//! `krea models [--kind K] [MODEL] [--schema]`: the catalog, read from Krea's document.

use krea::models::{self, CostRow, Kind, ModelSpec, ParamSpec, ParamType};
use krea_gen::catalog::value_text;
use serde_json::{Value, json};

use crate::cli::{KindArg, ModelsArgs};
use crate::exit;
use crate::output::{Column, Out, raw};

fn number(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map_or(s.clone(), String::from)
}

/// `3`, `34.4-86.5`, or `-`.
pub fn units(rows: &[CostRow]) -> String {
    let lo = rows.iter().map(|r| r.compute_units).min_by(f64::total_cmp);
    let hi = rows.iter().map(|r| r.compute_units).max_by(f64::total_cmp);
    match (lo, hi) {
        (Some(l), Some(h)) if (l - h).abs() < f64::EPSILON => number(l),
        (Some(l), Some(h)) => format!("{}-{}", number(l), number(h)),
        _ => "-".into(),
    }
}

/// What this client measured for `m` (Krea's created -> completed, averaged), from the
/// timings it keeps; `None` without a measurement.
fn measured(m: &ModelSpec) -> Option<f64> {
    static CLIENT: std::sync::OnceLock<Option<krea::Krea>> = std::sync::OnceLock::new();
    let krea = CLIENT.get_or_init(|| {
        // A client that only reads the timings file; it never sends.
        krea::Krea::builder()
            .token("offline-listing")
            .timings(krea::StatePath::Default)
            .build()
            .ok()
    });
    // Asked only for a model the catalog gives no time: then a founded expectation is one
    // this client observed.
    let e = krea.as_ref()?.expectation(m);
    (m.typical_seconds.is_none() && e.founded).then_some(e.seconds)
}

/// How long a job usually takes: the model's typical time, else the range of the times its
/// price rows give, else what this client measured (`*`), else `-`.
pub fn time(m: &ModelSpec) -> String {
    if let Some(s) = m.typical_seconds {
        return format!("~{}s", number(s));
    }
    let times = m.compute_units.iter().filter_map(|r| r.seconds);
    let lo = times.clone().min_by(f64::total_cmp);
    let hi = times.max_by(f64::total_cmp);
    match (lo, hi) {
        (Some(l), Some(h)) if (l - h).abs() < 0.5 => format!("~{}s", number(l)),
        (Some(l), Some(h)) => format!("~{}-{}s", number(l), number(h)),
        _ => measured(m).map_or_else(|| "-".into(), |s| format!("~{}s*", s.round())),
    }
}

/// Required parameters (marked `*`) then the others, at most six names.
fn main_params(m: &ModelSpec) -> String {
    let mut names: Vec<String> = m
        .parameters
        .iter()
        .filter(|p| p.required)
        .map(|p| format!("{}*", p.name))
        .collect();
    names.extend(
        m.parameters
            .iter()
            .filter(|p| !p.required)
            .map(|p| p.name.to_string()),
    );
    let extra = names.len().saturating_sub(6);
    names.truncate(6);
    if extra > 0 {
        names.push(format!("+{extra}"));
    }
    names.join(", ")
}

/// The table of models.
/// The model list, in `width` columns: id, kind, time and cost always; aliases, title and
/// parameters as the width allows.
pub fn table(kind: Option<Kind>, width: usize) -> String {
    let models: Vec<&ModelSpec> = models::all()
        .filter(|m| kind.is_none_or(|k| m.kind == k))
        .collect();
    let id_width = models.iter().map(|m| m.id.len()).max().unwrap_or(2);
    let col = |head, width, right| Column { head, width, right };
    // Widths are maxima: each column is as wide as its widest cell, up to these.
    let columns = [
        col("ID", id_width, false),
        col("KIND", 7, false),
        col("TIME", 9, true),
        col("CU", 11, true),
        col("ALIASES", 48, false),
        col("TITLE", 28, false),
        col("PARAMETERS (* required)", 0, false),
    ];
    let rows: Vec<Vec<String>> = models
        .iter()
        .map(|m| {
            let aliases = models::aliases_of(&m.id).join(", ");
            vec![
                m.id.to_string(),
                m.kind.as_str().to_string(),
                time(m),
                units(&m.compute_units),
                if aliases.is_empty() {
                    "-".into()
                } else {
                    aliases
                },
                m.title.to_string(),
                main_params(m),
            ]
        })
        .collect();
    crate::output::table(&columns, &rows, width)
}

pub fn describe(p: &ParamSpec) -> String {
    let mut parts = Vec::new();
    let ty = match (p.ty, p.items.as_deref()) {
        (ParamType::Array, Some(item)) if !item.properties.is_empty() => {
            format!(
                "array of {{{}}}",
                item.properties
                    .iter()
                    .map(|q| q.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        (ParamType::Array, Some(item)) => format!("array of {}", item.ty.as_str()),
        (ty, _) => ty.as_str().to_string(),
    };
    parts.push(match &p.format {
        Some(f) => format!("{ty} ({f})"),
        None => ty,
    });
    if p.required {
        parts.push("required".into());
    }
    if p.nullable {
        parts.push("nullable".into());
    }
    match (p.minimum, p.maximum) {
        (Some(lo), Some(hi)) if lo < 0.0 => parts.push(format!("{} to {}", number(lo), number(hi))),
        (Some(lo), Some(hi)) => parts.push(format!("{}-{}", number(lo), number(hi))),
        (Some(lo), None) => parts.push(format!("at least {}", number(lo))),
        (None, Some(hi)) => parts.push(format!("at most {}", number(hi))),
        _ => {}
    }
    match (p.min_length, p.max_length) {
        (Some(lo), Some(hi)) => parts.push(format!("{lo}-{hi} characters")),
        (Some(lo), None) => parts.push(format!("at least {lo} characters")),
        (None, Some(hi)) => parts.push(format!("up to {hi} characters")),
        _ => {}
    }
    if let Some(hi) = p.max_items {
        parts.push(format!("up to {hi} items"));
    }
    if !p.enum_values.is_empty() {
        parts.push(format!(
            "one of: {}",
            p.enum_values
                .iter()
                .map(value_text)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    // A seed's documented default is one number, but leaving the seed out does not fix it.
    if let Some(d) = p.default.as_ref().filter(|_| p.name != "seed") {
        parts.push(format!("default {}", value_text(d)));
    }
    parts.join(", ")
}

/// `text` in lines of at most `width` characters, broken between words (a word longer than
/// the width keeps a line of its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let fits = line.chars().count() + 1 + word.chars().count() <= width;
        if !line.is_empty() && !fits {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Every parameter of one model, wrapped to `width` columns.
pub fn detail(m: &ModelSpec, width: usize) -> String {
    let mut out = format!("{} ({}), {} model\n", m.title, m.id, m.kind.as_str());
    out.push_str(&format!("Endpoint: POST {}\n", m.path));
    let aliases = models::aliases_of(&m.id);
    if !aliases.is_empty() {
        out.push_str(&format!("Aliases: {}\n", aliases.join(", ")));
    }
    out.push_str(&format!(
        "Typical time: {}   Compute units: {}\n\nParameters:\n",
        time(m),
        units(&m.compute_units)
    ));
    // The name in a column of its own; what follows wraps beside it (at least 30 wide).
    let room = width.saturating_sub(31).max(30);
    for p in &m.parameters {
        let mut text = wrap(&describe(p), room);
        if let Some(d) = &p.description {
            text.extend(wrap(d, room));
        }
        for (i, line) in text.iter().enumerate() {
            let name = if i == 0 { p.name.as_str() } else { "" };
            out.push_str(&format!("  {name:<28} {line}\n"));
        }
    }
    if m.compute_units.len() > 1 {
        out.push_str("\nPricing (compute units):\n");
        for r in &m.compute_units {
            let when: Vec<String> = r
                .conditions
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            out.push_str(&format!(
                "  {:<40} {}\n",
                when.join(" "),
                number(r.compute_units)
            ));
        }
    }
    if !m.deprecated_aliases.is_empty() {
        out.push_str("\nDeprecated names (accepted by this client and sent in snake_case):\n");
        for a in &m.deprecated_aliases {
            out.push_str(&format!(
                "  {} -> {}{}\n",
                a.from,
                a.to,
                a.sunset_date
                    .as_ref()
                    .map_or(String::new(), |d| format!(" (Krea accepted it until {d})"))
            ));
        }
    }
    out
}

/// Other models whose id or an alias contains `query` (`nano` names three Nano Bananas).
fn also_matching(query: &str, shown: &ModelSpec) -> Vec<&'static str> {
    let q = query.to_ascii_lowercase();
    models::all()
        .filter(|m| m.id != shown.id)
        .filter(|m| {
            m.id.to_ascii_lowercase().contains(&q)
                || models::aliases_of(&m.id)
                    .iter()
                    .any(|a| a.contains(q.as_str()))
        })
        .map(|m| m.id.as_str())
        .collect()
}

pub fn param_json(p: &ParamSpec) -> Value {
    json!({
        "name": p.name, "type": p.ty.as_str(), "required": p.required, "nullable": p.nullable,
        "description": p.description,
        // A seed's documented default is one number, but leaving the seed out does not fix it.
        "default": p.default.as_ref().filter(|_| p.name != "seed"),
        "minimum": p.minimum, "maximum": p.maximum, "min_length": p.min_length, "max_length": p.max_length,
        "max_items": p.max_items, "enum": p.enum_values,
        "format": p.format, "items": p.items.as_deref().map(param_json),
        "properties": p.properties.iter().map(param_json).collect::<Vec<_>>(),
    })
}

pub fn model_json(m: &ModelSpec) -> Value {
    json!({
        "id": m.id, "title": m.title, "kind": m.kind.as_str(), "path": m.path,
        "aliases": models::aliases_of(&m.id), "typical_seconds": m.typical_seconds,
        "compute_units": m.compute_units.iter().map(|r| json!({"conditions": r.conditions.iter().map(|(k, v)| json!({k.to_string(): v})).collect::<Vec<_>>(), "compute_units": r.compute_units, "seconds": r.seconds})).collect::<Vec<_>>(),
        "parameters": m.parameters.iter().map(param_json).collect::<Vec<_>>(),
        "deprecated_aliases": m.deprecated_aliases.iter().map(|a| json!({"from": a.from, "to": a.to, "sunset_date": a.sunset_date, "migration_url": a.migration_url})).collect::<Vec<_>>(),
    })
}

/// `krea models --refresh`: fetch the live model list, say what is new, then list as usual.
pub async fn refresh_then_run(ctx: &crate::context::Ctx, a: &ModelsArgs) -> anyhow::Result<u8> {
    let info = ctx.krea.refresh_catalog().await?;
    let mut note = format!(
        "{} models in {} (fetched {})",
        info.models,
        info.source,
        info.fetched_at.format("%Y-%m-%d %H:%M UTC")
    );
    if !info.not_built_in.is_empty() {
        note.push_str(&format!(
            "; new since this build: {}",
            info.not_built_in.join(", ")
        ));
    }
    if !info.gone.is_empty() {
        note.push_str(&format!("; no longer listed: {}", info.gone.join(", ")));
    }
    if let Some(path) = &info.cache {
        note.push_str(&format!("; kept in {}", path.display()));
    }
    ctx.out.note(note);
    run(&ctx.out, a)
}

pub fn run(out: &Out, a: &ModelsArgs) -> anyhow::Result<u8> {
    // Models fetched by an earlier `--refresh` (not in --sim mode: the simulator has its own).
    if !out.simulated
        && let Some(path) = krea::catalog::default_cache_path()
        && let Err(e) = krea::catalog::load_cache(&path)
    {
        out.note(format!(
            "the cached model list could not be read ({e}); run krea models --refresh"
        ));
    }
    let kind = a.kind.map(|k| match k {
        KindArg::Image => Kind::Image,
        KindArg::Video => Kind::Video,
        KindArg::Enhance => Kind::Enhance,
    });
    match &a.model {
        None if out.json => out.json(&json!({
            "models": models::all()
                .filter(|m| kind.is_none_or(|k| m.kind == k))
                .map(model_json)
                .collect::<Vec<_>>()
        })),
        None => {
            let listing = table(kind, crate::output::listing_width());
            raw(&listing);
            if listing.contains("s* ") || listing.contains("s*\n") {
                raw("* measured by this client (Krea publishes no time for this model)\n");
            }
        }
        Some(name) => {
            let m = models::resolve(name)?;
            if a.schema {
                let schema = m.json_schema();
                raw(&format!("{}\n", serde_json::to_string_pretty(&schema)?));
            } else if out.json {
                out.json(&json!({ "models": [model_json(m)] }));
            } else {
                raw(&detail(m, crate::output::listing_width()));
                let others = also_matching(name, m);
                if !others.is_empty() {
                    let text = format!("Also matching {name:?}: {}", others.join(", "));
                    let lines = wrap(&text, crate::output::listing_width().saturating_sub(2));
                    raw(&format!("\n{}\n", lines.join("\n  ")));
                }
            }
        }
    }
    Ok(exit::OK)
}

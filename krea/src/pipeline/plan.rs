//! From a pipeline file to jobs: the steps in an order that respects their references (a
//! cycle or an unknown step is an error), and each step's instances, from its fan-out and the
//! outputs of the step it follows, with its parameters rendered.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value};

use super::template::{self, Ref};
use super::{PipelineFile, StepSpec};
use crate::Problem;
use crate::models::{self, ModelSpec};

/// What a finished (or, when planning, imagined) instance of a step left for the next ones.
#[derive(Debug, Clone)]
pub(crate) struct Made {
    pub label: String,
    pub vars: BTreeMap<String, Value>,
    pub urls: Vec<String>,
}

/// One job a step will run.
#[derive(Debug, Clone)]
pub(crate) struct Instance {
    pub label: String,
    /// Its variables: the upstream instance's, then its fan-out values.
    pub vars: BTreeMap<String, Value>,
    /// The request body.
    pub body: Map<String, Value>,
    /// The other steps' outputs it takes.
    pub inputs: Vec<Taken>,
}

/// Another step's output, taken by an instance.
#[derive(Debug, Clone)]
pub(crate) struct Taken {
    pub param: String,
    pub step: String,
    /// The label of the instance that made it.
    pub from: String,
    pub url: String,
}

/// One output of the step followed: the instance that made it, and its URL.
struct Unit<'m> {
    made: &'m Made,
    url: &'m str,
}

/// A step with its model resolved and its references read.
#[derive(Debug)]
pub(crate) struct Step<'a> {
    pub spec: &'a StepSpec,
    pub model: &'static ModelSpec,
    /// The step whose outputs it runs once per, if any.
    pub follows: Option<String>,
    /// Every step it reads from.
    pub needs: HashSet<String>,
}

/// Where a step's problems are filed: `steps.ID`.
pub(crate) fn place(s: &StepSpec) -> String {
    format!("steps.{}", s.id)
}

/// The steps in a runnable order; every problem found (each naming its step) if not.
pub(crate) fn order(file: &PipelineFile) -> Result<Vec<Step<'_>>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for s in &file.steps {
        let valid = !s.id.is_empty()
            && s.id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            problems.push(Problem::at(
                "steps",
                format!(
                    "{:?}: an id is letters, digits, _ and - (it names the step's directory)",
                    s.id
                ),
            ));
        }
        if !seen.insert(s.id.as_str()) {
            problems.push(Problem::at(place(s), "two steps have this id"));
        }
    }
    if file.steps.is_empty() {
        problems.push(Problem::at("steps", "the pipeline has no steps"));
    }
    let mut steps = Vec::new();
    for s in &file.steps {
        let model = match models::resolve(&s.model) {
            Ok(m) => Some(m),
            Err(e) => {
                problems.push(Problem::at(format!("{}.model", place(s)), e.to_string()));
                None
            }
        };
        let refs = match template::refs(&Value::Object(s.params.clone())) {
            Ok(r) => r,
            Err(e) => {
                problems.push(Problem::at(format!("{}.params", place(s)), e.to_string()));
                Vec::new()
            }
        };
        let mut follows: Vec<String> = Vec::new();
        let mut needs = HashSet::new();
        for r in &refs {
            let step = match r {
                Ref::Var(_) => continue,
                Ref::Each(step) => {
                    if !follows.contains(step) {
                        follows.push(step.clone());
                    }
                    step
                }
                Ref::Nth(step, _) => step,
            };
            if !seen.contains(step.as_str()) {
                problems.push(Problem::at(
                    format!("{}.params", place(s)),
                    format!("{r} names no step"),
                ));
            } else if *step == s.id {
                problems.push(Problem::at(
                    format!("{}.params", place(s)),
                    format!("{r} refers to the step itself"),
                ));
            }
            needs.insert(step.clone());
        }
        if follows.len() > 1 {
            problems.push(Problem::at(
                format!("{}.params", place(s)),
                format!(
                    "it can run once per output of one step only, not of {} (use outputs[N] for the others)",
                    follows.join(" and ")
                ),
            ));
        }
        for (name, values) in &s.fan_out {
            if values.is_empty() {
                problems.push(Problem::at(
                    format!("{}.fan_out.{name}", place(s)),
                    "has no values",
                ));
            }
        }
        if let Some(model) = model {
            steps.push(Step {
                spec: s,
                model,
                follows: follows.into_iter().next(),
                needs,
            });
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    // Kahn's order, keeping the file's order among steps that are ready together.
    let mut ordered: Vec<Step<'_>> = Vec::new();
    let mut done: HashSet<String> = HashSet::new();
    while !steps.is_empty() {
        let ready = steps
            .iter()
            .position(|s| s.needs.iter().all(|n| done.contains(n)));
        match ready {
            Some(i) => {
                let s = steps.remove(i);
                done.insert(s.spec.id.clone());
                ordered.push(s);
            }
            None => {
                let names: Vec<&str> = steps.iter().map(|s| s.spec.id.as_str()).collect();
                return Err(vec![Problem::at(
                    "steps",
                    format!(
                        "{} refer to each other in a cycle: one of them must not read the others' outputs",
                        names.join(", ")
                    ),
                )]);
            }
        }
    }
    Ok(ordered)
}

/// Every combination of a step's fan-out values (one empty combination without fan-out).
fn combinations(fan_out: &BTreeMap<String, Vec<Value>>) -> Vec<BTreeMap<String, Value>> {
    let mut out = vec![BTreeMap::new()];
    for (name, values) in fan_out {
        out = out
            .into_iter()
            .flat_map(|combo| {
                values.iter().map(move |v| {
                    let mut c = combo.clone();
                    c.insert(name.clone(), v.clone());
                    c
                })
            })
            .collect();
    }
    out
}

/// The instances of `step`, given what the steps before it made.
pub(crate) fn expand(
    step: &Step<'_>,
    vars: &BTreeMap<String, Value>,
    made: &HashMap<String, Vec<Made>>,
) -> Result<Vec<Instance>, String> {
    let spec = step.spec;
    // Each output of the step followed, or one unit without upstream.
    let units: Vec<Option<Unit<'_>>> = match &step.follows {
        None => vec![None],
        Some(up) => made
            .get(up)
            .map(|list| {
                list.iter()
                    .flat_map(|m| m.urls.iter().map(move |url| Some(Unit { made: m, url })))
                    .collect()
            })
            .unwrap_or_default(),
    };
    let combos = combinations(&spec.fan_out);
    let mut out = Vec::new();
    for unit in &units {
        for combo in &combos {
            let mut own = unit
                .as_ref()
                .map(|u| u.made.vars.clone())
                .unwrap_or_default();
            own.extend(combo.clone());
            let label = format!("{} {}", spec.id, out.len() + 1);
            let mut inputs = Vec::new();
            let lookup = |r: &Ref| -> Result<Value, String> {
                match r {
                    Ref::Var(name) => own
                        .get(name)
                        .or_else(|| vars.get(name))
                        .cloned()
                        .ok_or_else(|| {
                            format!("{r}: no such variable (define it in vars, a fan_out, or with --var)")
                        }),
                    Ref::Each(_) => Ok(Value::String(
                        unit.as_ref().map(|u| u.url.to_string()).unwrap_or_default(),
                    )),
                    Ref::Nth(up, n) => made
                        .get(up)
                        .and_then(|list| list.iter().flat_map(|m| &m.urls).nth(*n))
                        .map(|u| Value::String(u.clone()))
                        .ok_or_else(|| format!("{r}: step {up} made fewer outputs")),
                }
            };
            let mut body = Map::new();
            for (param, value) in &spec.params {
                let rendered = template::render(value, &lookup)?;
                for r in template::refs(value)? {
                    let taken = match (&r, unit) {
                        (Ref::Each(up), Some(u)) => Taken {
                            param: param.clone(),
                            step: up.clone(),
                            from: u.made.label.clone(),
                            url: u.url.to_string(),
                        },
                        (Ref::Nth(up, _), _) => {
                            let Value::String(url) = lookup(&r)? else {
                                continue;
                            };
                            let from = made
                                .get(up)
                                .and_then(|l| l.iter().find(|m| m.urls.contains(&url)))
                                .map(|m| m.label.clone())
                                .unwrap_or_default();
                            Taken {
                                param: param.clone(),
                                step: up.clone(),
                                from,
                                url,
                            }
                        }
                        _ => continue,
                    };
                    inputs.push(taken);
                }
                body.insert(param.clone(), rendered);
            }
            out.push(Instance {
                label,
                vars: own.clone(),
                body,
                inputs,
            });
        }
    }
    Ok(out)
}

/// Stand-ins for what a step would make when planning: one output per job.
pub(crate) fn imagined(step: &str, instances: &[Instance]) -> Vec<Made> {
    instances
        .iter()
        .enumerate()
        .map(|(n, i)| Made {
            label: i.label.clone(),
            vars: i.vars.clone(),
            urls: vec![format!("https://pipeline.invalid/{step}/{n}")],
        })
        .collect()
}

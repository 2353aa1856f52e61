//! The docker-compose stack (`docker-compose.yml`, `Dockerfile`, `.dockerignore`, `.env.example`
//! and `deploy/`), checked offline: no Docker daemon runs where these tests run, so the stack
//! itself is never started here. Each check is a function over the files' text that returns
//! the problems it found; every check runs on the real files (no problem allowed) and on
//! copies broken on purpose (the problem must be reported), so that none of them can pass
//! whatever the files say.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use clap::Parser;
use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

use cdcflow::sink::elasticsearch::mapping_json;
use cdcflow::sql::Dataflows;

use crate::common::root;

const COMPOSE: &str = "docker-compose.yml";
const DOCKERFILE: &str = "Dockerfile";
const DOCKERIGNORE: &str = ".dockerignore";
const ENV_EXAMPLE: &str = ".env.example";
const CONNECTOR: &str = "deploy/debezium/outbound-mysql.json";
const DASHBOARD: &str = "deploy/kibana/outbound-dashboard.ndjson";
const README: &str = "README.md";
/// The compose services with these roles.
const CDCFLOW: &str = "cdcflow";
const MYSQL: &str = "mysql";
const CONNECT: &str = "connect";
const ELASTICSEARCH: &str = "elasticsearch";
const KIBANA: &str = "kibana";
const SETUP: &str = "setup";

// ---------------------------------------------------------------------------------------------
// The files, with overrides for the broken copies.

/// The repository's files as read from disk, except those overridden (text) or removed.
#[derive(Clone, Default)]
struct Files {
    overrides: BTreeMap<String, Option<String>>,
}

impl Files {
    fn real() -> Files {
        Files::default()
    }

    /// The text of `rel`, or None when it does not exist.
    fn read(&self, rel: &str) -> Option<String> {
        let rel = normalize(rel);
        match self.overrides.get(&rel) {
            Some(o) => o.clone(),
            None => std::fs::read_to_string(root().join(&rel)).ok(),
        }
    }

    /// Whether `rel` (a file or a directory) exists.
    fn exists(&self, rel: &str) -> bool {
        let rel = normalize(rel);
        match self.overrides.get(&rel) {
            Some(o) => o.is_some(),
            None => root().join(&rel).exists(),
        }
    }

    fn is_dir(&self, rel: &str) -> bool {
        let rel = normalize(rel);
        !self.overrides.contains_key(&rel) && root().join(&rel).is_dir()
    }

    /// A copy with `from` replaced by `to` in `rel` (which must contain `from`: a broken copy
    /// that is not broken would test nothing).
    fn broken(&self, rel: &str, from: &str, to: &str) -> Files {
        let text = self.read(rel).unwrap_or_else(|| panic!("{rel} missing"));
        assert!(text.contains(from), "{rel} does not contain {from:?}");
        let mut f = self.clone();
        f.overrides
            .insert(normalize(rel), Some(text.replacen(from, to, 1)));
        f
    }

    /// A copy with the line of `rel` that contains `needle` removed.
    fn without_line(&self, rel: &str, needle: &str) -> Files {
        let text = self.read(rel).unwrap_or_else(|| panic!("{rel} missing"));
        let lines: Vec<&str> = text.lines().collect();
        let n = lines.iter().filter(|l| l.contains(needle)).count();
        assert_eq!(n, 1, "{rel}: {n} lines contain {needle:?}");
        let kept: Vec<&str> = lines.into_iter().filter(|l| !l.contains(needle)).collect();
        let mut f = self.clone();
        f.overrides
            .insert(normalize(rel), Some(kept.join("\n") + "\n"));
        f
    }
}

/// `a/./b/../c` -> `a/c`, without a leading `./` or a trailing `/`.
fn normalize(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    if p.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

// ---------------------------------------------------------------------------------------------
// Compose: parsing, interpolation, services.

/// A `${VAR...}` or `$VAR` reference in the compose file.
#[derive(Debug)]
struct VarRef {
    name: String,
    /// `${VAR:-x}` / `${VAR-x}`: compose has a value without the variable.
    has_default: bool,
}

/// Compose interpolation of one string: `$$` is a literal `$`, `${VAR}`, `${VAR:-default}`,
/// `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`, `${VAR:+alt}`, `${VAR+alt}`, `$VAR`.
fn interpolate(
    s: &str,
    env: &BTreeMap<String, String>,
    refs: &mut Vec<VarRef>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
            let inner = &body[..end];
            let name_len = inner
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(inner.len());
            let (name, op) = inner.split_at(name_len);
            if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(format!("bad variable name in ${{{inner}}} in {s:?}"));
            }
            let value = env.get(name);
            let set = value.is_some();
            let non_empty = value.is_some_and(|v| !v.is_empty());
            let (resolved, has_default) = if op.is_empty() {
                (value.cloned().unwrap_or_default(), false)
            } else if let Some(d) = op.strip_prefix(":-") {
                (
                    if non_empty {
                        value.unwrap().clone()
                    } else {
                        d.to_string()
                    },
                    true,
                )
            } else if let Some(d) = op.strip_prefix('-') {
                (
                    if set {
                        value.unwrap().clone()
                    } else {
                        d.to_string()
                    },
                    true,
                )
            } else if let Some(m) = op.strip_prefix(":?") {
                if !non_empty {
                    return Err(format!("${{{name}}} is required and unset: {m}"));
                }
                (value.unwrap().clone(), false)
            } else if let Some(m) = op.strip_prefix('?') {
                if !set {
                    return Err(format!("${{{name}}} is required and unset: {m}"));
                }
                (value.unwrap().clone(), false)
            } else if let Some(a) = op.strip_prefix(":+") {
                (
                    if non_empty {
                        a.to_string()
                    } else {
                        String::new()
                    },
                    true,
                )
            } else if let Some(a) = op.strip_prefix('+') {
                (if set { a.to_string() } else { String::new() }, true)
            } else {
                return Err(format!("unknown operator in ${{{inner}}} in {s:?}"));
            };
            refs.push(VarRef {
                name: name.to_string(),
                has_default,
            });
            out.push_str(&resolved);
            rest = &body[end + 1..];
        } else {
            let name_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if name_len == 0 || after.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(format!(
                    "a lone `$` in {s:?} (write `$$` for a literal one)"
                ));
            }
            let name = &after[..name_len];
            refs.push(VarRef {
                name: name.to_string(),
                has_default: false,
            });
            out.push_str(env.get(name).map(String::as_str).unwrap_or(""));
            rest = &after[name_len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// `.env.example`: `KEY=VALUE` lines, `#` comments.
fn parse_env_file(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut env = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("{ENV_EXAMPLE}:{}: not KEY=VALUE", i + 1))?;
        env.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(env)
}

/// The compose file parsed, and interpolated with `.env.example`'s values (what a user who
/// copied it to `.env` gets).
struct Compose {
    /// Interpolated.
    doc: Yaml,
    /// Every variable reference, with or without a default.
    refs: Vec<VarRef>,
    env_example: BTreeMap<String, String>,
}

fn load_compose(files: &Files) -> Result<Compose, Vec<String>> {
    let text = files
        .read(COMPOSE)
        .ok_or_else(|| vec![format!("{COMPOSE} missing")])?;
    let raw: Yaml = serde_yaml_ng::from_str(&text)
        .map_err(|e| vec![format!("{COMPOSE} does not parse: {e}")])?;
    let env_example = match files.read(ENV_EXAMPLE) {
        Some(t) => parse_env_file(&t).map_err(|e| vec![e])?,
        None => BTreeMap::new(),
    };
    let mut refs = Vec::new();
    let mut errors = Vec::new();
    let doc = interpolate_yaml(&raw, &env_example, &mut refs, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    if doc.get("services").and_then(Yaml::as_mapping).is_none() {
        return Err(vec![format!("{COMPOSE} has no `services` mapping")]);
    }
    Ok(Compose {
        doc,
        refs,
        env_example,
    })
}

fn interpolate_yaml(
    v: &Yaml,
    env: &BTreeMap<String, String>,
    refs: &mut Vec<VarRef>,
    errors: &mut Vec<String>,
) -> Yaml {
    match v {
        Yaml::String(s) => match interpolate(s, env, refs) {
            Ok(s) => Yaml::String(s),
            Err(e) => {
                errors.push(e);
                v.clone()
            }
        },
        Yaml::Sequence(seq) => Yaml::Sequence(
            seq.iter()
                .map(|x| interpolate_yaml(x, env, refs, errors))
                .collect(),
        ),
        Yaml::Mapping(m) => {
            let mut out = serde_yaml_ng::Mapping::new();
            for (k, x) in m {
                out.insert(
                    interpolate_yaml(k, env, refs, errors),
                    interpolate_yaml(x, env, refs, errors),
                );
            }
            Yaml::Mapping(out)
        }
        Yaml::Tagged(t) => interpolate_yaml(&t.value, env, refs, errors),
        other => other.clone(),
    }
}

/// A scalar as text (compose accepts numbers and booleans where strings are meant).
fn scalar(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Compose {
    fn services(&self) -> BTreeMap<String, &Yaml> {
        self.doc["services"]
            .as_mapping()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v)))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn service(&self, name: &str) -> Result<&Yaml, String> {
        self.doc["services"]
            .get(name)
            .ok_or_else(|| format!("{COMPOSE}: no service `{name}`"))
    }

    /// A service's `environment`, as a map or as a list of `KEY=VALUE`.
    fn environment(&self, service: &str) -> BTreeMap<String, String> {
        let Ok(s) = self.service(service) else {
            return BTreeMap::new();
        };
        match s.get("environment") {
            Some(Yaml::Mapping(m)) => m
                .iter()
                .filter_map(|(k, v)| Some((scalar(k)?, scalar(v).unwrap_or_default())))
                .collect(),
            Some(Yaml::Sequence(seq)) => seq
                .iter()
                .filter_map(|x| {
                    let s = scalar(x)?;
                    let (k, v) = s.split_once('=').unwrap_or((&s, ""));
                    Some((k.to_string(), v.to_string()))
                })
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    /// A string-or-list field (`command`, `entrypoint`, `healthcheck.test`) as words (a string
    /// form is split on whitespace, as compose does for `command`).
    fn words(v: Option<&Yaml>) -> Vec<String> {
        match v {
            Some(Yaml::Sequence(seq)) => seq.iter().filter_map(scalar).collect(),
            Some(v) => scalar(v)
                .map(|s| s.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }

    fn command(&self, service: &str) -> Vec<String> {
        self.service(service)
            .map(|s| Compose::words(s.get("command")))
            .unwrap_or_default()
    }

    /// The services a service depends on, with their conditions.
    fn depends_on(&self, service: &Yaml) -> Vec<(String, String)> {
        match service.get("depends_on") {
            Some(Yaml::Sequence(seq)) => seq
                .iter()
                .filter_map(scalar)
                .map(|n| (n, "service_started".to_string()))
                .collect(),
            Some(Yaml::Mapping(m)) => m
                .iter()
                .filter_map(|(k, v)| {
                    let cond = v
                        .get("condition")
                        .and_then(scalar)
                        .unwrap_or_else(|| "service_started".into());
                    Some((scalar(k)?, cond))
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// A service's volumes as (source, target): bind mounts have a source starting with `.`,
    /// `/` or `~`; others name a volume.
    fn volumes(&self, service: &Yaml) -> Vec<(String, String)> {
        let Some(seq) = service.get("volumes").and_then(Yaml::as_sequence) else {
            return Vec::new();
        };
        seq.iter()
            .filter_map(|v| match v {
                Yaml::Mapping(_) => Some((
                    v.get("source").and_then(scalar).unwrap_or_default(),
                    v.get("target").and_then(scalar)?,
                )),
                v => {
                    let s = scalar(v)?;
                    let mut parts = s.splitn(3, ':');
                    let src = parts.next()?.to_string();
                    let dst = parts.next()?.to_string();
                    Some((src, dst))
                }
            })
            .collect()
    }

    /// The image reference of a service.
    fn image(&self, service: &str) -> Option<String> {
        self.service(service).ok()?.get("image").and_then(scalar)
    }
}

fn is_bind_source(src: &str) -> bool {
    src.starts_with('.') || src.starts_with('/') || src.starts_with('~')
}

/// `--flag value` in a word list (also `--flag=value`).
fn flag_values(words: &[String], flag: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if words[i] == flag {
            if let Some(v) = words.get(i + 1) {
                out.push(v.clone());
            }
            i += 2;
            continue;
        }
        if let Some(v) = words[i].strip_prefix(&format!("{flag}=")) {
            out.push(v.to_string());
        }
        i += 1;
    }
    out
}

/// The host of `host:port`, of a URL, or of a list of them.
fn hosts(list: &str) -> Vec<String> {
    list.split(',')
        .map(|h| {
            let h = h.trim();
            let h = h.split_once("://").map(|(_, r)| r).unwrap_or(h);
            let h = h.split(['/', '?']).next().unwrap_or(h);
            let h = h.rsplit_once('@').map(|(_, r)| r).unwrap_or(h);
            h.rsplit_once(':').map(|(h, _)| h).unwrap_or(h).to_string()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The views and the index names cdcflow writes.

fn dataflows() -> Dataflows {
    Dataflows::load(&root().join("dataflows")).expect("the shipped dataflows load")
}

/// The alias names cdcflow's Elasticsearch sink writes (the rule of
/// `cdcflow::sink::elasticsearch`: `--index-prefix` + view name), with each view's mapping.
fn view_indices(prefix: &str) -> BTreeMap<String, Json> {
    dataflows()
        .views
        .iter()
        .map(|v| {
            let mapping: Json = serde_json::from_str(&mapping_json(v)).unwrap();
            (format!("{prefix}{}", v.name), mapping["properties"].clone())
        })
        .collect()
}

/// The `--index-prefix` the compose file gives cdcflow (default empty, as the CLI's).
fn index_prefix(c: &Compose) -> String {
    flag_values(&c.command(CDCFLOW), "--index-prefix")
        .pop()
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The checks. Each returns the problems it found.

/// Services, dependencies, health checks, volumes, images.
fn check_compose(files: &Files) -> Vec<String> {
    let c = match load_compose(files) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let mut problems = Vec::new();
    let services = c.services();
    for role in [
        CDCFLOW,
        MYSQL,
        "kafka",
        CONNECT,
        ELASTICSEARCH,
        KIBANA,
        SETUP,
    ] {
        if !services.contains_key(role) {
            problems.push(format!("no service `{role}`"));
        }
    }
    let declared_volumes: BTreeSet<String> = c
        .doc
        .get("volumes")
        .and_then(Yaml::as_mapping)
        .map(|m| m.keys().filter_map(scalar).collect())
        .unwrap_or_default();
    for (name, s) in &services {
        if s.get("image").is_none() && s.get("build").is_none() {
            problems.push(format!("service `{name}` has neither image nor build"));
        }
        for (dep, cond) in c.depends_on(s) {
            match services.get(&dep) {
                None => problems.push(format!(
                    "service `{name}` depends on `{dep}`, which is not a service"
                )),
                Some(d) => match cond.as_str() {
                    "service_healthy" if d.get("healthcheck").is_none() => problems.push(format!(
                        "service `{name}` waits for `{dep}` to be healthy, but `{dep}` has no healthcheck"
                    )),
                    "service_healthy" | "service_started" | "service_completed_successfully" => {}
                    other => problems.push(format!(
                        "service `{name}`: unknown depends_on condition `{other}`"
                    )),
                },
            }
        }
        for (src, _) in c.volumes(s) {
            if !is_bind_source(&src) && !declared_volumes.contains(&src) {
                problems.push(format!(
                    "service `{name}` uses volume `{src}`, not declared under top-level `volumes`"
                ));
            }
        }
        if let Some(hc) = s.get("healthcheck") {
            let test = Compose::words(hc.get("test"));
            if !matches!(
                test.first().map(String::as_str),
                Some("CMD" | "CMD-SHELL" | "NONE")
            ) {
                problems.push(format!(
                    "service `{name}`: healthcheck.test must start with CMD or CMD-SHELL"
                ));
            }
        }
        // Security is off (local only): nothing may listen beyond loopback on the host.
        if let Some(ports) = s.get("ports").and_then(Yaml::as_sequence) {
            for p in ports.iter().filter_map(scalar) {
                if !p.starts_with("127.0.0.1:") {
                    problems.push(format!(
                        "service `{name}` publishes `{p}` beyond 127.0.0.1 (the stack runs without security)"
                    ));
                }
            }
        }
    }
    // Elasticsearch and Kibana: same 8.x version, security stated explicitly.
    let version = |s: &str| {
        c.image(s)
            .and_then(|i| i.rsplit_once(':').map(|(_, t)| t.to_string()))
            .unwrap_or_default()
    };
    let (es, kb) = (version(ELASTICSEARCH), version(KIBANA));
    if !es.starts_with("8.") || es != kb {
        problems.push(format!(
            "Elasticsearch ({es}) and Kibana ({kb}) must be the same 8.x version"
        ));
    }
    let es_env = c.environment(ELASTICSEARCH);
    if !es_env.contains_key("xpack.security.enabled") {
        problems.push("Elasticsearch's xpack.security.enabled is not stated".into());
    }
    if let Some(dc) = c.image(CONNECT)
        && !dc.contains("debezium/connect:3.")
    {
        problems.push(format!("Connect image `{dc}` is not Debezium 3.x"));
    }
    if let Some(k) = c.image("kafka") {
        let kenv = c.environment("kafka");
        if !kenv
            .get("KAFKA_PROCESS_ROLES")
            .is_some_and(|r| r.contains("controller"))
        {
            problems.push(format!(
                "Kafka ({k}) does not run in KRaft mode (KAFKA_PROCESS_ROLES)"
            ));
        }
    }
    problems
}

/// Every variable used has a default or a value in `.env.example`, and `.env.example` names
/// no variable that the compose file does not use.
fn check_variables(files: &Files) -> Vec<String> {
    let c = match load_compose(files) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for r in &c.refs {
        used.insert(r.name.clone());
        if !r.has_default && !c.env_example.contains_key(&r.name) {
            problems.push(format!(
                "${{{}}} has no default and is not in {ENV_EXAMPLE}",
                r.name
            ));
        }
    }
    for k in c.env_example.keys() {
        if !used.contains(k) {
            problems.push(format!(
                "{ENV_EXAMPLE} sets {k}, which {COMPOSE} does not use"
            ));
        }
    }
    problems
}

/// Every file the compose file mounts or builds from exists, and so does every path under a
/// bind mount that a service's command, entrypoint or health check (or a mounted script it
/// runs) names; the setup service registers the connector and imports the dashboard.
fn check_files(files: &Files) -> Vec<String> {
    let c = match load_compose(files) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let mut problems = Vec::new();
    let path_re = regex::Regex::new(r#"/[A-Za-z0-9._/-]+"#).unwrap();
    let mut setup_names = BTreeSet::new();
    for (name, s) in c.services() {
        if let Some(b) = s.get("build") {
            let (ctx, dockerfile) = match b {
                Yaml::Mapping(_) => (
                    b.get("context").and_then(scalar).unwrap_or(".".into()),
                    b.get("dockerfile")
                        .and_then(scalar)
                        .unwrap_or("Dockerfile".into()),
                ),
                b => (scalar(b).unwrap_or(".".into()), "Dockerfile".into()),
            };
            if !files.is_dir(&ctx) {
                problems.push(format!(
                    "service `{name}`: build context `{ctx}` is not a directory"
                ));
            }
            let df = normalize(&format!("{ctx}/{dockerfile}"));
            if !files.exists(&df) {
                problems.push(format!("service `{name}`: `{df}` does not exist"));
            }
        }
        let binds: Vec<(String, String)> = c
            .volumes(s)
            .into_iter()
            .filter(|(src, _)| is_bind_source(src))
            .collect();
        for (src, _) in &binds {
            if !files.exists(src) {
                problems.push(format!(
                    "service `{name}` mounts `{src}`, which does not exist"
                ));
            }
        }
        // Paths under a bind mount named by what the service runs, one level into scripts.
        let mut texts: Vec<String> = ["command", "entrypoint"]
            .iter()
            .flat_map(|f| Compose::words(s.get(*f)))
            .chain(Compose::words(
                s.get("healthcheck").and_then(|h| h.get("test")),
            ))
            .collect();
        let mut seen = BTreeSet::new();
        let mut i = 0;
        while i < texts.len() {
            let text = texts[i].clone();
            i += 1;
            for m in path_re.find_iter(&text) {
                let p = m.as_str().trim_end_matches(['.', '/']);
                for (src, target) in &binds {
                    let target = target.trim_end_matches('/');
                    let Some(rest) = p.strip_prefix(target) else {
                        continue;
                    };
                    if !(rest.is_empty() || rest.starts_with('/')) {
                        continue;
                    }
                    let host = normalize(&format!("{src}{rest}"));
                    if !files.exists(&host) {
                        problems.push(format!(
                            "service `{name}` uses `{p}`, but `{host}` does not exist"
                        ));
                    } else if seen.insert(host.clone())
                        && !files.is_dir(&host)
                        && let Some(t) = files.read(&host)
                    {
                        if name == SETUP {
                            setup_names.insert(host.clone());
                        }
                        texts.push(t);
                    }
                }
            }
        }
    }
    for wanted in [CONNECTOR, DASHBOARD] {
        if !setup_names.contains(wanted) {
            problems.push(format!(
                "the `{SETUP}` service never uses {wanted} (through its mounts)"
            ));
        }
    }
    problems
}

/// MySQL: the binlog settings cdcflow and Debezium need, cdcflow's own schema as the init
/// SQL, and the two users.
fn check_mysql(files: &Files) -> Vec<String> {
    let c = match load_compose(files) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let mut problems = Vec::new();
    if !c.image(MYSQL).is_some_and(|i| i.starts_with("mysql:8.4")) {
        problems.push("the MySQL image is not mysql:8.4".into());
    }
    let args = c.command(MYSQL);
    for want in [
        "--binlog-format=ROW",
        "--binlog-row-image=FULL",
        "--binlog-row-metadata=FULL",
        "--gtid-mode=ON",
        "--enforce-gtid-consistency=ON",
    ] {
        if !args.iter().any(|a| a.eq_ignore_ascii_case(want)) {
            problems.push(format!("mysql is not started with {want}"));
        }
    }
    if !args
        .iter()
        .any(|a| a.starts_with("--server-id=") && a != "--server-id=0")
    {
        problems.push("mysql has no --server-id".into());
    }
    // The init files, in the order the image runs them (sorted by name).
    let mut init: Vec<(String, String)> = c
        .service(MYSQL)
        .map(|s| c.volumes(s))
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, t)| t.starts_with("/docker-entrypoint-initdb.d/"))
        .map(|(s, t)| (t, normalize(&s)))
        .collect();
    init.sort();
    let schema_at = init.iter().position(|(_, s)| s == "dataflows/schema.sql");
    let users_at = init
        .iter()
        .position(|(_, s)| files.read(s).is_some_and(|t| t.contains("CREATE USER")));
    match (schema_at, users_at) {
        (None, _) => problems.push("mysql's init files do not include dataflows/schema.sql".into()),
        (_, None) => problems.push("no mysql init file creates the users".into()),
        (Some(s), Some(u)) if s > u => {
            problems.push("the users are created before the schema (their grants name it)".into())
        }
        _ => {}
    }
    let users = users_at
        .and_then(|u| files.read(&init[u].1))
        .unwrap_or_default();
    let connector: Json = files
        .read(CONNECTOR)
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Json::Null);
    if let Some(u) = connector["database.user"].as_str()
        && !users.contains(&format!("CREATE USER '{u}'@"))
    {
        problems.push(format!("the connector's user `{u}` is never created"));
    }
    if !users.contains("CREATE USER 'cdcflow'@") {
        problems.push("no user for cdcflow's binlog client (`cdcflow`, run --mysql)".into());
    }
    if !users.contains("REPLICATION SLAVE") {
        problems.push("no user gets REPLICATION SLAVE".into());
    }
    // Variables the init script reads must be in mysql's environment.
    let env = c.environment(MYSQL);
    for m in regex::Regex::new(r"\$\{([A-Z_]+)\}")
        .unwrap()
        .captures_iter(&users)
    {
        if !env.contains_key(&m[1]) {
            problems.push(format!(
                "the users script reads ${}, not in mysql's environment",
                &m[1]
            ));
        }
    }
    problems
}

/// The Debezium connector config: what cdcflow's decoder and transaction handling need, and
/// names that agree with the compose file and `dataflows/schema.sql`.
fn check_connector(files: &Files) -> Vec<String> {
    let c = match load_compose(files) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let Some(text) = files.read(CONNECTOR) else {
        return vec![format!("{CONNECTOR} missing")];
    };
    let cfg: BTreeMap<String, Json> = match serde_json::from_str(&text) {
        Ok(c) => c,
        Err(e) => return vec![format!("{CONNECTOR} does not parse as an object: {e}")],
    };
    let mut problems = Vec::new();
    // Connect takes every value as a string.
    for (k, v) in &cfg {
        if !v.is_string() {
            problems.push(format!("{CONNECTOR}: `{k}` must be a string, not {v}"));
        }
    }
    let get = |k: &str| -> String { cfg.get(k).and_then(Json::as_str).unwrap_or("").to_string() };
    let class = get("connector.class");
    let tx = get("provide.transaction.metadata");
    let decimal = get("decimal.handling.mode");
    let heartbeat = get("heartbeat.interval.ms");
    let prefix = get("topic.prefix");
    let include = get("database.include.list");
    let db_host = get("database.hostname");
    let history = get("schema.history.internal.kafka.bootstrap.servers");
    let server_id = get("database.server.id");
    let time_mode = get("time.precision.mode");
    let password = get("database.password");
    let mut problem = |s: String| problems.push(s);
    if class != "io.debezium.connector.mysql.MySqlConnector" {
        problem(format!(
            "connector.class is `{class}`, not Debezium's MySqlConnector"
        ));
    }
    if tx != "true" {
        problem(
            "provide.transaction.metadata is not \"true\" (views would show half transactions)"
                .into(),
        );
    }
    if decimal != "string" {
        problem(format!(
            "decimal.handling.mode is `{decimal}`, not `string` (exact digits without schemas)"
        ));
    }
    if heartbeat.parse::<u64>().map_or(true, |ms| ms == 0) {
        problem(format!(
            "heartbeat.interval.ms is `{heartbeat}`, not a positive number"
        ));
    }
    if !["", "adaptive_time_microseconds", "adaptive", "connect"].contains(&time_mode.as_str()) {
        problem(format!(
            "time.precision.mode `{time_mode}` is not one cdcflow decodes"
        ));
    }
    let services = c.services();
    for h in hosts(&db_host).into_iter().chain(hosts(&history)) {
        if !services.contains_key(&h) {
            problem(format!(
                "the connector reaches `{h}`, which is not a compose service"
            ));
        }
    }
    // The databases of the schema, exactly.
    let d = dataflows();
    let schema_dbs: BTreeSet<String> = d.catalog.tables.iter().map(|t| t.db.clone()).collect();
    let listed: BTreeSet<String> = include
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if listed != schema_dbs {
        problem(format!(
            "database.include.list {listed:?} is not the schema's databases {schema_dbs:?}"
        ));
    }
    // cdcflow's --topics must read every table's topic and the transaction topic.
    let topics = flag_values(&c.command(CDCFLOW), "--topics")
        .pop()
        .unwrap_or_default();
    match regex::Regex::new(&format!("^(?:{topics})$")) {
        Err(e) => problem(format!("cdcflow's --topics `{topics}` is not a regex: {e}")),
        Ok(re) => {
            let wanted = d
                .catalog
                .tables
                .iter()
                .map(|t| format!("{prefix}.{}.{}", t.db, t.name))
                .chain([format!("{prefix}.transaction")]);
            for topic in wanted {
                if !re.is_match(&topic) {
                    problem(format!(
                        "cdcflow's --topics `{topics}` does not read `{topic}`"
                    ));
                }
            }
        }
    }
    // The MySQL server id must differ from the connector's (a replica with the same id is refused).
    if let Some(mysql_id) = c
        .command(MYSQL)
        .iter()
        .find_map(|a| a.strip_prefix("--server-id=").map(str::to_string))
        && mysql_id == server_id
    {
        problem(format!(
            "database.server.id {server_id} equals MySQL's own server id"
        ));
    }
    // Secrets through Connect's env config provider: the variable must be in Connect's
    // environment, Connect must have the provider, and MySQL must get the same value.
    let connect_env = c.environment(CONNECT);
    let mysql_env = c.environment(MYSQL);
    for m in regex::Regex::new(r"\$\{env:([A-Za-z0-9_]+)\}")
        .unwrap()
        .captures_iter(&text)
    {
        let var = &m[1];
        match connect_env.get(var) {
            None => problem(format!(
                "{CONNECTOR} reads ${{env:{var}}}, not in Connect's environment"
            )),
            Some(v) if password.contains(var) && mysql_env.get(var) != Some(v) => {
                problem(format!("Connect's {var} and MySQL's {var} differ"))
            }
            Some(_) => {}
        }
        if connect_env
            .get("CONNECT_CONFIG_PROVIDERS")
            .map(String::as_str)
            != Some("env")
            || connect_env
                .get("CONNECT_CONFIG_PROVIDERS_ENV_CLASS")
                .is_none_or(|c| !c.ends_with("EnvVarConfigProvider"))
        {
            problem("Connect has no `env` config provider for ${env:..}".into());
        }
    }
    problems
}

/// The cdcflow service: its command parses with cdcflow's own CLI, reaches services that
/// exist, and binds the dashboard beyond loopback only with a token.
fn check_cdcflow_service(files: &Files) -> Vec<String> {
    let c = match load_compose(files) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let mut problems = Vec::new();
    let args = c.command(CDCFLOW);
    if args.first().map(String::as_str) != Some("run") {
        problems.push(format!("cdcflow's command is not `run ..`: {args:?}"));
    }
    if let Err(e) = cdcflow::cli::Cli::try_parse_from(
        std::iter::once("cdcflow".to_string()).chain(args.clone()),
    ) {
        problems.push(format!("cdcflow's command does not parse: {e}"));
    }
    let services = c.services();
    let deps: BTreeSet<String> = c
        .service(CDCFLOW)
        .map(|s| c.depends_on(s).into_iter().map(|(d, _)| d).collect())
        .unwrap_or_default();
    for (flag, required) in [("--kafka", true), ("--elasticsearch", true)] {
        let values = flag_values(&args, flag);
        if values.is_empty() && required {
            problems.push(format!("cdcflow is not given {flag}"));
        }
        for h in values.iter().flat_map(|v| hosts(v)) {
            if !services.contains_key(&h) {
                problems.push(format!(
                    "cdcflow's {flag} names `{h}`, not a compose service"
                ));
            } else if !deps.contains(&h) {
                problems.push(format!("cdcflow does not depend on `{h}` ({flag})"));
            }
        }
    }
    match flag_values(&args, "--http").pop() {
        None => problems.push("cdcflow is not given --http".into()),
        Some(addr) => match addr.parse::<std::net::SocketAddr>() {
            Err(e) => problems.push(format!("--http {addr}: {e}")),
            Ok(a) => {
                let token = flag_values(&args, "--http-token").pop().unwrap_or_default();
                if !a.ip().is_loopback() && token.is_empty() {
                    problems.push(format!(
                        "--http {addr} is not loopback and has no --http-token"
                    ));
                }
                let published = c
                    .service(CDCFLOW)
                    .ok()
                    .and_then(|s| s.get("ports"))
                    .and_then(Yaml::as_sequence)
                    .into_iter()
                    .flatten()
                    .filter_map(scalar)
                    .any(|p| p.rsplit(':').next() == Some(&a.port().to_string()));
                if !published {
                    problems.push(format!(
                        "cdcflow's dashboard port {} is not published",
                        a.port()
                    ));
                }
            }
        },
    }
    problems
}

/// The Kibana saved objects: valid NDJSON, one data view per index the views write (exactly),
/// charts whose fields exist in those indices' mappings with fitting types, a dashboard whose
/// panels resolve and that charts every view.
fn check_dashboard(files: &Files) -> Vec<String> {
    let c = match load_compose(files) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let Some(text) = files.read(DASHBOARD) else {
        return vec![format!("{DASHBOARD} missing")];
    };
    let mut problems = Vec::new();
    let mut objects: BTreeMap<(String, String), Json> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let o: Json = match serde_json::from_str(line) {
            Ok(o) => o,
            Err(e) => {
                problems.push(format!("{DASHBOARD}:{}: not JSON: {e}", i + 1));
                continue;
            }
        };
        let (Some(ty), Some(id)) = (o["type"].as_str(), o["id"].as_str()) else {
            problems.push(format!("{DASHBOARD}:{}: no type or id", i + 1));
            continue;
        };
        if !o["attributes"].is_object() {
            problems.push(format!("{DASHBOARD}:{}: no attributes", i + 1));
        }
        if !["index-pattern", "lens", "visualization", "dashboard"].contains(&ty) {
            problems.push(format!("{DASHBOARD}:{}: unexpected type {ty}", i + 1));
        }
        if objects
            .insert((ty.to_string(), id.to_string()), o.clone())
            .is_some()
        {
            problems.push(format!("{DASHBOARD}: {ty} {id} twice"));
        }
    }
    let indices = view_indices(&index_prefix(&c));
    // Data views: id -> index.
    let mut data_views: BTreeMap<String, String> = BTreeMap::new();
    for ((ty, id), o) in &objects {
        if ty != "index-pattern" {
            continue;
        }
        let title = o["attributes"]["title"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match indices.get(&title) {
            None => problems.push(format!(
                "data view {id} reads `{title}`, which no view writes (they write {:?})",
                indices.keys().collect::<Vec<_>>()
            )),
            Some(props) => {
                let tf = o["attributes"]["timeFieldName"]
                    .as_str()
                    .unwrap_or_default();
                if !tf.is_empty() && props[tf]["type"] != "date" {
                    problems.push(format!(
                        "data view {id}: time field `{tf}` is not a date of `{title}`"
                    ));
                }
            }
        }
        data_views.insert(id.clone(), title);
    }
    let named: BTreeSet<&String> = data_views.values().collect();
    for index in indices.keys() {
        if !named.contains(index) {
            problems.push(format!("no data view for index `{index}`"));
        }
    }
    // Charts: id -> index charted.
    let mut charts: BTreeMap<String, String> = BTreeMap::new();
    for ((ty, id), o) in &objects {
        if ty != "lens" {
            continue;
        }
        let refs = o["references"].as_array().cloned().unwrap_or_default();
        let layers = o["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        if layers.is_empty() {
            problems.push(format!("lens {id} has no layers"));
        }
        for (layer, l) in layers {
            let ref_name = format!("indexpattern-datasource-layer-{layer}");
            let dv = refs
                .iter()
                .find(|r| r["name"] == ref_name.as_str() && r["type"] == "index-pattern")
                .and_then(|r| r["id"].as_str());
            let Some(index) = dv.and_then(|dv| data_views.get(dv)) else {
                problems.push(format!(
                    "lens {id} layer {layer}: no data view in this file"
                ));
                continue;
            };
            charts.insert(id.clone(), index.clone());
            let Some(props) = indices.get(index) else {
                continue; // its data view was reported above
            };
            let columns = l["columns"].as_object().cloned().unwrap_or_default();
            for (col, spec) in columns {
                let op = spec["operationType"].as_str().unwrap_or_default();
                let field = spec["sourceField"].as_str().unwrap_or_default();
                if field == "___records___" {
                    continue;
                }
                let fty = props[field]["type"].as_str().unwrap_or_default();
                let fits = match op {
                    "date_histogram" => fty == "date",
                    "sum" | "average" | "min" | "max" | "median" => {
                        ["long", "double", "scaled_float"].contains(&fty)
                    }
                    "terms" | "unique_count" | "count" | "last_value" => !fty.is_empty(),
                    _ => false,
                };
                if !fits {
                    problems.push(format!(
                        "lens {id} column {col}: {op} over `{field}` ({}) of `{index}` does not fit",
                        if fty.is_empty() { "no such field" } else { fty }
                    ));
                }
            }
        }
    }
    // The dashboard.
    let dashboards: Vec<&Json> = objects
        .iter()
        .filter(|((t, _), _)| t == "dashboard")
        .map(|(_, o)| o)
        .collect();
    if dashboards.len() != 1 {
        problems.push(format!("{} dashboards, not 1", dashboards.len()));
    }
    for d in dashboards {
        let panels: Vec<Json> =
            match serde_json::from_str(d["attributes"]["panelsJSON"].as_str().unwrap_or("")) {
                Ok(p) => p,
                Err(e) => {
                    problems.push(format!("the dashboard's panelsJSON does not parse: {e}"));
                    continue;
                }
            };
        let refs = d["references"].as_array().cloned().unwrap_or_default();
        let mut charted = BTreeSet::new();
        for p in &panels {
            let pi = p["panelIndex"].as_str().unwrap_or_default();
            let Some(rn) = p["panelRefName"].as_str() else {
                problems.push(format!("panel {pi} has no panelRefName"));
                continue;
            };
            let full = format!("{pi}:{rn}");
            let target = refs
                .iter()
                .find(|r| r["name"] == full.as_str() || r["name"] == rn)
                .map(|r| {
                    (
                        r["type"].as_str().unwrap_or_default().to_string(),
                        r["id"].as_str().unwrap_or_default().to_string(),
                    )
                });
            match target {
                Some(t) if objects.contains_key(&t) => {
                    if let Some(index) = charts.get(&t.1) {
                        charted.insert(index.clone());
                    }
                }
                _ => problems.push(format!("panel {pi} refers to no object in this file")),
            }
        }
        for index in indices.keys() {
            if !charted.contains(index) {
                problems.push(format!("the dashboard charts nothing of `{index}`"));
            }
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// Dockerfile and .dockerignore.

#[derive(Debug)]
struct Instruction {
    op: String,
    args: String,
}

#[derive(Debug)]
struct Stage {
    image: String,
    name: Option<String>,
    instructions: Vec<Instruction>,
}

fn parse_dockerfile(text: &str) -> Vec<Stage> {
    let mut logical = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if cur.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if t.starts_with('#') {
            continue; // a comment inside a continued instruction
        }
        if let Some(part) = t.strip_suffix('\\') {
            cur.push_str(part);
            cur.push(' ');
        } else {
            cur.push_str(t);
            logical.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        logical.push(cur);
    }
    let mut stages: Vec<Stage> = Vec::new();
    for l in logical {
        let (op, args) = l.split_once(char::is_whitespace).unwrap_or((&l, ""));
        let op = op.to_ascii_uppercase();
        let args = args.trim().to_string();
        if op == "FROM" {
            let words: Vec<&str> = args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let name = match words.as_slice() {
                [_, kw, n] if kw.eq_ignore_ascii_case("as") => Some(n.to_string()),
                _ => None,
            };
            stages.push(Stage {
                image: words.first().unwrap_or(&"").to_string(),
                name,
                instructions: Vec::new(),
            });
        } else if let Some(s) = stages.last_mut() {
            s.instructions.push(Instruction { op, args });
        }
    }
    stages
}

/// The words of an exec-form (`["a", "b"]`) or shell-form instruction.
fn exec_words(args: &str) -> Vec<String> {
    serde_json::from_str::<Vec<String>>(args)
        .unwrap_or_else(|_| args.split_whitespace().map(str::to_string).collect())
}

/// A `COPY [--flags] SRC.. DEST`: (flags, sources, dest).
fn copy_parts(args: &str) -> (Vec<String>, Vec<String>, String) {
    let words = exec_words(args);
    let (flags, rest): (Vec<String>, Vec<String>) =
        words.into_iter().partition(|w| w.starts_with("--"));
    let mut rest = rest;
    let dest = rest.pop().unwrap_or_default();
    (flags, rest, dest)
}

/// Docker's `.dockerignore` rules: patterns matched against the path and each of its parents,
/// `*` within a segment, `**` across segments, `!` re-includes, the last match wins.
struct DockerIgnore {
    rules: Vec<(bool, Vec<String>)>,
}

impl DockerIgnore {
    fn parse(text: &str) -> DockerIgnore {
        let rules = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (neg, pat) = match l.strip_prefix('!') {
                    Some(p) => (true, p.trim()),
                    None => (false, l),
                };
                let segs = normalize(pat.trim_start_matches('/'))
                    .split('/')
                    .map(str::to_string)
                    .collect();
                (neg, segs)
            })
            .collect();
        DockerIgnore { rules }
    }

    fn excluded(&self, path: &str) -> bool {
        let norm = normalize(path);
        let segs: Vec<&str> = norm.split('/').collect();
        let mut excluded = false;
        for (neg, pat) in &self.rules {
            let hit = (1..=segs.len()).any(|n| glob_segments(pat, &segs[..n]));
            if hit {
                excluded = !neg;
            }
        }
        excluded
    }
}

fn glob_segments(pat: &[String], path: &[&str]) -> bool {
    match (pat.first(), path.first()) {
        (None, None) => true,
        (None, Some(_)) => false,
        (Some(p), _) if p == "**" => (0..=path.len()).any(|k| glob_segments(&pat[1..], &path[k..])),
        (Some(_), None) => false,
        (Some(p), Some(s)) => {
            glob_one(p.as_bytes(), s.as_bytes()) && glob_segments(&pat[1..], &path[1..])
        }
    }
}

fn glob_one(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => (0..=s.len()).any(|k| glob_one(&p[1..], &s[k..])),
        (Some(b'?'), Some(_)) => glob_one(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob_one(&p[1..], &s[1..]),
        _ => false,
    }
}

/// The files a release build reads beyond `src/**.rs`: the manifest, the lock file, every
/// declared target's root, and every `include_str!`/`include_bytes!` of the sources.
fn build_inputs(files: &Files) -> Vec<String> {
    let mut out = vec!["Cargo.toml".to_string(), "Cargo.lock".to_string()];
    let manifest: toml::Table = files
        .read("Cargo.toml")
        .and_then(|t| t.parse().ok())
        .unwrap_or_default();
    let path_of = |t: &toml::Value| t.get("path").and_then(|p| p.as_str()).map(str::to_string);
    out.push(
        manifest
            .get("lib")
            .and_then(path_of)
            .unwrap_or("src/lib.rs".into()),
    );
    for (kind, dir) in [
        ("bin", "src/bin"),
        ("bench", "benches"),
        ("test", "tests"),
        ("example", "examples"),
    ] {
        for t in manifest
            .get(kind)
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            let name = t.get("name").and_then(|n| n.as_str()).unwrap_or_default();
            out.push(path_of(t).unwrap_or_else(|| {
                if kind == "bin" && name == manifest["package"]["name"].as_str().unwrap_or("") {
                    "src/main.rs".into()
                } else {
                    format!("{dir}/{name}.rs")
                }
            }));
        }
    }
    let re = regex::Regex::new(r#"include_(?:str|bytes)!\(\s*"([^"]+)"\s*\)"#).unwrap();
    let mut stack = vec![root().join("src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p
                    .strip_prefix(root())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let text = files.read(&rel).unwrap_or_default();
                let parent = Path::new(&rel)
                    .parent()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                for m in re.captures_iter(&text) {
                    out.push(normalize(&format!("{parent}/{}", &m[1])));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The builder runs exactly `cargo build --release --locked` (the README's profile) over a
/// context holding every input of that build; the runtime stage is small, runs the binary
/// as a non-root user, and holds the shipped views where cdcflow looks for them.
fn check_dockerfile(files: &Files) -> Vec<String> {
    let Some(text) = files.read(DOCKERFILE) else {
        return vec![format!("{DOCKERFILE} missing")];
    };
    let stages = parse_dockerfile(&text);
    let mut problems = Vec::new();
    if stages.len() < 2 {
        return vec![format!(
            "{DOCKERFILE} is not multi-stage ({} FROM)",
            stages.len()
        )];
    }
    let ignore = DockerIgnore::parse(&files.read(DOCKERIGNORE).unwrap_or_default());
    for must in ["target/release/cdcflow", ".git/HEAD"] {
        if !ignore.excluded(must) {
            problems.push(format!("{DOCKERIGNORE} does not exclude `{must}`"));
        }
    }
    // The builder: the stage that runs `cargo build`.
    let builds: Vec<(usize, usize)> = stages
        .iter()
        .enumerate()
        .flat_map(|(si, s)| {
            s.instructions
                .iter()
                .enumerate()
                .filter(|(_, i)| i.op == "RUN" && i.args.contains("cargo build"))
                .map(move |(ii, _)| (si, ii))
        })
        .collect();
    let [(bi, build_at)] = builds.as_slice() else {
        return vec![format!(
            "{} RUN instructions run `cargo build`, not 1",
            builds.len()
        )];
    };
    let builder = &stages[*bi];
    if !builder.image.starts_with("rust:") {
        problems.push(format!(
            "the builder image `{}` is not rust:",
            builder.image
        ));
    }
    let rust_version = files
        .read("Cargo.toml")
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|m| {
            m["package"]
                .get("rust-version")?
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_default();
    let tag = builder.image.split_once(':').map(|(_, t)| t).unwrap_or("");
    let tag_version: Vec<u32> = tag
        .split('-')
        .next()
        .unwrap_or("")
        .split('.')
        .map_while(|p| p.parse().ok())
        .collect();
    let want: Vec<u32> = rust_version
        .split('.')
        .map_while(|p| p.parse().ok())
        .collect();
    if tag_version.len() >= 2 && tag_version < want {
        problems.push(format!(
            "the builder's Rust {tag} is older than rust-version {rust_version}"
        ));
    }
    let run = &builder.instructions[*build_at].args;
    for cmd in run.split(['&', ';', '|']) {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        if words.starts_with(&["cargo", "build"]) {
            let flags: BTreeSet<&str> = words[2..].iter().copied().collect();
            if flags != BTreeSet::from(["--release", "--locked"]) {
                problems.push(format!(
                    "the build runs `{}`, not exactly `cargo build --release --locked`",
                    words.join(" ")
                ));
            }
        }
    }
    let readme = files.read(README).unwrap_or_default();
    if !(readme.contains("cargo run --release") || readme.contains("cargo build --release")) {
        problems.push("the README's build is not the release profile".into());
    }
    let mut workdir = "/".to_string();
    let mut copied: Vec<String> = Vec::new();
    for (ii, ins) in builder.instructions.iter().enumerate() {
        match ins.op.as_str() {
            "WORKDIR" => workdir = normalize(&format!("{workdir}/{}", ins.args)),
            "ENV" | "ARG" => {
                for bad in [
                    "RUSTFLAGS",
                    "CARGO_ENCODED_RUSTFLAGS",
                    "CARGO_PROFILE_",
                    "CARGO_BUILD_",
                    "CARGO_TARGET_DIR",
                ] {
                    if ins.args.contains(bad) {
                        problems.push(format!(
                            "the builder sets {bad}: not the same build as `cargo build --release`"
                        ));
                    }
                }
            }
            "COPY" | "ADD" => {
                let (flags, srcs, dest) = copy_parts(&ins.args);
                if flags.iter().any(|f| f.starts_with("--from")) {
                    continue;
                }
                if ii > *build_at {
                    continue;
                }
                let dest_abs = normalize(&format!("{workdir}/{dest}"));
                for src in srcs {
                    let src = normalize(&src);
                    if !files.exists(&src) {
                        problems.push(format!("the builder copies `{src}`, which does not exist"));
                    } else if ignore.excluded(&src) {
                        problems.push(format!(
                            "the builder copies `{src}`, which {DOCKERIGNORE} excludes"
                        ));
                    }
                    // The layout must stay the repository's.
                    let lands = if files.is_dir(&src) {
                        dest_abs.clone()
                    } else if dest.ends_with('/') || dest == "." {
                        normalize(&format!("{dest_abs}/{}", src.rsplit('/').next().unwrap()))
                    } else {
                        dest_abs.clone()
                    };
                    if lands != normalize(&format!("{workdir}/{src}")) {
                        problems.push(format!(
                            "the builder copies `{src}` to `{lands}`, not to WORKDIR/{src}"
                        ));
                    }
                    copied.push(src);
                }
            }
            _ => {}
        }
    }
    let build_workdir = workdir;
    for input in build_inputs(files) {
        let in_copy = copied
            .iter()
            .any(|c| input == *c || input.starts_with(&format!("{c}/")));
        if !in_copy {
            problems.push(format!(
                "the build reads `{input}`, which the builder does not copy before it"
            ));
        } else if ignore.excluded(&input) {
            problems.push(format!(
                "the build reads `{input}`, which {DOCKERIGNORE} excludes"
            ));
        } else if !files.exists(&input) {
            problems.push(format!("the build reads `{input}`, which does not exist"));
        }
    }
    // The runtime stage: the last one.
    let rt = stages.last().unwrap();
    let small = ["slim", "distroless", "alpine", "scratch"]
        .iter()
        .any(|s| rt.image.contains(s));
    if !small || rt.image.starts_with("rust:") {
        problems.push(format!(
            "the runtime image `{}` is not a small one",
            rt.image
        ));
    }
    let codename = |img: &str| {
        ["bullseye", "bookworm", "trixie"]
            .into_iter()
            .find(|c| img.contains(c))
    };
    if let Some(b) = codename(&builder.image)
        && codename(&rt.image) != Some(b)
    {
        problems.push(format!(
            "the runtime `{}` is not Debian {b} like the builder (glibc)",
            rt.image
        ));
    }
    let builder_ref: Vec<String> = builder
        .name
        .iter()
        .cloned()
        .chain([bi.to_string()])
        .collect();
    let binary = normalize(&format!("{build_workdir}/target/release/cdcflow"));
    let mut workdir = "/".to_string();
    let mut binary_at = None;
    let mut views_at = None;
    let mut user = None;
    let mut runs = String::new();
    let mut entry = Vec::new();
    for ins in &rt.instructions {
        match ins.op.as_str() {
            "WORKDIR" => workdir = normalize(&format!("{workdir}/{}", ins.args)),
            "USER" => user = Some(ins.args.clone()),
            "RUN" => {
                runs.push_str(&ins.args);
                runs.push('\n');
            }
            "ENTRYPOINT" => entry = exec_words(&ins.args),
            "COPY" => {
                let (flags, srcs, dest) = copy_parts(&ins.args);
                let from = flags
                    .iter()
                    .find_map(|f| f.strip_prefix("--from=").map(str::to_string));
                let dest_abs = normalize(&format!("{workdir}/{dest}"));
                for src in srcs {
                    match &from {
                        Some(f) if builder_ref.contains(f) && normalize(&src) == binary => {
                            binary_at = Some(if dest.ends_with('/') {
                                format!("{dest_abs}/cdcflow")
                            } else {
                                dest_abs.clone()
                            });
                        }
                        None if normalize(&src) == "dataflows" => views_at = Some(dest_abs.clone()),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    match &binary_at {
        None => problems.push(format!("the runtime does not copy the builder's {binary}")),
        Some(b) => {
            let runs_it = entry.first().is_some_and(|e| {
                e == b
                    || (e == "cdcflow"
                        && (b == "/usr/local/bin/cdcflow" || b == "/usr/bin/cdcflow"))
            });
            if !runs_it {
                problems.push(format!(
                    "the runtime's ENTRYPOINT {entry:?} does not run {b}"
                ));
            }
        }
    }
    match user.as_deref().map(str::trim) {
        None => problems.push("the runtime has no USER: it would run as root".into()),
        Some(u) => {
            let name = u.split(':').next().unwrap_or(u);
            if name == "root" || name == "0" {
                problems.push(format!("the runtime runs as `{u}`"));
            } else if name.parse::<u32>().is_err()
                && !(runs.contains(name) && (runs.contains("useradd") || runs.contains("adduser")))
            {
                problems.push(format!("the runtime's user `{name}` is never created"));
            }
        }
    }
    // The views where `cdcflow run` looks for them, and a state directory its user owns.
    if let Ok(c) = load_compose(files) {
        let args = c.command(CDCFLOW);
        let views = flag_values(&args, "--views")
            .pop()
            .unwrap_or("dataflows".into());
        let want = normalize(&format!("{workdir}/{views}"));
        if views_at.as_deref() != Some(want.as_str()) {
            problems.push(format!(
                "cdcflow reads its views from {want}, but the runtime copies dataflows to {views_at:?}"
            ));
        }
        if let Some(state) = flag_values(&args, "--state-dir").pop()
            && !(runs.contains("chown") && runs.contains(&state))
        {
            problems.push(format!(
                "the state directory {state} is not made and owned by the runtime user"
            ));
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[track_caller]
fn assert_clean(problems: Vec<String>) {
    assert!(problems.is_empty(), "problems:\n{}", problems.join("\n"));
}

/// The check reports a problem containing `needle` on the broken files.
#[track_caller]
fn assert_reports(problems: Vec<String>, needle: &str) {
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "expected a problem containing {needle:?}, got:\n{}",
        problems.join("\n")
    );
}

#[test]
fn compose_services_dependencies_and_health() {
    let f = Files::real();
    assert_clean(check_compose(&f));
    assert_reports(
        check_compose(&f.broken(
            COMPOSE,
            "      kafka:\n        condition: service_healthy\n      mysql:",
            "      kafka:\n        condition: service_healthy\n      mysqld:",
        )),
        "depends on `mysqld`, which is not a service",
    );
    assert_reports(
        check_compose(&f.broken(
            COMPOSE,
            "    healthcheck:\n      test: [\"CMD-SHELL\", \"curl -fsS http://localhost:8083",
            "    x-healthcheck:\n      test: [\"CMD-SHELL\", \"curl -fsS http://localhost:8083",
        )),
        "`connect` has no healthcheck",
    );
    assert_reports(
        check_compose(&f.broken(COMPOSE, "  cdcflow-state:\n", "")),
        "volume `cdcflow-state`, not declared",
    );
    assert_reports(
        check_compose(&f.broken(
            COMPOSE,
            "\"127.0.0.1:${ES_PORT:-9200}:9200\"",
            "\"${ES_PORT:-9200}:9200\"",
        )),
        "beyond 127.0.0.1",
    );
    assert_reports(
        check_compose(&f.broken(COMPOSE, "image: kibana:8.17.0", "image: kibana:8.16.0")),
        "must be the same 8.x version",
    );
    assert_reports(
        check_compose(&f.without_line(COMPOSE, "xpack.security.enabled:")),
        "xpack.security.enabled is not stated",
    );
    assert_reports(
        check_compose(&f.broken(COMPOSE, "services:", "services:\n  broken: [")),
        "does not parse",
    );
}

#[test]
fn compose_variables_have_defaults_or_env_example_values() {
    let f = Files::real();
    assert_clean(check_variables(&f));
    assert_reports(
        check_variables(&f.broken(COMPOSE, "${RUST_LOG:-info}", "${RUST_LOG_LEVEL}")),
        "${RUST_LOG_LEVEL} has no default",
    );
    // The required token without .env.example: compose itself would refuse to start.
    assert_reports(
        check_variables(&f.without_line(ENV_EXAMPLE, "CDCFLOW_HTTP_TOKEN=")),
        "${CDCFLOW_HTTP_TOKEN} is required and unset",
    );
    assert_reports(
        check_variables(&f.broken(ENV_EXAMPLE, "ES_HEAP=1g", "ES_HEAP=1g\nES_MEMORY=2g")),
        "sets ES_MEMORY, which docker-compose.yml does not use",
    );
    assert_reports(
        check_variables(&f.broken(
            COMPOSE,
            "--password=\\\"$$MYSQL_ROOT_PASSWORD\\\"",
            "--password=$ ",
        )),
        "a lone `$`",
    );
}

#[test]
fn compose_mounted_and_referenced_files_exist() {
    let f = Files::real();
    assert_clean(check_files(&f));
    assert_reports(
        check_files(&f.broken(
            COMPOSE,
            "./deploy/mysql/02-users.sh:",
            "./deploy/mysql/users.sh:",
        )),
        "mounts `./deploy/mysql/users.sh`, which does not exist",
    );
    assert_reports(
        check_files(&f.broken(
            "deploy/setup.sh",
            "/deploy/kibana/outbound-dashboard.ndjson",
            "/deploy/kibana/dashboard.ndjson",
        )),
        "`deploy/kibana/dashboard.ndjson` does not exist",
    );
    assert_reports(
        check_files(&f.broken(
            "deploy/setup.sh",
            "--data @/deploy/debezium/outbound-mysql.json",
            "--data @/tmp/connector.json",
        )),
        "never uses deploy/debezium/outbound-mysql.json",
    );
    assert_reports(
        check_files(&f.broken(
            COMPOSE,
            "dockerfile: Dockerfile",
            "dockerfile: Containerfile",
        )),
        "`Containerfile` does not exist",
    );
}

#[test]
fn compose_mysql_binlog_schema_and_users() {
    let f = Files::real();
    assert_clean(check_mysql(&f));
    assert_reports(
        check_mysql(&f.without_line(COMPOSE, "--binlog-row-metadata=FULL")),
        "--binlog-row-metadata=FULL",
    );
    assert_reports(
        check_mysql(&f.broken(
            COMPOSE,
            "/docker-entrypoint-initdb.d/01-schema.sql",
            "/docker-entrypoint-initdb.d/03-schema.sql",
        )),
        "created before the schema",
    );
    assert_reports(
        check_mysql(&f.broken(
            "deploy/mysql/02-users.sh",
            "CREATE USER 'debezium'@",
            "CREATE USER 'dbz'@",
        )),
        "the connector's user `debezium` is never created",
    );
    assert_reports(
        check_mysql(&f.broken(
            "deploy/mysql/02-users.sh",
            "CREATE USER 'cdcflow'@",
            "CREATE USER 'cdc'@",
        )),
        "no user for cdcflow's binlog client",
    );
    assert_reports(
        check_mysql(&f.broken(
            "deploy/mysql/02-users.sh",
            "${MYSQL_CDCFLOW_PASSWORD}",
            "${MYSQL_CDC_PASSWORD}",
        )),
        "reads $MYSQL_CDC_PASSWORD",
    );
}

#[test]
fn connector_has_what_cdcflow_needs() {
    let f = Files::real();
    assert_clean(check_connector(&f));
    assert_reports(
        check_connector(&f.broken(
            CONNECTOR,
            "\"provide.transaction.metadata\": \"true\"",
            "\"provide.transaction.metadata\": \"false\"",
        )),
        "provide.transaction.metadata",
    );
    assert_reports(
        check_connector(&f.broken(
            CONNECTOR,
            "\"decimal.handling.mode\": \"string\"",
            "\"decimal.handling.mode\": \"precise\"",
        )),
        "decimal.handling.mode",
    );
    assert_reports(
        check_connector(&f.without_line(CONNECTOR, "heartbeat.interval.ms")),
        "heartbeat.interval.ms",
    );
    assert_reports(
        check_connector(&f.broken(
            CONNECTOR,
            "\"topic.prefix\": \"shop\"",
            "\"topic.prefix\": \"outbound\"",
        )),
        "does not read `outbound.orders.orders`",
    );
    assert_reports(
        check_connector(&f.broken(CONNECTOR, "orders,warehouse,logistics", "orders,warehouse")),
        "is not the schema's databases",
    );
    assert_reports(
        check_connector(&f.broken(
            CONNECTOR,
            "\"database.hostname\": \"mysql\"",
            "\"database.hostname\": \"db\"",
        )),
        "reaches `db`",
    );
    assert_reports(
        check_connector(&f.without_line(COMPOSE, "CONNECT_CONFIG_PROVIDERS: env")),
        "no `env` config provider",
    );
    assert_reports(
        check_connector(&f.broken(
            CONNECTOR,
            "\"database.server.id\": \"184054\"",
            "\"database.server.id\": \"1\"",
        )),
        "equals MySQL's own server id",
    );
    assert_reports(
        check_connector(&f.broken(CONNECTOR, "\"tasks.max\": \"1\",", "\"tasks.max\": 1,")),
        "must be a string",
    );
    assert_reports(
        check_connector(&f.broken(CONNECTOR, "{", "[")),
        "does not parse",
    );
}

#[test]
fn cdcflow_service_command_is_a_valid_run() {
    let f = Files::real();
    assert_clean(check_cdcflow_service(&f));
    assert_reports(
        check_cdcflow_service(&f.broken(
            COMPOSE,
            "      - --elasticsearch\n",
            "      - --elastic\n",
        )),
        "does not parse",
    );
    assert_reports(
        check_cdcflow_service(
            &f.without_line(COMPOSE, "      - --http-token")
                .without_line(COMPOSE, "${CDCFLOW_HTTP_TOKEN:?"),
        ),
        "is not loopback and has no --http-token",
    );
    assert_reports(
        check_cdcflow_service(&f.broken(
            COMPOSE,
            "      - http://elasticsearch:9200",
            "      - http://es:9200",
        )),
        "names `es`, not a compose service",
    );
    assert_reports(
        check_cdcflow_service(&f.broken(
            COMPOSE,
            "\"127.0.0.1:${CDCFLOW_PORT:-8080}:8080\"",
            "\"127.0.0.1:${CDCFLOW_PORT:-8080}:9090\"",
        )),
        "port 8080 is not published",
    );
}

#[test]
fn kibana_saved_objects_chart_the_indices_the_views_write() {
    let f = Files::real();
    assert_clean(check_dashboard(&f));
    let text = f.read(DASHBOARD).unwrap();
    let first = text.lines().next().unwrap();
    assert_reports(
        check_dashboard(&f.broken(DASHBOARD, first, &first[..first.len() / 2])),
        "not JSON",
    );
    assert_reports(
        check_dashboard(&f.broken(
            DASHBOARD,
            "\"title\":\"units_shipped\"",
            "\"title\":\"units-shipped\"",
        )),
        "reads `units-shipped`, which no view writes",
    );
    // The index names follow cdcflow's --index-prefix.
    assert_reports(
        check_dashboard(&f.broken(
            COMPOSE,
            "      - --state-dir\n",
            "      - --index-prefix\n      - outbound-\n      - --state-dir\n",
        )),
        "no data view for index `outbound-units_shipped`",
    );
    assert_reports(
        check_dashboard(&f.broken(
            DASHBOARD,
            "\"sourceField\":\"units\"",
            "\"sourceField\":\"quantity\"",
        )),
        "over `quantity` (no such field)",
    );
    assert_reports(
        check_dashboard(&f.broken(
            DASHBOARD,
            "\"sourceField\":\"day\"",
            "\"sourceField\":\"units\"",
        )),
        "date_histogram over `units` (scaled_float)",
    );
    assert_reports(
        check_dashboard(&f.broken(
            DASHBOARD,
            "\"name\":\"p3:panel_p3\"",
            "\"name\":\"p3:panel_p4\"",
        )),
        "panel p3 refers to no object",
    );
    assert_reports(
        check_dashboard(&f.broken(
            DASHBOARD,
            "\"id\":\"cdcflow-courier-orders-per-day\",\"name\":\"p3:panel_p3\"",
            "\"id\":\"cdcflow-units-shipped-per-day\",\"name\":\"p3:panel_p3\"",
        )),
        "charts nothing of `courier_orders`",
    );
}

#[test]
fn dockerfile_builds_the_release_binary_and_runs_it_as_non_root() {
    let f = Files::real();
    assert_clean(check_dockerfile(&f));
    assert_reports(
        check_dockerfile(&f.broken(
            DOCKERFILE,
            "RUN cargo build --release --locked",
            "RUN cargo build --locked",
        )),
        "not exactly `cargo build --release --locked`",
    );
    assert_reports(
        check_dockerfile(&f.broken(
            DOCKERFILE,
            "RUN cargo build --release --locked",
            "RUN cargo build --release --locked --features x",
        )),
        "not exactly `cargo build --release --locked`",
    );
    assert_reports(
        check_dockerfile(&f.broken(
            DOCKERFILE,
            "WORKDIR /src\n",
            "WORKDIR /src\nENV RUSTFLAGS=\"-C target-cpu=native\"\n",
        )),
        "sets RUSTFLAGS",
    );
    assert_reports(
        check_dockerfile(&f.broken(DOCKERFILE, "USER cdcflow", "USER root")),
        "runs as `root`",
    );
    assert_reports(
        check_dockerfile(&f.without_line(DOCKERFILE, "USER cdcflow")),
        "no USER",
    );
    assert_reports(
        check_dockerfile(&f.broken(
            DOCKERFILE,
            "FROM debian:bookworm-slim",
            "FROM debian:bookworm",
        )),
        "is not a small one",
    );
    assert_reports(
        check_dockerfile(&f.broken(
            DOCKERFILE,
            "FROM debian:bookworm-slim",
            "FROM debian:bullseye-slim",
        )),
        "is not Debian bookworm like the builder",
    );
    // src/workload/mod.rs includes dataflows/schema.sql: the builder must copy it.
    assert_reports(
        check_dockerfile(&f.broken(
            DOCKERFILE,
            "COPY dataflows dataflows\nRUN cargo build",
            "RUN cargo build",
        )),
        "the build reads `dataflows/schema.sql`",
    );
    assert_reports(
        check_dockerfile(&f.broken(DOCKERFILE, "COPY benches benches\n", "")),
        "the build reads `benches/scaling.rs`",
    );
    assert_reports(
        check_dockerfile(&f.broken(DOCKERIGNORE, "target/\n", "target/\nsrc/dashboard/assets\n")),
        "which .dockerignore excludes",
    );
    assert_reports(
        check_dockerfile(&f.broken(DOCKERIGNORE, "target/\n", "")),
        "does not exclude `target/release/cdcflow`",
    );
    assert_reports(
        check_dockerfile(&f.broken(
            DOCKERFILE,
            "/src/target/release/cdcflow",
            "/src/target/debug/cdcflow",
        )),
        "does not copy the builder's /src/target/release/cdcflow",
    );
    assert_reports(
        check_dockerfile(&f.broken(
            DOCKERFILE,
            "COPY dataflows dataflows\nUSER",
            "COPY dataflows /usr/share/cdcflow/dataflows\nUSER",
        )),
        "reads its views from /opt/cdcflow/dataflows",
    );
    assert_reports(
        check_dockerfile(&f.broken(DOCKERFILE, "chown cdcflow:cdcflow /var/lib/cdcflow", "true")),
        "state directory /var/lib/cdcflow",
    );
}

#[test]
fn dockerignore_rules_follow_docker() {
    let i = DockerIgnore::parse("target/\n/.git\n*.profraw\n**/tmp\ndocs\n!docs/keep.md\n");
    assert!(i.excluded("target/release/cdcflow"));
    assert!(i.excluded(".git/HEAD"));
    assert!(i.excluded("x.profraw"));
    assert!(!i.excluded("src/x.profraw"), "`*` does not cross `/`");
    assert!(i.excluded("a/b/tmp/c"));
    assert!(i.excluded("docs/dashboard.png"));
    assert!(!i.excluded("docs/keep.md"));
    assert!(!i.excluded("src/lib.rs"));
    assert!(!i.excluded("targets.rs"));
}

#[test]
fn interpolation_follows_compose() {
    let env = BTreeMap::from([
        ("A".to_string(), "1".to_string()),
        ("E".to_string(), String::new()),
    ]);
    let mut refs = Vec::new();
    let i = |s: &str, refs: &mut Vec<VarRef>| interpolate(s, &env, refs);
    assert_eq!(i("x${A}y", &mut refs).unwrap(), "x1y");
    assert_eq!(i("${B:-d}", &mut refs).unwrap(), "d");
    assert_eq!(i("${E:-d}", &mut refs).unwrap(), "d");
    assert_eq!(i("${E-d}", &mut refs).unwrap(), "");
    assert_eq!(i("$$A $A", &mut refs).unwrap(), "$A 1");
    assert!(i("${B:?needed}", &mut refs).is_err());
    assert!(i("${E:?needed}", &mut refs).is_err());
    assert_eq!(i("${E?needed}", &mut refs).unwrap(), "");
    assert!(i("a $ b", &mut refs).is_err());
    let defaults: Vec<(String, bool)> = refs
        .iter()
        .map(|r| (r.name.clone(), r.has_default))
        .collect();
    assert!(defaults.contains(&("B".into(), true)) && defaults.contains(&("A".into(), false)));
}

//! `deploy/`: the Kubernetes manifests, the Prometheus scrape job and alert rules, and the Grafana
//! dashboard. No cluster, Prometheus or Grafana runs here, so what can be checked is checked:
//!
//! - the manifests validate against Kubernetes' schemas and `promtool` accepts the rules
//!   (`scripts/validate-deploy.sh`);
//! - every container runs a real subcommand with only variables the binary reads, its probes
//!   ask endpoints the subcommand serves on the port the container exposes (liveness never
//!   asks a dependency), it runs as non-root on a read-only root, with resources, and it is
//!   given longer to stop than `SHUTDOWN_GRACE_MS`;
//! - the rules and the dashboard have the structure Prometheus and Grafana need;
//! - and, against the real binaries (`orderflow api` and two `orderflow worker`s, as the
//!   manifests run them), every metric the dashboard and the rules name exists on `/metrics`
//!   once orders have gone through every path the rules watch, and every probe answers 200.

use crate::deployment::repo_file;
use crate::support::{artifacts, order_of, readme_order};
use clap::CommandFactory;
use orderflow::config::{Cli, ENVCONFIG_VARIABLES, OTEL_VARIABLES, SECRET_VARIABLES};
use orderflow_store::NewProduct;
use orderflow_store::testing::{TestDatabase, fresh_database, server_from_env};
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;
use yaml_rust2::{Yaml, YamlLoader};

const MANIFESTS: &str = "deploy/kubernetes";
const ALERTS: &str = "deploy/prometheus/alerts.yaml";
const SCRAPE: &str = "deploy/prometheus/scrape.yaml";
const DASHBOARD: &str = "deploy/grafana/orderflow.json";

/// What each subcommand serves, by the name of the container port it listens on (`http` is
/// HTTP_PORT, `metrics` is METRICS_PORT). The API's `/metrics` is left out: with AUTH_MODE=jwt
/// it needs an operator's token, so neither a probe nor Prometheus can use it. The e2e test below
/// asks every probe of the manifests of the running binaries, so this table cannot drift.
fn served(subcommand: &str, port: &str) -> &'static [&'static str] {
    match (subcommand, port) {
        ("api" | "serve", "http") => &["/live", "/ready", "/health"],
        ("api" | "serve" | "worker", "metrics") => &["/metrics", "/live"],
        _ => &[],
    }
}

/// Endpoints that ask PostgreSQL or Temporal: a liveness probe on them would restart healthy
/// pods whenever a dependency blips.
const DEPENDENCY_CHECKS: [&str; 2] = ["/ready", "/health"];

// ---------------------------------------------------------------------------------------------
// The binary's interface

/// The environment variables `orderflow <subcommand>` reads: its flags' variables, the secrets
/// (each also as `<NAME>_FILE`, see `config::secret_from_env`) and the logging variables.
fn variables_of(subcommand: &str) -> BTreeSet<String> {
    let cli = Cli::command();
    let sub = cli
        .get_subcommands()
        .find(|s| s.get_name() == subcommand)
        .unwrap_or_else(|| panic!("`orderflow {subcommand}` does not exist"));
    let mut variables: BTreeSet<String> = ["RUST_LOG", "LOG_FORMAT"].map(String::from).into();
    for secret in SECRET_VARIABLES {
        variables.insert(secret.to_owned());
        variables.insert(format!("{secret}_FILE"));
    }
    for arg in sub.get_arguments() {
        if let Some(env) = arg.get_env() {
            variables.insert(env.to_string_lossy().into_owned());
        }
    }
    // Read by the Temporal SDK's client configuration and the OpenTelemetry exporter.
    let standard = ENVCONFIG_VARIABLES.iter().chain(&OTEL_VARIABLES);
    variables.extend(standard.filter(|v| !v.ends_with('*')).map(|v| v.to_string()));
    variables
}

fn subcommands() -> BTreeSet<String> {
    Cli::command().get_subcommands().map(|s| s.get_name().to_owned()).collect()
}

// ---------------------------------------------------------------------------------------------
// The manifests

fn repo_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(name)
}

/// Every document of every `deploy/kubernetes/*.yaml`, with the file it came from.
fn manifests() -> Vec<(String, Yaml)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_path(MANIFESTS))
        .expect("deploy/kubernetes/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {MANIFESTS}");
    let mut documents = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            documents.push((name.clone(), doc));
        }
    }
    documents
}

fn of_kind<'a>(docs: &'a [(String, Yaml)], kind: &str) -> Vec<&'a Yaml> {
    docs.iter().filter(|(_, d)| d["kind"].as_str() == Some(kind)).map(|(_, d)| d).collect()
}

fn named<'a>(docs: &'a [(String, Yaml)], kind: &str, name: &str) -> &'a Yaml {
    of_kind(docs, kind)
        .into_iter()
        .find(|d| d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name} in {MANIFESTS}"))
}

fn string_map(yaml: &Yaml) -> BTreeMap<String, String> {
    yaml.as_hash()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let value = match v {
                Yaml::String(s) => s.clone(),
                Yaml::Integer(i) => i.to_string(),
                Yaml::Boolean(b) => b.to_string(),
                other => panic!("{k:?}: {other:?} is not a string"),
            };
            (k.as_str().unwrap().to_owned(), value)
        })
        .collect()
}

/// One container of a workload, with what it is given.
struct Container<'a> {
    workload: String,
    pod: &'a Yaml,
    container: &'a Yaml,
    subcommand: String,
    /// Its environment: the ConfigMaps it takes whole, then its own `env`.
    env: BTreeMap<String, String>,
    /// Port name → number.
    ports: BTreeMap<String, i64>,
}

impl Container<'_> {
    fn setting(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str)
    }

    /// The port a probe or a Service names (by name or number), by name.
    fn port_name(&self, port: &Yaml) -> String {
        match port {
            Yaml::String(name) => {
                assert!(self.ports.contains_key(name), "{}: no port named {name}", self.workload);
                name.clone()
            }
            Yaml::Integer(number) => self
                .ports
                .iter()
                .find(|(_, n)| *n == number)
                .map(|(name, _)| name.clone())
                .unwrap_or_else(|| panic!("{}: port {number} is not exposed", self.workload)),
            other => panic!("{}: bad port {other:?}", self.workload),
        }
    }
}

fn containers(docs: &[(String, Yaml)]) -> Vec<Container<'_>> {
    let config_maps: BTreeMap<String, BTreeMap<String, String>> = of_kind(docs, "ConfigMap")
        .into_iter()
        .map(|c| (c["metadata"]["name"].as_str().unwrap().to_owned(), string_map(&c["data"])))
        .collect();
    let mut found = Vec::new();
    for (_, doc) in docs {
        let kind = doc["kind"].as_str().unwrap();
        if !matches!(kind, "Deployment" | "Job" | "StatefulSet" | "DaemonSet") {
            continue;
        }
        let workload = format!("{kind} {}", doc["metadata"]["name"].as_str().unwrap());
        let pod = &doc["spec"]["template"]["spec"];
        for container in pod["containers"].as_vec().expect("containers") {
            let args = container["args"].as_vec().unwrap_or_else(|| panic!("{workload}: args"));
            let subcommand = args[0].as_str().unwrap().to_owned();
            let mut env = BTreeMap::new();
            for source in container["envFrom"].as_vec().into_iter().flatten() {
                let name = source["configMapRef"]["name"].as_str().unwrap_or_else(|| {
                    panic!("{workload}: envFrom only from ConfigMaps (secrets are files)")
                });
                let data = config_maps
                    .get(name)
                    .unwrap_or_else(|| panic!("{workload}: no ConfigMap {name}"));
                env.extend(data.clone());
            }
            for var in container["env"].as_vec().into_iter().flatten() {
                let name = var["name"].as_str().unwrap().to_owned();
                let value = var["value"].as_str().unwrap_or_else(|| {
                    panic!("{workload}: {name} has no plain value (secrets are files: {name}_FILE)")
                });
                env.insert(name, value.to_owned());
            }
            let ports = container["ports"]
                .as_vec()
                .into_iter()
                .flatten()
                .map(|p| {
                    let name =
                        p["name"].as_str().unwrap_or_else(|| panic!("{workload}: name ports"));
                    (name.to_owned(), p["containerPort"].as_i64().unwrap())
                })
                .collect();
            found.push(Container {
                workload: workload.clone(),
                pod,
                container,
                subcommand,
                env,
                ports,
            });
        }
    }
    found
}

fn labels(yaml: &Yaml) -> BTreeMap<String, String> {
    string_map(yaml)
}

fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The seconds of a `preStop: exec: command: ["sleep", "N"]`, else 0.
fn pre_stop_seconds(container: &Yaml) -> i64 {
    let command = &container["lifecycle"]["preStop"]["exec"]["command"];
    match command.as_vec().map(|c| c.iter().filter_map(Yaml::as_str).collect::<Vec<_>>()) {
        Some(c) if c.first() == Some(&"sleep") => c[1].parse().unwrap(),
        Some(c) => panic!("a preStop other than a sleep: {c:?}"),
        None => 0,
    }
}

#[test]
fn the_manifests_match_the_binary() {
    let docs = manifests();
    let commands = subcommands();
    let dockerfile = repo_file("Dockerfile");
    assert!(
        dockerfile.contains(r#"ENTRYPOINT ["orderflow"]"#),
        "the manifests give only `args`: the image's entrypoint must be the binary"
    );
    let uid: i64 = dockerfile
        .split("--uid ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
        .expect("the Dockerfile creates its user with --uid");

    // The ConfigMap holds only settings the binary reads (any subcommand: each process ignores
    // the others'), and no secret.
    let all_variables: BTreeSet<String> = commands.iter().flat_map(|c| variables_of(c)).collect();
    for config in of_kind(&docs, "ConfigMap") {
        for key in string_map(&config["data"]).keys() {
            assert!(
                all_variables.contains(key),
                "ConfigMap sets {key}, which orderflow does not read"
            );
            assert!(!SECRET_VARIABLES.contains(&key.as_str()), "{key} is a secret, not a setting");
        }
    }
    // The Secret is an example with placeholders only, and says so.
    let secret = named(&docs, "Secret", "orderflow-secrets");
    let secret_keys = string_map(&secret["stringData"]);
    assert!(!secret_keys.is_empty() && secret["data"].is_badvalue());
    for (key, value) in &secret_keys {
        assert!(value.starts_with("REPLACE-ME"), "{key} is not a placeholder: {value}");
    }
    assert!(
        docs.iter()
            .any(|(file, d)| file.contains("example") && d["kind"].as_str() == Some("Secret")),
        "the Secret's file is named as an example"
    );

    let containers = containers(&docs);
    let mut run = BTreeSet::new();
    for c in &containers {
        let w = &c.workload;
        assert!(commands.contains(&c.subcommand), "{w} runs `orderflow {}`", c.subcommand);
        assert!(c.container["command"].is_badvalue(), "{w}: keep the image's entrypoint");
        run.insert(c.subcommand.clone());

        // Only variables this subcommand reads; secrets only as files from a mounted Secret.
        let reads = variables_of(&c.subcommand);
        for var in c.container["env"].as_vec().into_iter().flatten() {
            let name = var["name"].as_str().unwrap();
            assert!(
                reads.contains(name),
                "{w} sets {name}, which `orderflow {}` does not read",
                c.subcommand
            );
            if let Some(secret) = name.strip_suffix("_FILE") {
                assert!(SECRET_VARIABLES.contains(&secret), "{name}");
                let path = var["value"].as_str().unwrap();
                assert!(
                    mounted_secret_files(c.pod, c.container).contains(path),
                    "{w}: {name}={path} is no file of a mounted Secret"
                );
            }
        }
        for volume in c.pod["volumes"].as_vec().into_iter().flatten() {
            for item in volume["secret"]["items"].as_vec().into_iter().flatten() {
                let key = item["key"].as_str().unwrap();
                assert!(secret_keys.contains_key(key), "{w} mounts {key}, not in the Secret");
            }
        }

        // Non-root (the image's user), nothing writable but volumes, no privileges.
        let pod_security = &c.pod["securityContext"];
        assert_eq!(pod_security["runAsNonRoot"].as_bool(), Some(true), "{w}");
        assert_eq!(pod_security["runAsUser"].as_i64(), Some(uid), "{w} runs as the image's user");
        assert_eq!(pod_security["seccompProfile"]["type"].as_str(), Some("RuntimeDefault"), "{w}");
        let security = &c.container["securityContext"];
        assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true), "{w}");
        assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false), "{w}");
        assert_eq!(security["capabilities"]["drop"][0].as_str(), Some("ALL"), "{w}");
        assert_eq!(c.pod["automountServiceAccountToken"].as_bool(), Some(false), "{w}");
        let resources = &c.container["resources"];
        for (kind, what) in [("requests", "cpu"), ("requests", "memory"), ("limits", "memory")] {
            assert!(!resources[kind][what].is_badvalue(), "{w}: resources.{kind}.{what}");
        }

        // Ports: `http` is HTTP_PORT, `metrics` METRICS_PORT, as the process will listen.
        let port_of = |name: &str, default: Option<i64>| {
            c.setting(name).map(|p| p.parse::<i64>().unwrap()).or(default)
        };
        if let Some(http) = c.ports.get("http") {
            assert_eq!(Some(*http), port_of("HTTP_PORT", Some(8080)), "{w}: http is HTTP_PORT");
        }
        if let Some(metrics) = c.ports.get("metrics") {
            assert_eq!(
                Some(*metrics),
                port_of("METRICS_PORT", None),
                "{w}: metrics is METRICS_PORT"
            );
        }
        for port in c.ports.keys() {
            assert!(!served(&c.subcommand, port).is_empty(), "{w}: nothing listens on {port}");
        }

        if c.subcommand == "migrate" {
            assert_eq!(c.pod["restartPolicy"].as_str(), Some("Never"), "{w}");
            continue;
        }
        // A long-running process: probes on what it serves, and time to stop by itself.
        for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
            let get = &c.container[probe]["httpGet"];
            assert!(!get.is_badvalue(), "{w}: {probe} (an HTTP GET)");
            let path = get["path"].as_str().unwrap();
            let port = c.port_name(&get["port"]);
            assert!(
                served(&c.subcommand, &port).contains(&path),
                "{w}: {probe} asks {path} on {port}, which `orderflow {}` does not serve there",
                c.subcommand
            );
            if probe != "readinessProbe" {
                assert!(
                    !DEPENDENCY_CHECKS.contains(&path),
                    "{w}: {probe} on {path} would restart healthy pods when a dependency blips"
                );
            }
        }
        if c.subcommand == "api" {
            assert_eq!(c.container["livenessProbe"]["httpGet"]["path"].as_str(), Some("/live"));
            assert_eq!(c.container["readinessProbe"]["httpGet"]["path"].as_str(), Some("/ready"));
        }
        let grace_ms: i64 = c.setting("SHUTDOWN_GRACE_MS").unwrap_or("30000").parse().unwrap();
        let termination = c.pod["terminationGracePeriodSeconds"].as_i64().unwrap_or(30);
        let pre_stop = pre_stop_seconds(c.container);
        assert!(
            termination * 1000 > pre_stop * 1000 + grace_ms,
            "{w}: terminationGracePeriodSeconds {termination} must exceed the preStop \
             ({pre_stop} s) plus SHUTDOWN_GRACE_MS ({grace_ms} ms): the process must stop by itself"
        );
        // Scraped on METRICS_PORT, by the annotations scrape.yaml reads.
        let annotations = string_map(
            &named_workload(&docs, &c.workload)["spec"]["template"]["metadata"]["annotations"],
        );
        assert_eq!(
            annotations.get("prometheus.io/scrape").map(String::as_str),
            Some("true"),
            "{w}"
        );
        assert_eq!(
            annotations.get("prometheus.io/path").map(String::as_str),
            Some("/metrics"),
            "{w}"
        );
        assert_eq!(
            annotations.get("prometheus.io/port").map(String::as_str),
            c.setting("METRICS_PORT"),
            "{w}: scraped on METRICS_PORT"
        );
    }
    for expected in ["api", "worker", "migrate"] {
        assert!(run.contains(expected), "no workload runs `orderflow {expected}`");
    }
    assert_eq!(named(&docs, "Deployment", "orderflow-api")["spec"]["template"]["spec"]["containers"][0]["args"][0].as_str(), Some("api"));
    // One Deployment per release of the workers (Worker Versioning): named after its build id.
    let worker = &named(&docs, "Deployment", "orderflow-worker-1-0-0")["spec"]["template"]["spec"]
        ["containers"][0];
    assert_eq!(worker["args"][0].as_str(), Some("worker"));
    let env: BTreeMap<&str, &str> = worker["env"]
        .as_vec()
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e["name"].as_str()?, e["value"].as_str()?)))
        .collect();
    assert_eq!(env.get("TEMPORAL_WORKER_DEPLOYMENT_NAME"), Some(&"orderflow"));
    assert_eq!(env.get("TEMPORAL_WORKER_BUILD_ID"), Some(&"1.0.0"), "the build id of its name");

    // Every Deployment selects its own pods, has a PodDisruptionBudget, and rolls out without
    // taking capacity away first; Services reach a port the pods expose.
    for deployment in of_kind(&docs, "Deployment") {
        let name = deployment["metadata"]["name"].as_str().unwrap();
        let pod_labels = labels(&deployment["spec"]["template"]["metadata"]["labels"]);
        assert!(
            selects(&labels(&deployment["spec"]["selector"]["matchLabels"]), &pod_labels),
            "{name}"
        );
        let budgets: Vec<_> = of_kind(&docs, "PodDisruptionBudget")
            .into_iter()
            .filter(|b| selects(&labels(&b["spec"]["selector"]["matchLabels"]), &pod_labels))
            .collect();
        assert_eq!(budgets.len(), 1, "{name}: one PodDisruptionBudget");
        assert!(
            deployment["spec"]["replicas"].as_i64().unwrap() >= 2,
            "{name}: a PDB needs replicas"
        );
        assert_eq!(
            deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"].as_i64(),
            Some(0),
            "{name}"
        );
    }
    for service in of_kind(&docs, "Service") {
        let name = service["metadata"]["name"].as_str().unwrap();
        let selector = labels(&service["spec"]["selector"]);
        let targets: Vec<_> = containers
            .iter()
            .filter(|c| selects(&selector, &labels(&named_workload(&docs, &c.workload)["spec"]["template"]["metadata"]["labels"])))
            .collect();
        assert!(!targets.is_empty(), "Service {name} selects no pod");
        for port in service["spec"]["ports"].as_vec().unwrap() {
            for c in &targets {
                let port = c.port_name(&port["targetPort"]);
                assert!(!served(&c.subcommand, &port).is_empty(), "Service {name}: {port}");
            }
        }
    }
    // Everything in one namespace, the one the scrape job looks in.
    for (file, doc) in &docs {
        if doc["kind"].as_str() != Some("Namespace") {
            assert_eq!(doc["metadata"]["namespace"].as_str(), Some("orderflow"), "{file}");
        }
    }
    let scrape = &YamlLoader::load_from_str(&repo_file(SCRAPE)).unwrap()[0];
    let job = &scrape["scrape_configs"][0];
    assert_eq!(
        job["kubernetes_sd_configs"][0]["namespaces"]["names"][0].as_str(),
        Some("orderflow")
    );
}

fn named_workload<'a>(docs: &'a [(String, Yaml)], workload: &str) -> &'a Yaml {
    let (kind, name) = workload.split_once(' ').unwrap();
    named(docs, kind, name)
}

/// The paths of the files of the Secret volumes a container mounts.
fn mounted_secret_files(pod: &Yaml, container: &Yaml) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    for mount in container["volumeMounts"].as_vec().into_iter().flatten() {
        let volume = pod["volumes"]
            .as_vec()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == mount["name"])
            .expect("a mounted volume exists");
        for item in volume["secret"]["items"].as_vec().into_iter().flatten() {
            let dir = mount["mountPath"].as_str().unwrap();
            files.insert(format!("{dir}/{}", item["path"].as_str().unwrap()));
        }
    }
    files
}

/// `kubernetes-validate` (Kubernetes' schemas, strict) and `promtool check/test rules`, through
/// `scripts/validate-deploy.sh`. `make test` installs both (scripts/bootstrap.sh); without them
/// the test fails and says how to install them.
#[test]
fn the_manifests_and_rules_validate_with_the_real_tools() {
    let script = repo_path("scripts/validate-deploy.sh");
    let output = std::process::Command::new("bash").arg(&script).output().expect("bash runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // The script's exit code for "a validator is not installed".
    const MISSING: i32 = 78;
    assert_ne!(
        output.status.code(),
        Some(MISSING),
        "a validator of deploy/ is not installed: `make test` installs them (scripts/bootstrap.sh, \
         ensure_deploy_validators: kubernetes-validate from PyPI into .tools/venv, promtool from \
         Debian's prometheus package):\n{text}"
    );
    assert!(output.status.success(), "scripts/validate-deploy.sh failed:\n{text}");
}

// ---------------------------------------------------------------------------------------------
// PromQL: the metric names a query reads

/// PromQL's words that are not metric names: binary operators, modifiers, the special values,
/// and the aggregations (which may be followed by `by (...)` rather than by their `(`). Other
/// functions need no list: they are the identifiers followed by `(`.
const PROMQL_KEYWORDS: [&str; 28] = [
    "and",
    "or",
    "unless",
    "bool",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "atan2",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
/// Keywords whose parenthesised list that follows is label names, not expressions.
const LABEL_LISTS: [&str; 6] = ["by", "without", "on", "ignoring", "group_left", "group_right"];

/// The metric names a PromQL expression (or a Grafana query, with `$variables`) reads. Not a
/// parser, a tokenizer that knows what is not a metric name:
/// 1. string literals (`"..."`, `'...'`, `` `...` ``: label values, regexes, `$job`) are dropped;
/// 2. label matchers `{...}` and ranges/subqueries `[...]` (durations, `$__rate_interval`) too;
/// 3. `$variables` outside them are dropped; numbers and durations (`0.99`, `5m`) are skipped;
/// 4. of the identifiers left, those followed by `(` are functions or aggregations, the
///    keywords are operators or modifiers, and the list after `by`, `without`, `on`, `ignoring`,
///    `group_left`, `group_right` holds label names;
/// 5. what remains is a metric name.
fn metric_names(expr: &str) -> BTreeSet<String> {
    // Steps 1 and 2: blank out what is inside quotes, braces and brackets.
    let mut plain = String::with_capacity(expr.len());
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                let mut escaped = false;
                for inner in chars.by_ref() {
                    if inner == c && !escaped {
                        break;
                    }
                    escaped = inner == '\\' && !escaped;
                }
                plain.push(' ');
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                // Matchers hold no braces once strings are out; ranges no brackets.
                let mut quote = None;
                for inner in chars.by_ref() {
                    match quote {
                        Some(q) if inner == q => quote = None,
                        Some(_) => {}
                        None if matches!(inner, '"' | '\'' | '`') => quote = Some(inner),
                        None if inner == close => break,
                        None => {}
                    }
                }
                plain.push(' ');
            }
            other => plain.push(other),
        }
    }
    // Steps 3 to 5, on tokens.
    let bytes: Vec<char> = plain.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut skip_list = false;
    while i < bytes.len() {
        let c = bytes[i];
        if c == '$' {
            // A Grafana variable: `$name`, `${name}` (braces already blanked) or `$__name`.
            i += 1;
            while i < bytes.len() && (bytes[i].is_alphanumeric() || bytes[i] == '_') {
                i += 1;
            }
        } else if c.is_ascii_digit()
            || (c == '.' && bytes.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            // A number or a duration: 0.99, 1e-9, 5m, 1h30m.
            i += 1;
            while i < bytes.len() {
                let exponent_sign =
                    matches!(bytes[i], '-' | '+') && matches!(bytes[i - 1], 'e' | 'E');
                if !(bytes[i].is_alphanumeric() || bytes[i] == '.' || exponent_sign) {
                    break;
                }
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_alphanumeric() || bytes[i] == '_' || bytes[i] == ':')
            {
                i += 1;
            }
            let word: String = bytes[start..i].iter().collect();
            let mut next = i;
            while next < bytes.len() && bytes[next].is_whitespace() {
                next += 1;
            }
            let called = bytes.get(next) == Some(&'(');
            let lower = word.to_ascii_lowercase();
            if LABEL_LISTS.contains(&lower.as_str()) {
                skip_list = true;
                continue;
            }
            if !called && !PROMQL_KEYWORDS.contains(&lower.as_str()) {
                names.insert(word);
            }
        } else if c == '(' && skip_list {
            // The label list after `by` and the like.
            while i < bytes.len() && bytes[i] != ')' {
                i += 1;
            }
            i += 1;
            skip_list = false;
        } else {
            if !c.is_whitespace() {
                skip_list = false;
            }
            i += 1;
        }
    }
    names
}

#[test]
fn metric_names_are_read_out_of_promql() {
    let names = |e| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (le, step) (rate(a_seconds_bucket{job="$job", outcome=~"ok|error"}[$__rate_interval])))"#
        ),
        ["a_seconds_bucket"]
    );
    assert_eq!(
        names(
            "sum(rate(x_total[5m])) / on (job) group_left (pod) sum(y) > 0.05 and sum(rate(x_total[5m] offset 1h)) > 1e-9"
        ),
        ["x_total", "y"]
    );
    assert_eq!(
        names(
            r#"(sum by (component) (up{job="orderflow"}) == 0) or absent(up{component="worker", x="}"})"#
        ),
        ["up"]
    );
    assert_eq!(names("sum(z) without (instance) * 100"), ["z"]);
    assert_eq!(names("rate(w[5m:1m]) unless bool v"), ["v", "w"]);
}

// ---------------------------------------------------------------------------------------------
// Alert rules and dashboard: structure

fn alert_rules() -> Vec<Yaml> {
    let docs = YamlLoader::load_from_str(&repo_file(ALERTS)).expect("alerts.yaml parses");
    let groups = docs[0]["groups"].as_vec().expect("alerts.yaml has groups").clone();
    groups.iter().flat_map(|g| g["rules"].as_vec().expect("a group has rules").clone()).collect()
}

fn dashboard() -> Json {
    serde_json::from_str(&repo_file(DASHBOARD)).expect("the dashboard is JSON")
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Json) -> Vec<&Json> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        all.push(panel);
        all.extend(panel["panels"].as_array().into_iter().flatten());
    }
    all
}

/// The queries of the dashboard and the rules, each with where it is used.
fn queries() -> Vec<(String, String)> {
    let mut found = Vec::new();
    for rule in alert_rules() {
        found.push((
            format!("alert {}", rule["alert"].as_str().unwrap()),
            rule["expr"].as_str().unwrap().to_owned(),
        ));
    }
    let dashboard = dashboard();
    for panel in panels(&dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap();
            found.push((format!("panel {title:?}"), target["expr"].as_str().unwrap().to_owned()));
        }
    }
    found
}

/// GitHub's anchor of a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn balanced(expr: &str) -> bool {
    let mut stack = Vec::new();
    let mut quote = None;
    for c in expr.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '(' | '{' | '[') => stack.push(c),
            (None, ')') if stack.pop() != Some('(') => return false,
            (None, '}') if stack.pop() != Some('{') => return false,
            (None, ']') if stack.pop() != Some('[') => return false,
            _ => {}
        }
    }
    stack.is_empty() && quote.is_none()
}

#[test]
fn the_alert_rules_are_well_formed_and_have_runbooks() {
    let docs = YamlLoader::load_from_str(&repo_file(ALERTS)).expect("alerts.yaml parses");
    let runbook = repo_file("deploy/README.md");
    let anchors: BTreeSet<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| anchor(h.trim_start_matches('#')))
        .collect();
    let mut names = BTreeSet::new();
    let mut groups = BTreeSet::new();
    for group in docs[0]["groups"].as_vec().unwrap() {
        let group_name = group["name"].as_str().expect("a group has a name");
        assert!(groups.insert(group_name), "group {group_name} twice");
        for rule in group["rules"].as_vec().unwrap() {
            let name = rule["alert"].as_str().expect("every rule is an alert");
            assert!(names.insert(name), "alert {name} twice");
            let expr = rule["expr"].as_str().unwrap_or_else(|| panic!("{name}: expr"));
            assert!(balanced(expr), "{name}: unbalanced {expr}");
            assert!(!metric_names(expr).is_empty(), "{name}: reads no metric");
            let duration = rule["for"].as_str().unwrap_or_else(|| panic!("{name}: for"));
            let (number, unit) = duration.split_at(duration.len() - 1);
            assert!(
                number.parse::<u32>().is_ok() && "smhd".contains(unit),
                "{name}: for {duration}"
            );
            let severity = rule["labels"]["severity"].as_str();
            assert!(
                matches!(severity, Some("critical" | "warning")),
                "{name}: severity {severity:?}"
            );
            for key in ["summary", "description", "runbook_url"] {
                assert!(
                    rule["annotations"][key].as_str().is_some_and(|s| !s.is_empty()),
                    "{name}: {key}"
                );
            }
            let url = rule["annotations"]["runbook_url"].as_str().unwrap();
            let target =
                url.strip_prefix("deploy/README.md#").unwrap_or_else(|| panic!("{name}: {url}"));
            assert!(anchors.contains(target), "{name}: deploy/README.md has no section #{target}");
            assert_eq!(
                target,
                name.to_lowercase(),
                "{name}: its runbook section is named after it"
            );
        }
    }
    // The rules select the scrape job of scrape.yaml.
    let scrape = &YamlLoader::load_from_str(&repo_file(SCRAPE)).unwrap()[0];
    let job = scrape["scrape_configs"][0]["job_name"].as_str().unwrap();
    for (place, expr) in queries().iter().filter(|(p, _)| p.starts_with("alert")) {
        assert!(expr.contains(&format!("job=\"{job}\"")), "{place} does not select job {job}");
    }
}

#[test]
fn the_grafana_dashboard_is_well_formed() {
    let dashboard = dashboard();
    assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(dashboard["uid"].as_str().is_some_and(|u| !u.is_empty() && u.len() <= 40));
    let schema = dashboard["schemaVersion"].as_i64().expect("schemaVersion");
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    // The data source is a variable, so the dashboard imports into any Grafana.
    let variables = dashboard["templating"]["list"].as_array().expect("templating");
    let datasource =
        variables.iter().find(|v| v["type"] == "datasource").expect("a datasource variable");
    assert_eq!(datasource["query"], "prometheus");
    let reference = format!("${{{}}}", datasource["name"].as_str().unwrap());
    // `$job` defaults to the job of scrape.yaml.
    let scrape = &YamlLoader::load_from_str(&repo_file(SCRAPE)).unwrap()[0];
    let job = variables.iter().find(|v| v["name"] == "job").expect("a job variable");
    assert_eq!(job["query"].as_str(), scrape["scrape_configs"][0]["job_name"].as_str());

    let mut ids = BTreeSet::new();
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().expect("a title");
        assert!(ids.insert(panel["id"].as_i64().expect("an id")), "{title}: id taken");
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_i64().unwrap(), grid["w"].as_i64().unwrap());
        assert!(x >= 0 && w > 0 && x + w <= 24 && grid["h"].as_i64().unwrap() > 0, "{title}");
        assert!(grid["y"].as_i64().is_some(), "{title}");
        if panel["type"] == "row" {
            continue;
        }
        assert!(panel["type"].as_str().is_some(), "{title}: type");
        assert_eq!(panel["datasource"]["uid"].as_str(), Some(reference.as_str()), "{title}");
        let targets = panel["targets"].as_array().filter(|t| !t.is_empty()).expect("queries");
        let mut refs = BTreeSet::new();
        for target in targets {
            assert!(refs.insert(target["refId"].as_str().expect("refId")), "{title}: refId twice");
            let expr = target["expr"].as_str().expect("expr");
            assert!(balanced(expr), "{title}: unbalanced {expr}");
            assert!(!metric_names(expr).is_empty(), "{title}: reads no metric: {expr}");
            assert!(expr.contains("job=\"$job\""), "{title}: does not select $job: {expr}");
        }
    }
    assert!(ids.len() >= 20, "a dashboard of {} panels", ids.len());
}

// ---------------------------------------------------------------------------------------------
// Against the running binaries

/// A port for a child process to listen on: outside the ephemeral range, so that no outgoing
/// connection can take it between now and the child's bind (see `orderflow_testbed::free_ports`).
fn free_port() -> u16 {
    orderflow_testbed::free_ports(1).expect("a free port")
}

/// An `orderflow` process, killed when dropped; its log in `test-artifacts/`.
struct Binary {
    child: tokio::process::Child,
    log: PathBuf,
    /// Port name (as in the manifests) → port.
    ports: BTreeMap<&'static str, u16>,
}

impl Binary {
    fn start(
        subcommand: &str,
        label: &str,
        database: &TestDatabase,
        env: &[(&str, String)],
    ) -> Self {
        let server = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| orderflow_store::DEFAULT_DATABASE_URL.into());
        let (server, _) = server.rsplit_once('/').expect("DATABASE_URL names a database");
        let name = database.options.get_database().unwrap();
        let log = artifacts().join(format!("deploy-{label}-{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let metrics = free_port();
        let mut ports = BTreeMap::from([("metrics", metrics)]);
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_orderflow"));
        command
            .arg(subcommand)
            .env("DATABASE_URL", format!("{server}/{name}"))
            .env("TEMPORAL_HOST", std::env::var("TEMPORAL_HOST").unwrap_or("localhost".into()))
            .env("TEMPORAL_PORT", std::env::var("TEMPORAL_PORT").unwrap_or("7233".into()))
            .env("METRICS_PORT", metrics.to_string())
            .env("AUTH_MODE", "off")
            .env_remove("PAYMENT_PROVIDER_URL")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        if subcommand == "api" {
            let http = free_port();
            ports.insert("http", http);
            command.env("HTTP_HOST", "127.0.0.1").env("HTTP_PORT", http.to_string());
        }
        let child = command
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("the orderflow binary starts");
        Self { child, log, ports }
    }

    fn url(&self, port: &str, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ports[port])
    }

    /// Waits until `path` answers 200 on `port`; the log if the process dies or never answers.
    async fn wait_for(&mut self, port: &str, path: &str) {
        let url = self.url(port, path);
        for _ in 0..600 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}):\n{}", self.log.display(), self.log_text());
            }
            if reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("{url} never answered 200:\n{}", self.log_text());
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn metrics(&self) -> String {
        let response = reqwest::get(self.url("metrics", "/metrics")).await.unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// SIGTERM, and waits for the process to end.
    async fn stop(mut self) {
        let pid = self.child.id().expect("running");
        let sent = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        assert!(sent.is_ok_and(|s| s.success()));
        let exited = tokio::time::timeout(Duration::from_secs(40), self.child.wait()).await;
        assert!(exited.is_ok(), "{} did not stop:\n{}", self.log.display(), self.log_text());
    }
}

/// The names of the series a `/metrics` page has, and of the histograms and summaries it
/// declares (`# TYPE x histogram` is sampled as `x_bucket`, `x_sum`, `x_count`).
fn exported(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(declared) = line.strip_prefix("# TYPE ") {
            let mut parts = declared.split_whitespace();
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            if matches!(kind, "histogram" | "summary") {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

struct Api<'a>(&'a Binary);

impl Api<'_> {
    async fn post(&self, path: &str, body: Option<&Json>) -> (u16, Json) {
        let mut request = reqwest::Client::new().post(self.0.url("http", path));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Json::Null))
    }

    /// Places an order that must be accepted (retrying while the previous one still counts as
    /// in flight); its workflow id.
    async fn place(&self, order: &Json) -> String {
        for _ in 0..100 {
            match self.post("/api/orders", Some(order)).await {
                (201, body) => return body["workflow_id"].as_str().unwrap().to_owned(),
                (503, _) => tokio::time::sleep(Duration::from_millis(100)).await,
                (status, body) => panic!("{status}: {body}"),
            }
        }
        panic!("the order was never admitted");
    }

    async fn status(&self, workflow_id: &str) -> String {
        let url = self.0.url("http", &format!("/api/orders/status?workflow_id={workflow_id}"));
        let body: Json = reqwest::get(url).await.unwrap().json().await.unwrap();
        body["status"].as_str().unwrap_or_default().to_owned()
    }

    async fn wait_for(&self, workflow_id: &str, status: &str) {
        for _ in 0..600 {
            if self.status(workflow_id).await == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{workflow_id} never became {status}: {}", self.status(workflow_id).await);
    }
}

/// Polls `binary`'s `/metrics` until it has `name`; the page.
async fn metrics_with(binary: &Binary, name: &str) -> String {
    for _ in 0..300 {
        let text = binary.metrics().await;
        if exported(&text).contains(name) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{name} never appeared on {}:\n{}",
        binary.url("metrics", "/metrics"),
        binary.log_text()
    );
}

/// The metrics the dashboard or the alerts read that none of `pages` exports, and where each
/// is read.
fn unexported<'a>(pages: impl Iterator<Item = &'a String>) -> BTreeMap<String, Vec<String>> {
    let exported: BTreeSet<String> = pages.flat_map(|p| exported(p)).collect();
    // `up` is made by Prometheus for each target it scrapes, not exported by one.
    let synthesized = ["up"];
    let mut missing = BTreeMap::<String, Vec<String>>::new();
    for (place, expr) in queries() {
        for name in metric_names(&expr) {
            if !exported.contains(&name) && !synthesized.contains(&name.as_str()) {
                missing.entry(name).or_default().push(place.clone());
            }
        }
    }
    missing
}

#[tokio::test]
async fn the_dashboard_and_the_alerts_read_metrics_the_binaries_export_and_the_probes_answer() {
    let database = fresh_database(&server_from_env()).await;
    let other_database = fresh_database(&server_from_env()).await;
    let queue = format!("orderflow-test-{}", uuid::Uuid::new_v4().simple());
    let common = [("TEMPORAL_TASK_QUEUE", queue.clone())];

    // The API as the manifests run it, with one order in flight at most (to see one shed), a
    // 2 s task timeout (a cancellation reaches a running step at its 1.6 s heartbeat) and
    // webhooks on (to see one refused).
    let mut api = Binary::start(
        "api",
        "api",
        &database,
        &[
            common[0].clone(),
            ("MAX_ORDERS_IN_FLIGHT", "1".into()),
            ("WORKFLOW_TASK_TIMEOUT_MS", "2000".into()),
            ("RATE_LIMIT_WRITES_PER_SECOND", "0".into()),
            ("PAYMENT_PROVIDER_URL", "http://127.0.0.1:9".into()),
            ("PAYMENT_WEBHOOK_SECRET", "deploy-test-webhook-secret-of-32-bytes".into()),
        ],
    );
    api.wait_for("http", "/live").await;
    let orders = Api(&api);

    // A worker of another database on the same queue: it gets the first order (it is the only
    // poller) and refuses it; its workflow task fails.
    let mut foreign = Binary::start("worker", "foreign-worker", &other_database, &common);
    foreign.wait_for("metrics", "/metrics").await;
    let first = orders.place(&readme_order()).await;
    // The SDK exports a counter only after its first increment. The refusal fails the workflow
    // task, and a failed task evicts the run from the worker's cache: once the refusal is
    // counted, both events have happened, and their series must follow.
    metrics_with(&foreign, "orderflow_foreign_orders_refused_total").await;
    metrics_with(&foreign, "temporal_workflow_task_execution_failed_total").await;
    let mut pages =
        vec![metrics_with(&foreign, "temporal_sticky_cache_total_forced_eviction_total").await];
    foreign.stop().await;

    // The deployment's own worker: every notification fails (retried three times, the order is
    // not affected) and a step counts as stuck at its first failure; stock checks are slow
    // enough to cancel during them (5 s, the longest the variable allows: heartbeated every 1.6 s,
    // the last time 4.8 s in).
    let mut worker = Binary::start(
        "worker",
        "worker",
        &database,
        &[
            common[0].clone(),
            ("NOTIFICATION_FAILURE_RATE", "1".into()),
            ("STUCK_AFTER_ATTEMPTS", "1".into()),
            ("INVENTORY_DELAY_MS", "5000".into()),
        ],
    );
    worker.wait_for("metrics", "/metrics").await;
    orders.wait_for(&first, "completed").await;

    // Shed: one order in flight, the next is refused at the door. Then cancelled.
    let second = orders.place(&readme_order()).await;
    orders.wait_for(&second, "validating").await;
    let (status, body) = orders.post("/api/orders", Some(&readme_order())).await;
    assert_eq!(status, 503, "shed while another order is in flight: {body}");
    let (status, body) =
        orders.post(&format!("/api/orders/cancel?workflow_id={second}"), None).await;
    assert_eq!(status, 202, "{body}");
    orders.wait_for(&second, "cancelled").await;
    // Declined, and short of stock.
    let declined = orders.place(&order_of("prod-006", 6, "1999.99")).await;
    orders.wait_for(&declined, "failed").await;
    database
        .add_product(&NewProduct {
            id: "scarce".into(),
            name: "Scarce".into(),
            sku: "SKU-scarce".into(),
            price: "10.00".parse().unwrap(),
            available: 2,
        })
        .await
        .unwrap();
    let short = orders.place(&order_of("scarce", 3, "10.00")).await;
    orders.wait_for(&short, "failed").await;
    // A forged webhook.
    let response = reqwest::Client::new()
        .post(api.url("http", "/api/webhooks/payments"))
        .header("Payment-Signature", "t=1,v1=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // Every event the dashboard and the alerts count has happened by now (a series that
    // appears only after its event is exported at the latest a moment later): scrape again
    // until nothing is missing, for at most 30 s, then say what is.
    let (mut missing, mut live) = (BTreeMap::<String, Vec<String>>::new(), Vec::new());
    for _ in 0..300 {
        live = vec![worker.metrics().await, api.metrics().await];
        missing = unexported(pages.iter().chain(&live));
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pages.extend(live);
    for (page, label) in pages.iter().zip(["foreign-worker", "worker", "api"]) {
        std::fs::write(artifacts().join(format!("deploy-metrics-{label}.txt")), page).unwrap();
    }
    let exported: BTreeSet<String> = pages.iter().flat_map(|p| exported(p)).collect();
    let sdk = exported.iter().filter(|n| n.starts_with("temporal_")).count();
    assert!(
        missing.is_empty(),
        "metrics the dashboard or the alerts read but no process exports ({sdk} temporal_ \
         series exported; pages in {}):\n{missing:#?}",
        artifacts().display()
    );

    // Every probe of the manifests answers 200 on the running process it is meant for.
    let docs = manifests();
    for c in containers(&docs) {
        let binary = match c.subcommand.as_str() {
            "api" => &api,
            "worker" => &worker,
            _ => continue,
        };
        for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
            let get = &c.container[probe]["httpGet"];
            let (port, path) = (c.port_name(&get["port"]), get["path"].as_str().unwrap());
            let response = reqwest::get(binary.url(&port, path)).await.unwrap();
            assert_eq!(response.status(), 200, "{}: {probe} {path} on {port}", c.workload);
        }
    }
    drop((api, worker));
}

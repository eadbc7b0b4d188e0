//! The Docker deployment cannot run on the machines this is tested on (no Docker engine), so
//! what can be checked is checked: the compose file parses, every setting it passes is one the
//! binary reads (the same names as `make dev`), its commands are the binary's, health checks
//! use real endpoints (`/live` where unhealthy means restart, `/ready` where it means "send no
//! traffic"), containers get longer to stop than the service's grace, and the Dockerfile builds
//! the way `make build` does, as non-root. (`deploy.rs` does the same for Kubernetes.)

use clap::CommandFactory;
use orderflow::config::Cli;
use std::collections::BTreeSet;
use std::path::Path;
use yaml_rust2::{Yaml, YamlLoader};

pub(crate) fn repo_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every environment variable any `orderflow` subcommand reads, and its subcommands.
fn binary_interface() -> (BTreeSet<String>, BTreeSet<String>) {
    let cli = Cli::command();
    let mut variables: BTreeSet<String> = ["RUST_LOG", "LOG_FORMAT"].map(String::from).into();
    variables.extend(orderflow::config::SECRET_VARIABLES.map(String::from));
    let standard =
        orderflow::config::ENVCONFIG_VARIABLES.iter().chain(&orderflow::config::OTEL_VARIABLES);
    variables.extend(standard.filter(|v| !v.ends_with('*')).map(|v| v.to_string()));
    let mut commands = BTreeSet::new();
    for sub in cli.get_subcommands() {
        commands.insert(sub.get_name().to_owned());
        for arg in sub.get_arguments() {
            if let Some(env) = arg.get_env() {
                variables.insert(env.to_string_lossy().into_owned());
            }
        }
    }
    (variables, commands)
}

#[test]
fn the_compose_file_matches_the_binary() {
    let docs = YamlLoader::load_from_str(&repo_file("docker-compose.yaml"))
        .expect("docker-compose.yaml parses");
    let services = &docs[0]["services"];
    let (variables, commands) = binary_interface();
    for name in ["postgres", "temporal", "migrate", "api", "worker"] {
        assert!(!services[name].is_badvalue(), "service {name} missing");
    }
    for name in ["migrate", "api", "worker"] {
        let service = &services[name];
        assert_eq!(service["build"].as_str(), Some("."), "{name} builds this repository");
        let command = service["command"][0].as_str().unwrap();
        assert!(
            commands.contains(command),
            "{name} runs `orderflow {command}`, which does not exist"
        );
        let Yaml::Hash(env) = &service["environment"] else { panic!("{name} has no environment") };
        for key in env.keys() {
            let key = key.as_str().unwrap();
            assert!(variables.contains(key), "{name} sets {key}, which orderflow does not read");
        }
    }
    // Production settings: tokens required, no secret with a default, nothing but the API
    // published beyond the host.
    let env = &services["api"]["environment"];
    assert_eq!(env["AUTH_MODE"].as_str(), Some("jwt"));
    for secret in ["POSTGRES_PASSWORD", "JWT_HS256_SECRET", "ADMIN_API_KEY"] {
        let value = env[secret].as_str().unwrap_or_else(|| panic!("api has no {secret}"));
        assert!(
            value.starts_with("${") && value.contains(":?"),
            "{secret} must be required, not defaulted: {value}"
        );
    }
    let password = services["postgres"]["environment"]["POSTGRES_PASSWORD"].as_str().unwrap();
    assert!(password.contains(":?"), "PostgreSQL's password has no default: {password}");
    for (name, service) in services.as_hash().unwrap() {
        for port in service["ports"].as_vec().into_iter().flatten() {
            let port = port.as_str().unwrap();
            if name.as_str() != Some("api") {
                assert!(
                    port.starts_with("127.0.0.1:"),
                    "{name:?} publishes {port} on every interface"
                );
            }
        }
    }
    // The API's check says whether to route traffic to it: /ready. A worker has no HTTP API;
    // its check is /live on its metrics listener, which asks no dependency.
    let check = |name: &str| -> Vec<String> {
        let test = services[name]["healthcheck"]["test"].as_vec();
        test.unwrap_or_else(|| panic!("{name} has no health check"))
            .iter()
            .map(|part| part.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(check("api").contains(&"http://localhost:8080/ready".to_owned()));
    let metrics_port = env["METRICS_PORT"].as_str().expect("METRICS_PORT for the workers");
    let worker_check = format!("http://localhost:{metrics_port}/live");
    assert!(check("worker").contains(&worker_check), "{:?}", check("worker"));
    // Docker stops a container after stop_grace_period (10 s unless set): longer than the
    // service's own grace, so that it finishes its work and exits by itself.
    let grace_ms: u64 = env["SHUTDOWN_GRACE_MS"].as_str().unwrap_or("30000").parse().unwrap();
    for name in ["api", "worker"] {
        let period = services[name]["stop_grace_period"].as_str().unwrap_or("10s");
        let seconds: u64 = period.strip_suffix('s').and_then(|s| s.parse().ok()).expect(period);
        assert!(
            seconds * 1000 > grace_ms,
            "{name}: stop_grace_period {period} <= SHUTDOWN_GRACE_MS"
        );
    }
    assert!(
        !services["temporal"]["healthcheck"].is_badvalue()
            && !services["postgres"]["healthcheck"].is_badvalue()
    );
}

#[test]
fn the_dockerfile_builds_like_make_build_and_runs_as_non_root() {
    let dockerfile = repo_file("Dockerfile");
    let makefile = repo_file("Makefile");
    let build = "cargo build --release --locked --bin orderflow";
    assert!(dockerfile.contains(&format!("RUN {build}")), "the Dockerfile builds with `{build}`");
    assert!(makefile.contains(build), "and so does `make build`");
    let user = dockerfile.lines().rev().find(|l| l.starts_with("USER ")).expect("a USER line");
    assert_ne!(user.trim(), "USER root");
    assert!(dockerfile.contains("FROM debian:bookworm-slim"), "a small runtime image");
    // The image's health check is liveness (where unhealthy means restart): /live, which asks
    // no dependency, never /health or /ready.
    let check = dockerfile.split("HEALTHCHECK").nth(1).expect("a HEALTHCHECK");
    let check = check.split("\n#").next().unwrap();
    assert!(check.contains("/live\""), "{check}");
}

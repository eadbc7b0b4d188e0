//! The Docker deployment cannot run on the machines this is tested on (no Docker engine), so
//! what can be checked is checked: the compose file parses, every setting it passes is one the
//! binary reads (the same names as `make dev`), its commands are the binary's, health checks
//! use real endpoints, and the Dockerfile builds the way `make build` does, as non-root.

use clap::CommandFactory;
use orderflow::config::Cli;
use std::collections::BTreeSet;
use std::path::Path;
use yaml_rust2::{Yaml, YamlLoader};

fn repo_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every environment variable any `orderflow` subcommand reads, and its subcommands.
fn binary_interface() -> (BTreeSet<String>, BTreeSet<String>) {
    let cli = Cli::command();
    let mut variables: BTreeSet<String> = ["RUST_LOG", "LOG_FORMAT"].map(String::from).into();
    variables.extend(orderflow::config::SECRET_VARIABLES.map(String::from));
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
    let api_check = services["api"]["healthcheck"]["test"].as_vec().unwrap();
    assert!(api_check.iter().any(|part| part.as_str() == Some("http://localhost:8080/ready")));
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
}

//! Secrets: read from the environment, `NAME` or the file named by `NAME_FILE` (Docker and
//! Kubernetes secrets), never from flags (a flag is visible to everyone in `ps`), never
//! printed (`SecretString` redacts itself). Read in one explicit step of loading, after the
//! flags are parsed, so that parsing itself reads nothing and cannot fail on a file.

use super::Problems;
use secrecy::SecretString;
use std::collections::BTreeMap;

/// The settings that are secrets.
pub const SECRET_VARIABLES: [&str; 7] = [
    "DATABASE_URL",
    "TEMPORAL_API_KEY",
    "POSTGRES_PASSWORD",
    "ADMIN_API_KEY",
    "JWT_HS256_SECRET",
    "PSP_DATABASE_URL",
    "PAYMENT_WEBHOOK_SECRET",
];

/// The subcommands that read the secret `name`: a process reads only its own, so that a
/// `<NAME>_FILE` meant for another process (mounted only in that one's pod) is not a problem.
pub fn read_by(name: &str) -> &'static [&'static str] {
    match name {
        "DATABASE_URL" => &["serve", "api", "worker", "migrate"],
        "POSTGRES_PASSWORD" => &["serve", "api", "worker", "migrate", "psp"],
        "TEMPORAL_API_KEY" => &["serve", "api", "worker"],
        "ADMIN_API_KEY" => &["serve", "api"],
        "JWT_HS256_SECRET" => &["serve", "api", "token"],
        "PAYMENT_WEBHOOK_SECRET" => &["serve", "api", "psp"],
        "PSP_DATABASE_URL" => &["psp"],
        _ => &[],
    }
}

/// The secrets that are set.
#[derive(Debug, Default, Clone)]
pub struct Secrets(BTreeMap<&'static str, SecretString>);

impl Secrets {
    /// Reads the secrets `subcommand` uses from this process's environment. A `NAME_FILE` that
    /// cannot be read is a problem, not "no secret": it was meant to be set, and silently going
    /// without it would open the admin endpoints or fall back to a default password.
    pub fn from_env(subcommand: &str) -> (Self, Problems) {
        Self::read(
            subcommand,
            |name| std::env::var(name).ok(),
            |path| std::fs::read_to_string(path),
        )
    }

    /// [`Self::from_env`] over any environment and file system.
    pub fn read(
        subcommand: &str,
        variable: impl Fn(&str) -> Option<String>,
        file: impl Fn(&str) -> std::io::Result<String>,
    ) -> (Self, Problems) {
        let (mut secrets, mut problems) = (BTreeMap::new(), Problems::default());
        let ours = SECRET_VARIABLES.into_iter().filter(|name| read_by(name).contains(&subcommand));
        for name in ours {
            let value = match (variable(name), variable(&format!("{name}_FILE"))) {
                (Some(value), _) => value,
                (None, Some(path)) => match file(&path) {
                    Ok(contents) => contents.trim().to_owned(),
                    Err(e) => {
                        problems.push(format!("{name}_FILE={path} cannot be read: {e}"));
                        continue;
                    }
                },
                (None, None) => continue,
            };
            secrets.insert(name, SecretString::from(value));
        }
        (Self(secrets), problems)
    }

    /// The secret `name` (one of [`SECRET_VARIABLES`]), if set.
    pub fn get(&self, name: &str) -> Option<SecretString> {
        debug_assert!(SECRET_VARIABLES.contains(&name), "{name} is not a secret");
        self.0.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    #[test]
    fn a_secret_comes_from_its_variable_or_its_file() {
        let env = HashMap::from([
            ("ADMIN_API_KEY", "from-the-variable"),
            ("JWT_HS256_SECRET_FILE", "/run/secrets/jwt"),
            ("DATABASE_URL_FILE", "/missing"),
        ]);
        let (secrets, problems) = Secrets::read(
            "serve",
            |name| env.get(name).map(|v| (*v).to_owned()),
            |path| match path {
                "/run/secrets/jwt" => Ok("from-the-file\n".into()),
                _ => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
            },
        );
        let exposed = |name| secrets.get(name).map(|s| s.expose_secret().to_owned());
        assert_eq!(exposed("ADMIN_API_KEY").as_deref(), Some("from-the-variable"));
        assert_eq!(exposed("JWT_HS256_SECRET").as_deref(), Some("from-the-file"));
        assert_eq!(exposed("DATABASE_URL"), None);
        let problems: Vec<&str> = problems.iter().collect();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("DATABASE_URL_FILE=/missing cannot be read"));
    }

    #[test]
    fn a_process_reads_only_its_own_secrets() {
        let env = HashMap::from([("ADMIN_API_KEY_FILE", "/mounted/in/the/api/pod/only")]);
        let (secrets, problems) = Secrets::read(
            "worker",
            |name| env.get(name).map(|v| (*v).to_owned()),
            |_| Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
        );
        assert!(problems.is_empty(), "{:?}", problems.iter().collect::<Vec<_>>());
        assert!(secrets.get("ADMIN_API_KEY").is_none());
        for name in SECRET_VARIABLES {
            assert!(!read_by(name).is_empty(), "{name} is read by no process");
        }
    }
}

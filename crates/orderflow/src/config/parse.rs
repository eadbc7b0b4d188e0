//! How the settings' values are read: each refusal says what is expected (clap adds the
//! variable's name).

use orderflow_domain::Money;
use rust_decimal::Decimal;
use std::str::FromStr;
use std::time::Duration;

/// Simulated delays stay well inside the 10 s step timeout, so a delay never looks like a hang.
const MAX_DELAY_MS: u64 = 5_000;

pub fn money(text: &str) -> Result<Money, String> {
    let amount =
        Decimal::from_str(text.trim()).map_err(|_| format!("{text:?} is not a decimal amount"))?;
    Money::parse("amount", amount).map_err(|e| e.reason)
}

/// A simulated delay.
pub fn delay(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<u64>() {
        Ok(ms) if ms <= MAX_DELAY_MS => Ok(Duration::from_millis(ms)),
        _ => Err(format!("must be whole milliseconds from 0 to {MAX_DELAY_MS}")),
    }
}

/// Whole milliseconds within `min..=max`.
pub fn millis(min: u64, max: u64) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    move |text| match text.trim().parse::<u64>() {
        Ok(ms) if (min..=max).contains(&ms) => Ok(Duration::from_millis(ms)),
        _ => Err(format!("must be whole milliseconds from {min} to {max}")),
    }
}

/// `90`, `90s`, `15m`, `1h`, `7d`.
pub fn ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err("must be a number with s, m, h or d, e.g. 1h".into()),
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 && n <= 365 * 86_400 / seconds => Ok(Duration::from_secs(n * seconds)),
        _ => Err("must be from 1 s to 365 d".into()),
    }
}

/// A share, from 0 to 1.
pub fn rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err("must be a number from 0 to 1".into()),
    }
}

/// An http(s) URL, without its trailing slash.
pub fn http_url(text: &str) -> Result<String, String> {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(text.trim_end_matches('/').to_owned())
        }
        _ => Err("expected an http(s) URL such as http://localhost:8090".into()),
    }
}

/// A deployment name or build id: Temporal joins them with `:` into the version's name, so
/// neither may contain one (nor be empty or unreasonably long).
pub fn version_part(value: &str) -> Result<String, String> {
    match value {
        "" => Err("must not be empty".into()),
        v if v.len() > 200 => Err("at most 200 characters".into()),
        v if v.contains(':') || v.chars().any(char::is_whitespace) => {
            Err("must not contain ':' or whitespace".into())
        }
        v => Ok(v.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lifetimes_read_as_people_write_them() {
        assert_eq!(ttl("90"), Ok(Duration::from_secs(90)));
        assert_eq!(ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(ttl("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(ttl("0").is_err() && ttl("1y").is_err() && ttl("").is_err());
    }
}

//! `hello`: a small app that uses a secret the way real code does.
//!
//! It reads the database password (the secret `db-password`, or the name given as the first
//! argument), builds the connection string it would hand to a database driver, and prints only a
//! masked form of it and the password's length. The value itself is never printed or logged.
//!
//! ```text
//! $ wasm-secrets run --grant db-password hello.wasm
//! hello: read secret 'db-password' (24 characters)
//! hello: connecting to postgres://app:****@db.internal:5432/orders
//! ```
//!
//! If the secret cannot be read it prints one line with the error kind and message on stderr and
//! exits with code 1.

use std::fmt::Write as _;
use std::process::ExitCode;

/// The database this app would connect to.
const USER: &str = "app";
const HOST: &str = "db.internal";
const PORT: u16 = 5432;
const DATABASE: &str = "orders";

/// A PostgreSQL connection string that holds a password.
///
/// `Display` and `Debug` mask the password, so the string can be logged; only
/// [`ConnectionString::expose`] gives the real one, for the driver.
struct ConnectionString {
    url: String,
    masked: String,
}

impl ConnectionString {
    fn postgres(user: &str, password: &str, host: &str, port: u16, database: &str) -> Self {
        let with =
            |password: &str| format!("postgres://{user}:{password}@{host}:{port}/{database}");
        ConnectionString {
            url: with(&percent_encode(password)),
            masked: with("****"),
        }
    }

    /// The real connection string, to hand to a database driver and nowhere else.
    #[allow(dead_code, reason = "this demo has no database to connect to")]
    fn expose(&self) -> &str {
        &self.url
    }
}

impl std::fmt::Display for ConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.masked)
    }
}

impl std::fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ConnectionString")
            .field(&self.masked)
            .finish()
    }
}

/// Percent-encodes everything but the unreserved characters of RFC 3986, as a URL's userinfo
/// needs.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn main() -> ExitCode {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "db-password".to_owned());
    let password = match wasm_secrets_guest::get(&name) {
        Ok(password) => password,
        Err(err) => {
            eprintln!("hello: cannot read the database password '{name}': {err}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "hello: read secret '{name}' ({} characters)",
        password.chars().count()
    );
    let db = ConnectionString::postgres(USER, &password, HOST, PORT, DATABASE);
    drop(password);
    println!("hello: connecting to {db}");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_debug_mask_the_password() {
        let db = ConnectionString::postgres("app", "s3cr:t/@", "db.internal", 5432, "orders");
        assert_eq!(
            db.to_string(),
            "postgres://app:****@db.internal:5432/orders"
        );
        assert!(!format!("{db:?}").contains("s3cr"));
        assert_eq!(
            db.expose(),
            "postgres://app:s3cr%3At%2F%40@db.internal:5432/orders"
        );
    }
}

//! `jwt-sign`: builds a JWT from `key=value` claims and has the vault sign it with the key this
//! component knows as `signer`; the private key never leaves the vault.
//!
//! ```text
//! jwt-sign [--alg ALG] [--key NAME] CLAIM=VALUE...
//! ```
//!
//! `--alg` is one of RS256, RS384, RS512, PS256, PS384, PS512, ES256 (the default), ES384,
//! ES512, ES256K, and must fit the key. A value that is an integer, `true` or `false` becomes a
//! JSON number or boolean; anything else a string. The compact token is printed on a line of
//! its own. A failure prints `jwt-sign: <error-kind>: <message>` on stderr and exits 1; a usage
//! error exits 2 (1 under Rust's wasm32-wasip2 std, which maps every failure to 1).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sha2::Digest;
use std::process::ExitCode;
use wasm_secrets_guest::keys::{self, SignatureAlgorithm};

const USAGE: &str = "usage: jwt-sign [--alg ES256|ES384|ES512|ES256K|RS256|RS384|RS512|PS256|PS384|PS512] [--key NAME] CLAIM=VALUE...";

struct Request {
    algorithm: SignatureAlgorithm,
    key: String,
    claims: Map<String, Value>,
}

fn parse(args: &[String]) -> Result<Request, String> {
    let mut request = Request {
        algorithm: SignatureAlgorithm::Es256,
        key: "signer".into(),
        claims: Map::new(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--alg" => {
                let alg = args.next().ok_or("--alg needs an algorithm")?;
                request.algorithm = SignatureAlgorithm::from_jwa(alg)
                    .ok_or_else(|| format!("\"{alg}\" is not a signature algorithm"))?;
            }
            "--key" => request.key = args.next().ok_or("--key needs a key name")?.clone(),
            claim => {
                let (name, value) = claim
                    .split_once('=')
                    .filter(|(name, _)| !name.is_empty())
                    .ok_or_else(|| format!("\"{claim}\" is not CLAIM=VALUE"))?;
                request.claims.insert(name.to_owned(), claim_value(value));
            }
        }
    }
    if request.claims.is_empty() {
        return Err("give at least one CLAIM=VALUE".into());
    }
    Ok(request)
}

fn claim_value(value: &str) -> Value {
    match value {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => value
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(value.to_owned())),
    }
}

/// The hash the algorithm signs.
fn digest(algorithm: SignatureAlgorithm, input: &[u8]) -> Vec<u8> {
    use SignatureAlgorithm as A;
    match algorithm {
        A::Rs256 | A::Ps256 | A::Es256 | A::Es256k => sha2::Sha256::digest(input).to_vec(),
        A::Rs384 | A::Ps384 | A::Es384 => sha2::Sha384::digest(input).to_vec(),
        A::Rs512 | A::Ps512 | A::Es512 => sha2::Sha512::digest(input).to_vec(),
    }
}

fn sign(request: &Request) -> Result<String, keys::KeyError> {
    let header = serde_json::json!({ "alg": request.algorithm.jwa(), "typ": "JWT" });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(Value::Object(request.claims.clone()).to_string())
    );
    let digest = digest(request.algorithm, signing_input.as_bytes());
    let signature = keys::sign(&request.key, request.algorithm, &digest)?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let request = match parse(&args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("jwt-sign: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match sign(&request) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("jwt-sign: {e}");
            ExitCode::FAILURE
        }
    }
}

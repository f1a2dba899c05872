//! The deploy/ folder: the Kubernetes manifests, the config in their ConfigMap and the
//! Dockerfile agree on every name that must match (ports, probe paths, the config file path,
//! labels, the ServiceAccount), the pod runs restricted, and the shipped config is one the host
//! accepts. Nothing is applied or built here (this machine has no cluster and no container
//! daemon): the files are parsed and compared.

use crate::harness::guest;
use serde_yaml_ng::{self as yaml, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use wasm_secrets::credential::CredentialKind;
use wasm_secrets_cli::config::Config;

/// Where the container reads its config: `-c` in its arguments.
const CONFIG_PATH: &str = "/etc/wasm-secrets/config.toml";
/// The label every object carries and every selector uses.
const APP_LABEL: &str = "app.kubernetes.io/name";
/// distroless's `nonroot`.
const NONROOT_UID: u64 = 65532;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every deploy/kubernetes/*.yaml, parsed, by file name.
fn manifests() -> BTreeMap<String, Value> {
    let dir = deploy_dir().join("kubernetes");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    entries
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .map(|p| {
            let value: Value = yaml::from_str(&read(&p))
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), value)
        })
        .collect()
}

/// The one manifest of `kind`.
fn the<'a>(all: &'a BTreeMap<String, Value>, kind: &str) -> &'a Value {
    let found: Vec<&Value> = all
        .values()
        .filter(|v| v.get("kind").and_then(Value::as_str) == Some(kind))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {kind} in deploy/kubernetes"
    );
    found[0]
}

/// The value at `path` (mapping keys; Kubernetes keys have dots, so no dotted paths).
fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    let mut cur = v;
    for (i, key) in path.iter().enumerate() {
        cur = cur
            .get(*key)
            .unwrap_or_else(|| panic!("{} is missing", path[..=i].join(" > ")));
    }
    cur
}

fn text<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path)
        .as_str()
        .unwrap_or_else(|| panic!("{} is not a string", path.join(" > ")))
}

fn number(v: &Value, path: &[&str]) -> u64 {
    at(v, path)
        .as_u64()
        .unwrap_or_else(|| panic!("{} is not a number", path.join(" > ")))
}

fn list<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path)
        .as_sequence()
        .unwrap_or_else(|| panic!("{} is not a list", path.join(" > ")))
}

/// A mapping of strings as (key, value) pairs, such as labels or a selector's matchLabels.
fn string_map(v: &Value, path: &[&str]) -> BTreeMap<String, String> {
    let map = at(v, path)
        .as_mapping()
        .unwrap_or_else(|| panic!("{} is not a mapping", path.join(" > ")));
    map.iter()
        .map(|(k, v)| {
            let (Some(k), Some(v)) = (k.as_str(), v.as_str()) else {
                panic!("{}: {k:?}: {v:?} is not a string pair", path.join(" > "))
            };
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// Panics unless every label of `selector` is in `labels` with the same value.
fn assert_selects(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
    what: &str,
) {
    assert!(
        !selector.is_empty(),
        "{what}: an empty selector selects every pod"
    );
    for (k, v) in selector {
        assert_eq!(
            labels.get(k),
            Some(v),
            "{what} selects {k}={v}, which the pod template does not carry ({labels:?})"
        );
    }
}

/// The Deployment's pod template.
fn pod(all: &BTreeMap<String, Value>) -> &Value {
    at(the(all, "Deployment"), &["spec", "template"])
}

/// The `wasm-secrets` container of the pod template.
fn container(all: &BTreeMap<String, Value>) -> &Value {
    list(pod(all), &["spec", "containers"])
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some("wasm-secrets"))
        .expect("the pod template has a container named wasm-secrets")
}

fn args(all: &BTreeMap<String, Value>) -> Vec<&str> {
    list(container(all), &["args"])
        .iter()
        .map(|a| a.as_str().expect("container args are strings"))
        .collect()
}

/// The value after the flag `name` in `args`.
fn flag<'a>(args: &[&'a str], name: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| *a == name)?;
    args.get(i + 1).copied()
}

/// The port number at the end of an `ip:port` address.
fn port_of(addr: &str) -> u64 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("{addr} is not an ip:port address"))
}

/// The container's ports by name.
fn container_ports(all: &BTreeMap<String, Value>) -> BTreeMap<String, u64> {
    list(container(all), &["ports"])
        .iter()
        .map(|p| (text(p, &["name"]).to_owned(), number(p, &["containerPort"])))
        .collect()
}

/// The config.toml the ConfigMap ships.
fn shipped_config(all: &BTreeMap<String, Value>) -> &str {
    text(the(all, "ConfigMap"), &["data", "config.toml"])
}

/// The Dockerfile's instructions of its last stage, as (INSTRUCTION, arguments), with
/// continuation lines joined and comments dropped; `all_stages` has every stage's.
struct Dockerfile {
    all_stages: Vec<(String, String)>,
    last_stage: Vec<(String, String)>,
}

fn dockerfile() -> Dockerfile {
    let mut all_stages = Vec::new();
    let mut pending = String::new();
    for line in read(&deploy_dir().join("Dockerfile")).lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && pending.is_empty()) {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let whole = std::mem::take(&mut pending);
        let (instruction, rest) = whole
            .split_once(char::is_whitespace)
            .unwrap_or((whole.as_str(), ""));
        all_stages.push((instruction.to_ascii_uppercase(), rest.trim().to_owned()));
    }
    let last_from = all_stages
        .iter()
        .rposition(|(i, _)| i == "FROM")
        .expect("the Dockerfile has a FROM");
    let last_stage = all_stages[last_from..].to_vec();
    Dockerfile {
        all_stages,
        last_stage,
    }
}

impl Dockerfile {
    /// The arguments of every `instruction` in the last stage.
    fn last(&self, instruction: &str) -> Vec<&str> {
        self.last_stage
            .iter()
            .filter(|(i, _)| i == instruction)
            .map(|(_, rest)| rest.as_str())
            .collect()
    }

    /// The one `instruction` of the last stage, in exec (JSON array) form.
    fn exec_form(&self, instruction: &str) -> Vec<String> {
        let found = self.last(instruction);
        assert_eq!(
            found.len(),
            1,
            "the final stage has one {instruction}: {found:?}"
        );
        serde_json::from_str(found[0]).unwrap_or_else(|e| {
            panic!(
                "{instruction} {} is not in exec (JSON array) form: {e}",
                found[0]
            )
        })
    }
}

#[test]
fn every_manifest_parses_and_the_kustomization_lists_exactly_them() {
    let all = manifests();
    let kustomization = all
        .get("kustomization.yaml")
        .expect("deploy/kubernetes/kustomization.yaml");
    let listed: BTreeSet<&str> = list(kustomization, &["resources"])
        .iter()
        .map(|r| r.as_str().expect("kustomization resources are file names"))
        .collect();
    let present: BTreeSet<&str> = all
        .keys()
        .map(String::as_str)
        .filter(|f| *f != "kustomization.yaml")
        .collect();
    assert_eq!(
        listed, present,
        "kustomization.yaml must list every manifest in deploy/kubernetes, and only those"
    );
    for (file, v) in all.iter().filter(|(f, _)| present.contains(f.as_str())) {
        for field in ["apiVersion", "kind"] {
            text(v, &[field]);
        }
        assert_eq!(
            text(v, &["metadata", "labels", APP_LABEL]),
            "wasm-secrets",
            "{file} carries the app label"
        );
    }
    for kind in [
        "ServiceAccount",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    ] {
        the(&all, kind);
    }

    // The kustomization's image override names the image the Deployment runs.
    let image = text(container(&all), &["image"]);
    let image_name = image.rsplit_once(':').map_or(image, |(name, _)| name);
    let overridden: Vec<&str> = list(kustomization, &["images"])
        .iter()
        .map(|i| text(i, &["name"]))
        .collect();
    assert!(
        overridden.contains(&image_name),
        "kustomization images {overridden:?} must name the Deployment's image {image_name}"
    );
}

#[test]
fn ports_agree_between_container_args_service_and_probes() {
    let all = manifests();
    let ports = container_ports(&all);
    assert_eq!(
        ports,
        BTreeMap::from([("admin".to_owned(), 9090), ("http".to_owned(), 8080)]),
        "container ports"
    );
    let args = args(&all);
    assert_eq!(flag(&args, "--addr"), Some("0.0.0.0:8080"), "{args:?}");
    assert_eq!(
        flag(&args, "--admin-addr"),
        Some("0.0.0.0:9090"),
        "{args:?}"
    );
    assert_eq!(port_of(flag(&args, "--addr").unwrap()), ports["http"]);
    assert_eq!(
        port_of(flag(&args, "--admin-addr").unwrap()),
        ports["admin"]
    );

    // The Service sends port 80 to `http` and exposes `admin`, both by container port name.
    let service = the(&all, "Service");
    let service_ports: BTreeMap<&str, (u64, &str)> = list(service, &["spec", "ports"])
        .iter()
        .map(|p| {
            let target = text(p, &["targetPort"]);
            assert!(
                ports.contains_key(target),
                "Service targetPort {target} names no container port ({ports:?})"
            );
            (text(p, &["name"]), (number(p, &["port"]), target))
        })
        .collect();
    assert_eq!(
        service_ports.get("http"),
        Some(&(80, "http")),
        "{service_ports:?}"
    );
    assert_eq!(
        service_ports.get("admin").map(|(_, target)| *target),
        Some("admin"),
        "{service_ports:?}"
    );

    // Probes go to the admin listener, by port name.
    let c = container(&all);
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        assert_eq!(text(c, &[probe, "httpGet", "path"]), path, "{probe}");
        assert_eq!(text(c, &[probe, "httpGet", "port"]), "admin", "{probe}");
    }
    if c.get("startupProbe").is_some() {
        assert_eq!(text(c, &["startupProbe", "httpGet", "port"]), "admin");
        assert_eq!(text(c, &["startupProbe", "httpGet", "path"]), "/healthz");
    }

    // Scrapers are told the admin port and /metrics.
    let annotations = string_map(pod(&all), &["metadata", "annotations"]);
    assert_eq!(
        annotations.get("prometheus.io/scrape").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        annotations.get("prometheus.io/port"),
        Some(&ports["admin"].to_string())
    );
    assert_eq!(
        annotations.get("prometheus.io/path").map(String::as_str),
        Some("/metrics")
    );
}

#[test]
fn the_container_serves_the_config_file_the_configmap_mounts() {
    let all = manifests();
    let args = args(&all);
    assert_eq!(args.first(), Some(&"serve"), "{args:?}");
    assert_eq!(flag(&args, "-c"), Some(CONFIG_PATH), "{args:?}");
    assert_eq!(flag(&args, "--log-format"), Some("json"), "{args:?}");
    // With the audit log on stderr, that stream carries JSON objects only: log lines, audit
    // events, and the components' own output framed as objects naming them (never raw, so no
    // component can print a line that passes for an audit event).
    let config = Config::parse(shipped_config(&all)).unwrap();
    if config.audit_log.as_deref() == Some("-") {
        assert_eq!(
            flag(&args, "--log-format"),
            Some("json"),
            "audit-log = \"-\" shares stderr with the logs: --log-format json keeps it one JSON object per line"
        );
    }

    let config_map = the(&all, "ConfigMap");
    assert_eq!(
        text(config_map, &["metadata", "name"]),
        "wasm-secrets-config"
    );
    let spec = at(pod(&all), &["spec"]);
    let volume = list(spec, &["volumes"])
        .iter()
        .find(|v| v.get("configMap").is_some())
        .expect("a configMap volume");
    assert_eq!(
        text(volume, &["configMap", "name"]),
        text(config_map, &["metadata", "name"]),
        "the volume mounts the ConfigMap of configmap.yaml"
    );
    // With `items` the key is written under `path`; without, under its own name.
    let key = "config.toml";
    let file_name = match volume["configMap"].get("items") {
        Some(items) => {
            let item = items
                .as_sequence()
                .expect("configMap items is a list")
                .iter()
                .find(|i| text(i, &["key"]) == key)
                .expect("the configMap volume's items include config.toml");
            text(item, &["path"])
        }
        None => key,
    };
    let volume_name = text(volume, &["name"]);
    let mount = list(container(&all), &["volumeMounts"])
        .iter()
        .find(|m| text(m, &["name"]) == volume_name)
        .expect("the container mounts the config volume");
    assert_eq!(
        format!(
            "{}/{file_name}",
            text(mount, &["mountPath"]).trim_end_matches('/')
        ),
        CONFIG_PATH,
        "the mounted file is the one -c names"
    );
    assert_eq!(
        at(mount, &["readOnly"]).as_bool(),
        Some(true),
        "config mount is read-only"
    );
    assert!(
        at(config_map, &["data"]).get(key).is_some(),
        "the ConfigMap has the key the volume mounts"
    );
}

#[test]
fn the_shipped_config_is_one_the_host_accepts() {
    let all = manifests();
    let config_text = shipped_config(&all);
    let config =
        Config::parse(config_text).unwrap_or_else(|e| panic!("the ConfigMap's config.toml: {e:#}"));

    // On AKS the identity is the workload identity: a config that named IMDS would read the
    // node's identity instead.
    let default = config.vaults.get("default").expect("a [vaults.default]");
    assert!(
        default
            .url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://")),
        "{:?}",
        default.url
    );
    for (name, vault) in &config.vaults {
        assert!(
            matches!(
                vault.credential,
                None | Some(CredentialKind::Auto | CredentialKind::WorkloadIdentity)
            ),
            "[vaults.{name}] credential {:?} would not use the pod's workload identity",
            vault.credential
        );
    }

    // Two routed components, distinct routes, each a component the image ships.
    let table: toml::Table = toml::from_str(config_text).unwrap();
    let components = table["components"].as_table().expect("[components]");
    assert!(
        components.len() >= 2,
        "an example with two routed components"
    );
    let mut routes = BTreeSet::new();
    let docker = read(&deploy_dir().join("Dockerfile"));
    for (name, c) in components {
        let route = c
            .get("route")
            .and_then(toml::Value::as_str)
            .unwrap_or_else(|| panic!("[components.{name}] has a route"));
        assert!(route.starts_with('/'), "[components.{name}] route {route}");
        assert!(routes.insert(route), "route {route} appears twice");
        let wasm = c
            .get("wasm")
            .and_then(toml::Value::as_str)
            .unwrap_or_else(|| panic!("[components.{name}] has a wasm path"));
        let file = wasm
            .strip_prefix("/opt/wasm-secrets/components/")
            .unwrap_or_else(|| {
                panic!("[components.{name}] wasm {wasm} is outside the image's component folder")
            });
        let stem = file.strip_suffix(".wasm").expect("a .wasm file");
        assert!(
            guest(stem).is_file(),
            "[components.{name}] names {file}, which the guest build does not produce"
        );
        assert!(
            docker.contains(stem),
            "[components.{name}] names {file}, which deploy/Dockerfile does not install"
        );
    }
}

#[test]
fn the_pod_uses_the_workload_identity_service_account() {
    let all = manifests();
    let account = the(&all, "ServiceAccount");
    let client_id = text(
        account,
        &[
            "metadata",
            "annotations",
            "azure.workload.identity/client-id",
        ],
    );
    assert_eq!(
        client_id.len(),
        36,
        "the client-id annotation is a GUID (or the all-zero placeholder): {client_id}"
    );
    assert_eq!(
        text(pod(&all), &["spec", "serviceAccountName"]),
        text(account, &["metadata", "name"])
    );
    // The webhook matches the string "true"; an unquoted `true` is a YAML boolean, which
    // Kubernetes refuses as a label value.
    let labels = at(pod(&all), &["metadata", "labels"]);
    assert_eq!(
        labels
            .get("azure.workload.identity/use")
            .and_then(Value::as_str),
        Some("true"),
        "the pod template carries azure.workload.identity/use: \"true\" (a string)"
    );

    // Every placeholder a user must replace is named in the README's steps.
    let readme = read(&deploy_dir().join("README.md"));
    let vault_url = shipped_config(&all)
        .lines()
        .find_map(|l| l.trim().strip_prefix("url = "))
        .map(|u| u.trim_matches('"'))
        .expect("a vault url");
    for placeholder in [client_id, vault_url] {
        assert!(
            readme.contains(placeholder),
            "deploy/README.md says how to replace {placeholder}"
        );
    }
}

#[test]
fn selectors_and_targets_name_the_deployment() {
    let all = manifests();
    let deployment = the(&all, "Deployment");
    let labels = string_map(pod(&all), &["metadata", "labels"]);
    assert_eq!(
        labels.get(APP_LABEL).map(String::as_str),
        Some("wasm-secrets")
    );

    let own = string_map(deployment, &["spec", "selector", "matchLabels"]);
    assert_selects(&own, &labels, "the Deployment's selector");
    let service = string_map(the(&all, "Service"), &["spec", "selector"]);
    assert_selects(&service, &labels, "the Service");
    let pdb = the(&all, "PodDisruptionBudget");
    assert_selects(
        &string_map(pdb, &["spec", "selector", "matchLabels"]),
        &labels,
        "the PodDisruptionBudget",
    );
    assert_eq!(number(pdb, &["spec", "minAvailable"]), 1);

    let hpa = the(&all, "HorizontalPodAutoscaler");
    assert_eq!(text(hpa, &["apiVersion"]), "autoscaling/v2");
    let target = at(hpa, &["spec", "scaleTargetRef"]);
    assert_eq!(
        text(target, &["apiVersion"]),
        text(deployment, &["apiVersion"])
    );
    assert_eq!(text(target, &["kind"]), "Deployment");
    assert_eq!(
        text(target, &["name"]),
        text(deployment, &["metadata", "name"])
    );
    let (min, max) = (
        number(hpa, &["spec", "minReplicas"]),
        number(hpa, &["spec", "maxReplicas"]),
    );
    assert_eq!((min, max), (2, 10));
    assert!(
        number(deployment, &["spec", "replicas"]) >= min,
        "the Deployment starts with at least the autoscaler's minimum"
    );
    let cpu = list(hpa, &["spec", "metrics"])
        .iter()
        .find(|m| {
            m.get("resource")
                .and_then(|r| r.get("name"))
                .and_then(Value::as_str)
                == Some("cpu")
        })
        .expect("the autoscaler scales on cpu");
    assert_eq!(
        number(cpu, &["resource", "target", "averageUtilization"]),
        70
    );
}

#[test]
fn the_pod_runs_restricted_with_room_to_drain() {
    let all = manifests();
    let spec = at(pod(&all), &["spec"]);
    let c = container(&all);
    for (what, context) in [
        ("pod", at(spec, &["securityContext"])),
        ("container", at(c, &["securityContext"])),
    ] {
        assert_eq!(
            at(context, &["runAsNonRoot"]).as_bool(),
            Some(true),
            "{what}"
        );
        assert_eq!(number(context, &["runAsUser"]), NONROOT_UID, "{what}");
        assert_eq!(
            text(context, &["seccompProfile", "type"]),
            "RuntimeDefault",
            "{what}"
        );
    }
    let context = at(c, &["securityContext"]);
    assert_eq!(
        at(context, &["allowPrivilegeEscalation"]).as_bool(),
        Some(false)
    );
    assert_eq!(
        at(context, &["readOnlyRootFilesystem"]).as_bool(),
        Some(true)
    );
    let dropped: Vec<&str> = list(context, &["capabilities", "drop"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(dropped, ["ALL"]);
    assert!(
        context
            .get("capabilities")
            .and_then(|c| c.get("add"))
            .is_none(),
        "no capability is added back"
    );

    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            at(c, &["resources", kind, resource]);
        }
    }

    // serve drains requests in flight for up to 30 s after SIGTERM, after any preStop sleep.
    let pre_stop = c
        .get("lifecycle")
        .and_then(|l| l.get("preStop"))
        .and_then(|p| p.get("sleep"))
        .map_or(0, |s| number(s, &["seconds"]));
    let grace = number(spec, &["terminationGracePeriodSeconds"]);
    assert!(
        grace > 30 + pre_stop,
        "terminationGracePeriodSeconds {grace} leaves serve its 30 s drain after a {pre_stop} s preStop"
    );
}

#[test]
fn the_dockerfile_agrees_with_the_manifests() {
    let all = manifests();
    let docker = dockerfile();

    let user = docker.last("USER");
    assert_eq!(user.len(), 1, "the final stage sets USER once: {user:?}");
    let uid = user[0].split(':').next().unwrap();
    assert_eq!(
        uid.parse::<u64>().ok(),
        Some(NONROOT_UID),
        "USER is numeric (runAsNonRoot can check only a number) and matches runAsUser"
    );

    let exposed: BTreeSet<u64> = docker
        .last("EXPOSE")
        .into_iter()
        .flat_map(|rest| rest.split_whitespace())
        .map(|p| p.split('/').next().unwrap().parse().expect("EXPOSE port"))
        .collect();
    let ports: BTreeSet<u64> = container_ports(&all).into_values().collect();
    assert_eq!(exposed, ports, "EXPOSE and the container ports");

    // The Deployment overrides CMD with `args`; run without Kubernetes, the image does the same.
    let entrypoint = docker.exec_form("ENTRYPOINT");
    assert_eq!(entrypoint, ["/usr/local/bin/wasm-secrets"]);
    let cmd = docker.exec_form("CMD");
    assert_eq!(
        cmd,
        args(&all),
        "the Dockerfile's CMD and the container args"
    );

    // Serve finds the components compiled at build time where the build put them.
    let cache = docker
        .last("ENV")
        .into_iter()
        .find_map(|rest| rest.strip_prefix("WASM_SECRETS_CACHE_DIR="))
        .expect("ENV WASM_SECRETS_CACHE_DIR in the final stage")
        .to_owned();
    let compile = docker
        .all_stages
        .iter()
        .find(|(i, rest)| i == "RUN" && rest.contains(" compile "))
        .map(|(_, rest)| rest.as_str())
        .expect("a RUN that precompiles the components");
    assert!(
        compile.contains(&format!("WASM_SECRETS_CACHE_DIR={cache}")),
        "the compile step writes where serve reads: {compile}"
    );
    // Serve (uid 65532) loads compiled code only from a folder no one but its owner (root) can
    // write, and must be able to read it: the step leaves the cache readable by all, writable by
    // none but root (tests/it/cache_trust.rs runs this layout as uid 65532).
    let chmod = compile
        .split("&&")
        .map(str::trim)
        .find(|c| c.starts_with("chmod "))
        .expect("the compile step sets the cache's permissions");
    let words: Vec<&str> = chmod.split_whitespace().collect();
    assert!(
        words.contains(&"-R")
            && words.contains(&"a+rX,go-w")
            && words
                .last()
                .is_some_and(|dir| Path::new(&cache).starts_with(dir)),
        "the compile step makes the cache readable by all and writable only by root: {chmod}"
    );
    let env = container(&all).get("env").and_then(Value::as_sequence);
    if let Some(set) = env
        .into_iter()
        .flatten()
        .find(|e| text(e, &["name"]) == "WASM_SECRETS_CACHE_DIR")
    {
        assert_eq!(
            text(set, &["value"]),
            cache,
            "the Deployment's WASM_SECRETS_CACHE_DIR"
        );
    }
}

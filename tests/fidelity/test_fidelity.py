"""Fidelity test: the REAL Azure SDK for Python against the wasm-secrets emulator.

Driven by emulator/tests/fidelity.rs, which starts the emulator and passes its endpoints in EMU_* variables.
Exits 0 when every check passes; prints one line per check. Loopback only: every URL comes from the emulator.
"""

import os
import sys
import tempfile

try:
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ClientAuthenticationError
    from azure.identity import (
        ClientSecretCredential,
        ManagedIdentityCredential,
        WorkloadIdentityCredential,
    )
    from azure.keyvault.secrets import SecretClient
except ImportError as e:  # the Rust driver turns this exit code into the one-line fix
    print(f"MISSING-AZURE-PACKAGES: {e}")
    sys.exit(3)

E = os.environ
VAULT = E["EMU_VAULT"]
PAYMENTS = E["EMU_PAYMENTS_VAULT"]
CA = E["EMU_CA"]
SCOPE = "https://vault.azure.net/.default"
CANARY = E["EMU_CANARY"]
AZURE_VARS = [
    "AZURE_POD_IDENTITY_AUTHORITY_HOST", "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET",
    "IMDS_ENDPOINT", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST", "IDENTITY_SERVER_THUMBPRINT",
]


def env_only(**kv):
    """Clear every Azure variable, then set exactly these."""
    for k in AZURE_VARS:
        os.environ.pop(k, None)
    os.environ.update(kv)


def check(name, cond, detail=""):
    if not cond:
        print(f"FAIL {name} {detail}")
        sys.exit(1)
    print(f"ok   {name}")


def client(cred, url=VAULT):
    return SecretClient(url, cred, connection_verify=CA, verify_challenge_resource=False)


# 1. ManagedIdentityCredential via IMDS (only AZURE_POD_IDENTITY_AUTHORITY_HOST set).
env_only(AZURE_POD_IDENTITY_AUTHORITY_HOST=E["EMU_IMDS"])
imds = ManagedIdentityCredential()
tok = imds.get_token(SCOPE)
check("imds token", CANARY in tok.token and tok.expires_on > 0)

kv = client(imds)
s = kv.get_secret("db-password")
check("get latest", s.value == "s3cr3t-db-password" and s.properties.version == "fedcba9876543210fedcba9876543210",
      f"{s.properties.version}")
check("secret id uses the vault url", s.id.startswith(VAULT + "/secrets/db-password/"), s.id)
s = kv.get_secret("db-password", "0123456789abcdef0123456789abcdef")
check("get pinned version", s.value == "old-db-password")

names = []
pages = 0
empty_pages = 0
for page in kv.list_properties_of_secrets(max_page_size=2).by_page():
    items = list(page)
    pages += 1
    empty_pages += 1 if not items else 0
    names.extend(p.name for p in items)
check("list across pages", sorted(names) == sorted(
    ["db-password", "api-key", "feature-alpha", "feature-beta", "restricted", "disabled-secret"]), f"{names}")
check("several pages with an empty one", pages >= 3 and empty_pages >= 1, f"pages={pages} empty={empty_pages}")

versions = [p.version for p in kv.list_properties_of_secret_versions("db-password")]
check("list versions", sorted(versions) == sorted(
    ["0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"]), f"{versions}")

try:
    kv.get_secret("no-such-secret")
    check("missing secret raises", False)
except ResourceNotFoundError:
    check("missing secret raises ResourceNotFoundError", True)

try:
    kv.get_secret("restricted")
    check("restricted raises", False)
except HttpResponseError as e:
    check("restricted raises 403", e.status_code == 403, f"{e.status_code}")

try:
    kv.get_secret("disabled-secret")
    check("disabled raises", False)
except HttpResponseError as e:
    check("disabled secret raises 403", e.status_code == 403, f"{e.status_code}")

check("payments vault", client(imds, PAYMENTS).get_secret("stripe-key").value.startswith("sk_test_"))

# User-assigned identity via IMDS reads `restricted`.
ua = ManagedIdentityCredential(client_id=E["EMU_UA_CLIENT_ID"])
check("user-assigned reads restricted", client(ua).get_secret("restricted").value == "restricted-value")

# 2. ManagedIdentityCredential via App Service (IDENTITY_ENDPOINT + IDENTITY_HEADER).
env_only(IDENTITY_ENDPOINT=E["EMU_APP_SERVICE_ENDPOINT"], IDENTITY_HEADER=E["EMU_APP_SERVICE_HEADER"])
app = ManagedIdentityCredential()
tok = app.get_token(SCOPE)
check("app service token", CANARY in tok.token and tok.expires_on > 0)
check("app service reads a secret", client(app).get_secret("api-key").value == "api-key-value-42")

# 3. ClientSecretCredential against the emulator's Entra (https authority, instance discovery off).
env_only()
sp = ClientSecretCredential(
    E["EMU_TENANT"], E["EMU_SP_CLIENT_ID"], E["EMU_SP_SECRET"],
    authority=E["EMU_AUTHORITY"], disable_instance_discovery=True, connection_verify=CA,
)
check("client secret reads a secret", client(sp).get_secret("feature-alpha").value == "on")
bad = ClientSecretCredential(
    E["EMU_TENANT"], E["EMU_SP_CLIENT_ID"], "wrong-secret",
    authority=E["EMU_AUTHORITY"], disable_instance_discovery=True, connection_verify=CA,
)
try:
    bad.get_token(SCOPE)
    check("bad client secret raises", False)
except ClientAuthenticationError as e:
    check("bad client secret raises ClientAuthenticationError", "AADSTS7000215" in str(e), str(e)[:200])

# 4. WorkloadIdentityCredential (federated assertion in a file).
with tempfile.NamedTemporaryFile("w", suffix=".jwt", delete=False) as f:
    f.write(E["EMU_FED_ASSERTION"])
    path = f.name
try:
    wi = WorkloadIdentityCredential(
        tenant_id=E["EMU_TENANT"], client_id=E["EMU_FED_CLIENT_ID"], token_file_path=path,
        authority=E["EMU_AUTHORITY"], disable_instance_discovery=True, connection_verify=CA,
    )
    check("workload identity reads a secret", client(wi).get_secret("feature-beta").value == "off")
finally:
    os.unlink(path)

print("ALL FIDELITY CHECKS PASSED")

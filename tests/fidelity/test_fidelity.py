"""Fidelity test: the REAL Azure SDK for Python (secrets and keys) against the wasm-secrets emulator.

Driven by emulator/tests/fidelity.rs, which starts the emulator and passes its endpoints in EMU_* variables.
Exits 0 when every check passes; prints one line per check. Loopback only: every URL comes from the emulator.
"""

import hashlib
import json
import os
import sys
import tempfile
import urllib.request

try:
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ClientAuthenticationError
    from azure.identity import (
        ClientSecretCredential,
        ManagedIdentityCredential,
        WorkloadIdentityCredential,
    )
    from azure.keyvault.secrets import SecretClient
    from azure.core.rest import HttpRequest
    from azure.keyvault.keys import JsonWebKey, KeyClient
    from azure.keyvault.keys.crypto import (
        CryptographyClient,
        EncryptionAlgorithm,
        KeyWrapAlgorithm,
        SignatureAlgorithm,
    )
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
except ImportError as e:  # the Rust driver turns this exit code into the one-line fix
    print(f"MISSING-AZURE-PACKAGES: {e}")
    sys.exit(3)

E = os.environ
VAULT = E["EMU_VAULT"]
PAYMENTS = E["EMU_PAYMENTS_VAULT"]
CA = E["EMU_CA"]
SCOPE = "https://vault.azure.net/.default"
CANARY = E["EMU_CANARY"]
ADMIN = E["EMU_ADMIN"]
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

# Names and version ids are case-insensitive, as in Key Vault: any spelling finds the secret, a set in
# another spelling adds a version to it, and answers name it as it was first created.
s = kv.get_secret("DB-Password")
check("get in another case", s.value == "s3cr3t-db-password" and s.name == "db-password", s.id)
s = kv.get_secret("db-PASSWORD", "0123456789ABCDEF0123456789ABCDEF")
check("version id in capitals", s.value == "old-db-password", s.id)
first = client(ua).set_secret("Fidelity-Case", "one")
again = client(ua).set_secret("FIDELITY-CASE", "two")
check("set in another case keeps the first spelling", first.name == again.name == "Fidelity-Case", again.id)
s = kv.get_secret("fidelity-case")
check("any spelling reads the latest", s.value == "two" and s.properties.version == again.properties.version, s.id)
versions = list(kv.list_properties_of_secret_versions("fidelity-CASE"))
check("one secret with two versions", len(versions) == 2 and all(v.name == "Fidelity-Case" for v in versions),
      f"{[v.id for v in versions]}")

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

# 5. Keys: azure-keyvault-keys and CryptographyClient against the emulator's real cryptography.
env_only(AZURE_POD_IDENTITY_AUTHORITY_HOST=E["EMU_IMDS"])
writer = ManagedIdentityCredential(client_id=E["EMU_UA_CLIENT_ID"])  # reads and writes the main vault
keys = KeyClient(VAULT, writer, connection_verify=CA, verify_challenge_resource=False)


def b2i(b):
    return int.from_bytes(b, "big")


def vault_requests():
    with urllib.request.urlopen(ADMIN + "/counters", timeout=10) as r:
        return json.load(r)["keyvault"]


def crypto(key):
    return CryptographyClient(key, writer, connection_verify=CA, verify_challenge_resource=False)


def remote_verify(cc, key, alg, digest, signature):
    """Verify AT THE EMULATOR through the SDK's own generated operation (the SDK would verify locally)."""
    before = vault_requests()
    r = cc._client.verify(
        key_name=key.name, key_version=key.properties.version,
        parameters=cc._models.KeyVerifyParameters(algorithm=alg, digest=digest, signature=signature),
    )
    check(f"remote verify of {alg} reached the emulator", vault_requests() > before)
    return r.value


JWT_V1, JWT_V2 = "1e5a0000000000000000000000000001", "1e5a0000000000000000000000000002"
k = keys.get_key("jwt-signing-key")
check("get_key", k.key_type == "EC" and k.key.crv == "P-256" and k.properties.version == JWT_V2
      and k.id == f"{VAULT}/keys/jwt-signing-key/{JWT_V2}", k.id)
check("get_key has no private parts", k.key.d is None and k.key.x and k.key.y)
k2 = keys.get_key("JWT-Signing-KEY", JWT_V1.upper())
check("get_key in another case, version in capitals", k2.name == "jwt-signing-key" and k2.properties.version == JWT_V1,
      k2.id)
check("get_key key_ops", sorted(k.key_operations) == ["sign", "verify"], f"{k.key_operations}")
check("get_key pinned version", keys.get_key("jwt-signing-key", JWT_V1).key.x != k.key.x)
try:
    keys.get_key("no-such-key")
    check("missing key raises", False)
except ResourceNotFoundError:
    check("missing key raises ResourceNotFoundError", True)
try:
    keys.get_key("restricted-key")
    check("restricted key raises", False)
except HttpResponseError as e:
    check("restricted key raises 403", e.status_code == 403, f"{e.status_code}")
names = {p.name for p in keys.list_properties_of_keys()}
check("list keys", {"jwt-signing-key", "data-kek", "rsa-signing-key"} <= names, f"{names}")

rsa_key = keys.create_rsa_key("fidelity-rsa", size=2048)
check("create_rsa_key", rsa_key.key_type == "RSA" and len(rsa_key.key.n) == 256 and rsa_key.key.d is None)
ec_key = keys.create_ec_key("fidelity-ec", curve="P-256")
check("create_ec_key", ec_key.key_type == "EC" and ec_key.key.crv == "P-256" and len(ec_key.key.x) == 32)

digest = hashlib.sha256(b"fidelity").digest()
for key, alg in [(rsa_key, SignatureAlgorithm.rs256), (rsa_key, SignatureAlgorithm.ps256),
                 (ec_key, SignatureAlgorithm.es256)]:
    cc = crypto(key)
    before = vault_requests()
    signed = cc.sign(alg, digest)
    check(f"sign {alg} at the emulator", vault_requests() > before and signed.key_id == key.id, signed.key_id)
    check(f"SDK verifies {alg}", cc.verify(alg, digest, signed.signature).is_valid)
    check(f"SDK rejects tampered {alg}", not cc.verify(alg, hashlib.sha256(b"x").digest(), signed.signature).is_valid)
    check(f"emulator verifies {alg}", remote_verify(cc, key, alg, digest, signed.signature) is True)

# An emulator signature verifies with `cryptography` on the public JWK (keys built from n/e and x/y here).
cc = crypto(rsa_key)
sig = cc.sign(SignatureAlgorithm.rs256, digest).signature
pub = rsa.RSAPublicNumbers(b2i(rsa_key.key.e), b2i(rsa_key.key.n)).public_key()
pub.verify(sig, digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
check("RS256 verifies with cryptography on n/e", True)
sig = cc.sign(SignatureAlgorithm.ps256, digest).signature
pub.verify(sig, digest, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
           utils.Prehashed(hashes.SHA256()))
check("PS256 verifies with cryptography on n/e", True)
sig = crypto(ec_key).sign(SignatureAlgorithm.es256, digest).signature
check("ES256 signature is raw r||s", len(sig) == 64, f"{len(sig)}")
epub = ec.EllipticCurvePublicNumbers(b2i(ec_key.key.x), b2i(ec_key.key.y), ec.SECP256R1()).public_key()
epub.verify(utils.encode_dss_signature(b2i(sig[:32]), b2i(sig[32:])), digest,
            ec.ECDSA(utils.Prehashed(hashes.SHA256())))
check("ES256 verifies with cryptography on x/y", True)

# Versionless operations: the SDK sends /keys/{name}//sign for an empty version.
before = vault_requests()
r = cc._client.sign(key_name="jwt-signing-key", key_version="",
                    parameters=cc._models.KeySignParameters(algorithm="ES256", value=digest))
check("versionless sign answers the latest kid", r.kid == f"{VAULT}/keys/jwt-signing-key/{JWT_V2}"
      and vault_requests() > before, r.kid)

# Wrap/unwrap and encrypt/decrypt with the seeded key-encryption key.
kek = keys.get_key("data-kek")
cc = crypto(kek)
dek = os.urandom(32)
wrapped = cc.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, dek)
check("unwrap RSA-OAEP-256", cc.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key).key == dek)
before = vault_requests()
r = cc._client.wrap_key(key_name="data-kek", key_version=kek.properties.version,
                        parameters=cc._models.KeyOperationsParameters(algorithm="RSA-OAEP-256", value=dek))
check("wrap at the emulator, unwrap via the SDK",
      vault_requests() > before and cc.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, r.result).key == dek)
ct = cc.encrypt(EncryptionAlgorithm.rsa_oaep, b"plaintext for the kek")
check("decrypt RSA-OAEP", cc.decrypt(EncryptionAlgorithm.rsa_oaep, ct.ciphertext).plaintext == b"plaintext for the kek")

try:
    crypto(keys.get_key("verify-only-key")).sign(SignatureAlgorithm.es256, digest)
    check("sign on a verify-only key raises", False)
except HttpResponseError as e:
    check("sign on a verify-only key raises 403", e.status_code == 403, f"{e.status_code}")
try:
    crypto(keys.get_key("disabled-key")).sign(SignatureAlgorithm.es256, digest)
    check("sign on a disabled key raises", False)
except HttpResponseError as e:
    check("sign on a disabled key raises 403", e.status_code == 403 and "disabled" in str(e), str(e)[:200])

# Keys made locally, imported, signed locally with `cryptography`: the emulator verifies the signatures.
local_ec = ec.generate_private_key(ec.SECP256R1())
n = local_ec.private_numbers()
imported = keys.import_key("fidelity-imported-ec", JsonWebKey(
    kty="EC", crv="P-256", key_ops=["sign", "verify"], d=n.private_value.to_bytes(32, "big"),
    x=n.public_numbers.x.to_bytes(32, "big"), y=n.public_numbers.y.to_bytes(32, "big")))
check("import_key EC", imported.key.x == n.public_numbers.x.to_bytes(32, "big") and imported.key.d is None)
r_, s_ = utils.decode_dss_signature(local_ec.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256()))))
local_sig = r_.to_bytes(32, "big") + s_.to_bytes(32, "big")
cc = crypto(imported)
check("local ES256 signature verifies at the emulator",
      remote_verify(cc, imported, SignatureAlgorithm.es256, digest, local_sig) is True)
check("a tampered local signature does not",
      remote_verify(cc, imported, SignatureAlgorithm.es256, digest, local_sig[:-1] + bytes([local_sig[-1] ^ 1])) is False)

local_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
rn = local_rsa.private_numbers()
as_bytes = lambda i, size=None: i.to_bytes(size or (i.bit_length() + 7) // 8, "big")  # noqa: E731
imported = keys.import_key("fidelity-imported-rsa", JsonWebKey(
    kty="RSA", key_ops=["sign", "verify"], n=as_bytes(rn.public_numbers.n), e=as_bytes(rn.public_numbers.e),
    d=as_bytes(rn.d), p=as_bytes(rn.p), q=as_bytes(rn.q), dp=as_bytes(rn.dmp1), dq=as_bytes(rn.dmq1),
    qi=as_bytes(rn.iqmp)))
check("import_key RSA", imported.key.n == as_bytes(rn.public_numbers.n) and imported.key.d is None)
cc = crypto(imported)
sig = local_rsa.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
check("local RS256 signature verifies at the emulator",
      remote_verify(cc, imported, SignatureAlgorithm.rs256, digest, sig) is True)
sig = local_rsa.sign(digest, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                     utils.Prehashed(hashes.SHA256()))
check("local PS256 signature verifies at the emulator",
      remote_verify(cc, imported, SignatureAlgorithm.ps256, digest, sig) is True)
signed = cc.sign(SignatureAlgorithm.rs256, digest)
local_rsa.public_key().verify(signed.signature, digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
check("the emulator signs with the imported RSA key", True)

print("ALL FIDELITY CHECKS PASSED")

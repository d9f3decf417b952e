"""Certificates for the local control plane, made with the openssl command line.

The project venv has no `cryptography`; Debian's openssl is everywhere the tests run. Keys are
ECDSA P-256 (fast to generate); everything is valid for one day and lives in a temp dir.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

DAYS = "1"
EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args[:2])} failed: {result.stderr.strip()}")


def _new_pair(pair: KeyPair, *args: str) -> None:
    """A new EC key and its X.509 certificate (self-signed unless `args` name a -CA)."""
    _openssl(
        "req",
        "-x509",
        *EC_KEY,
        "-keyout",
        str(pair.key),
        "-out",
        str(pair.cert),
        "-days",
        DAYS,
        *args,
    )


def ca(directory: Path, name: str) -> KeyPair:
    pair = KeyPair(directory / f"{name}.crt", directory / f"{name}.key")
    _new_pair(
        pair,
        "-subj",
        f"/CN={name}",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    )
    return pair


def leaf(
    directory: Path,
    name: str,
    issuer: KeyPair,
    subject: str,
    *,
    server_sans: tuple[str, ...] = (),
    client: bool = False,
) -> KeyPair:
    """A certificate signed by `issuer`: server auth for `server_sans` ("IP:…"/"DNS:…"), client
    auth when `client` (the subject's CN is the user name, each O a group)."""
    usages = (["serverAuth"] if server_sans else []) + (["clientAuth"] if client else [])
    if not usages:
        raise ValueError(f"{name}: a certificate needs server SANs or client use")
    pair = KeyPair(directory / f"{name}.crt", directory / f"{name}.key")
    ext = [
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        "-addext",
        f"extendedKeyUsage={','.join(usages)}",
    ]
    if server_sans:
        ext += ["-addext", f"subjectAltName={','.join(server_sans)}"]
    _new_pair(
        pair,
        "-CA",
        str(issuer.cert),
        "-CAkey",
        str(issuer.key),
        "-subj",
        subject,
        *ext,
    )
    return pair


def signing_key(directory: Path, name: str) -> KeyPair:
    """A bare key pair (`cert` holds the PEM public key), e.g. for service-account tokens."""
    pair = KeyPair(directory / f"{name}.pub", directory / f"{name}.key")
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(pair.key)
    )
    _openssl("pkey", "-in", str(pair.key), "-pubout", "-out", str(pair.cert))
    return pair

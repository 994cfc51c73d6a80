"""Throw-away keys and certificates for the test registries, made with ``cryptography``.

Two uses: a CA plus a server certificate for ``127.0.0.1`` (the TLS registry: clients
trust the CA, as an operator would put it in ``/etc/docker/certs.d``), and a self-signed
signing certificate for the token server (the registry's ``auth.token.rootcertbundle``).
P-256 keys, because they take a millisecond to make and ES256 is what the token spec
shows.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["KeyPair", "libtrust_key_id", "make_ca", "make_server_cert", "make_signing_cert"]

_VALIDITY = datetime.timedelta(days=2)
_SKEW = datetime.timedelta(hours=1)  # notBefore in the past: clocks of peers may lag a bit


@dataclass(frozen=True)
class KeyPair:
    """A private key and its certificate (the certificate is what peers are given)."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def cert_der_b64(self) -> str:
        """The certificate as a JOSE ``x5c`` entry: standard base64 of the DER."""
        return base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def write(self, cert_path: Path, key_path: Path | None = None) -> Path:
        """Write the certificate (and the key if ``key_path``) as PEM; returns cert_path."""
        cert_path.write_bytes(self.cert_pem())
        if key_path is not None:
            key_path.write_bytes(self.key_pem())
            key_path.chmod(0o600)
        return cert_path


def make_ca(common_name: str = "pyprov test CA") -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (_base(name, name, key.public_key())
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                            crl_sign=True, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False,
                                            decipher_only=False), critical=True))
    return KeyPair(key, builder.sign(key, hashes.SHA256()))


def make_server_cert(ca: KeyPair, *addresses: str) -> KeyPair:
    """A TLS server certificate for these IP addresses (or DNS names), signed by ``ca``."""
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for address in addresses:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            names.append(x509.DNSName(address))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, addresses[0])])
    builder = (_base(subject, ca.cert.subject, key.public_key())
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.SubjectAlternativeName(names), critical=False)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                              critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca.key.public_key()), critical=False))
    return KeyPair(key, builder.sign(ca.key, hashes.SHA256()))


def make_signing_cert(common_name: str = "pyprov test token signer") -> KeyPair:
    """A self-signed certificate: the registry trusts it as a root, tokens name it in x5c."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (_base(name, name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return KeyPair(key, cert)


def libtrust_key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The JWT ``kid`` the token spec asks for: libtrust's fingerprint of the public key.

    SHA-256 of the DER SubjectPublicKeyInfo, truncated to 240 bits, base32, in 12 groups
    of 4 joined by ``:`` (docs/spec/auth/jwt.md in distribution/distribution).
    """
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(encoded[i:i + 4] for i in range(0, 48, 4))


def _base(subject: x509.Name, issuer: x509.Name,
          public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _SKEW).not_valid_after(now + _VALIDITY)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                           critical=False))

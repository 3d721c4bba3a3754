"""The seal PKI: a root CA, an issuing CA, seal certificates, event certificates and CRLs.

`init_dev_pki` creates a root and an issuing CA for development and demos; production imports
a real issuing CA (PEM or PKCS#12) with `import_issuing_ca`. CA keys are kept as software
keys (envelope-encrypted, `seals.keys`) in a directory; certificates name the URL where the
issuing CA's CRL is published.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from seals.keys import ECDSA_P256, KeyRef, PrivateKey, PublicKey, SoftwareKeyProvider

ROOT_CRL_NAME = "root"
ISSUING_CRL_NAME = "issuing"
CRL_LIFETIME = dt.timedelta(days=7)


class PkiError(RuntimeError):
    """The PKI directory is missing, incomplete or unusable."""


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA certificate and the reference of its private key."""

    certificate: x509.Certificate
    key: KeyRef


@dataclass(frozen=True)
class Pki:
    """The loaded PKI: trust root and issuing CA, and how to reach their CRLs."""

    root: x509.Certificate
    issuing: CertificateAuthority
    crl_base_url: str
    root_ca: CertificateAuthority | None = None

    def crl_url(self, name: str) -> str:
        return f"{self.crl_base_url.rstrip('/')}/{name}.crl"

    @property
    def chain(self) -> list[x509.Certificate]:
        """Intermediate(s) then root, as embedded in signatures."""
        return [self.issuing.certificate, self.root]


def _name(
    common_name: str, *, org: str, unit: str | None = None, serial: str | None = None
) -> x509.Name:
    attributes = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
    ]
    if unit:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    if serial:
        # UTF8String: a masked ID number has '*', which PrintableString cannot hold.
        attributes.append(
            x509.NameAttribute(NameOID.SERIAL_NUMBER, serial, _type=_ASN1Type.UTF8String)
        )
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def new_serial() -> int:
    """A random positive 127-bit serial (RFC 5280: unpredictable, at most 20 octets)."""
    return secrets.randbits(127) | 1


def _hash_for(key: PrivateKey) -> hashes.HashAlgorithm:
    return hashes.SHA256()


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: PublicKey,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    issuer_public_key: PublicKey,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(new_serial())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key),
            critical=False,
        )
    )


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _signing_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,  # non-repudiation: the holder stands behind the document
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _crl_point(url: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(url)],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )


def init_dev_pki(
    provider: SoftwareKeyProvider,
    *,
    crl_base_url: str,
    now: dt.datetime,
    organisation: str = "禺好办（开发环境）",
) -> tuple[Pki, dict[str, bytes]]:
    """A fresh root and issuing CA (ECDSA P-256); returns the PKI and the files to write."""
    root_key_ref = provider.generate("ca-root", ECDSA_P256)
    root_key = provider.open(root_key_ref)
    root_name = _name("禺好办电子印章根证书（开发）", org=organisation)
    root_cert = (
        _builder(
            root_name,
            root_name,
            root_key.public_key(),
            not_before=now - dt.timedelta(minutes=5),
            not_after=now + dt.timedelta(days=365 * 20),
            issuer_public_key=root_key.public_key(),
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    issuing_key_ref = provider.generate("ca-issuing", ECDSA_P256)
    issuing_key = provider.open(issuing_key_ref)
    issuing_cert = (
        _builder(
            _name("禺好办电子印章签发CA（开发）", org=organisation),
            root_name,
            issuing_key.public_key(),
            not_before=now - dt.timedelta(minutes=5),
            not_after=now + dt.timedelta(days=365 * 10),
            issuer_public_key=root_key.public_key(),
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(
            _crl_point(f"{crl_base_url.rstrip('/')}/{ROOT_CRL_NAME}.crl"), critical=False
        )
        .sign(root_key, hashes.SHA256())
    )
    pki = Pki(
        root=root_cert,
        issuing=CertificateAuthority(issuing_cert, issuing_key_ref),
        crl_base_url=crl_base_url,
        root_ca=CertificateAuthority(root_cert, root_key_ref),
    )
    return pki, _files(pki)


def import_issuing_ca(
    provider: SoftwareKeyProvider,
    *,
    crl_base_url: str,
    chain_pem: bytes | None = None,
    key_pem: bytes | None = None,
    key_password: bytes | None = None,
    pkcs12_data: bytes | None = None,
    pkcs12_password: bytes | None = None,
) -> tuple[Pki, dict[str, bytes]]:
    """Import a real issuing CA: its certificate chain (issuing first, root last) and key."""
    if pkcs12_data is not None:
        loaded = pkcs12.load_key_and_certificates(pkcs12_data, pkcs12_password)
        private_key, cert, extra = loaded
        if private_key is None or cert is None:
            raise PkiError("the PKCS#12 file holds no key or certificate")
        chain = [cert, *extra]
    else:
        if chain_pem is None or key_pem is None:
            raise PkiError("give the chain and key as PEM, or a PKCS#12 file")
        chain = x509.load_pem_x509_certificates(chain_pem)
        private_key = serialization.load_pem_private_key(key_pem, key_password)
    if not isinstance(private_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise PkiError("the CA key must be ECDSA or RSA")
    issuing = chain[0]
    if issuing.public_key() != private_key.public_key():
        raise PkiError("the key does not belong to the first certificate of the chain")
    roots = [c for c in chain if c.subject == c.issuer]
    if not roots:
        raise PkiError("the chain must end with its self-signed root")
    key_ref = KeyRef(
        provider=provider.kind,
        ref="ca-issuing",
        algorithm=ECDSA_P256 if isinstance(private_key, ec.EllipticCurvePrivateKey) else "rsa",
        material=provider.seal(private_key, "ca-issuing"),
    )
    pki = Pki(
        root=roots[0], issuing=CertificateAuthority(issuing, key_ref), crl_base_url=crl_base_url
    )
    return pki, _files(pki)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _files(pki: Pki) -> dict[str, bytes]:
    files = {
        "root.pem": _pem(pki.root),
        "issuing.pem": _pem(pki.issuing.certificate),
        "issuing.key.json": pki.issuing.key.material,
        "crl_base_url": pki.crl_base_url.encode(),
    }
    if pki.root_ca is not None:
        files["root.key.json"] = pki.root_ca.key.material
    return files


def write_pki(directory: Path, files: dict[str, bytes]) -> None:
    """Write the PKI files (keys readable by the owner only); refuse to overwrite."""
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / "issuing.pem").exists():
        raise PkiError(f"a PKI already exists in {directory}")
    for name, content in files.items():
        path = directory / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, path)


def pki_exists(directory: Path) -> bool:
    return (directory / "issuing.pem").exists() and (directory / "root.pem").exists()


def load_pki(directory: Path, *, crl_base_url: str | None = None) -> Pki:
    """Load the PKI written by `write_pki`."""
    if not pki_exists(directory):
        raise PkiError(f"no PKI in {directory}; run `flask seals init-ca` (or import-ca)")
    root = x509.load_pem_x509_certificate((directory / "root.pem").read_bytes())
    issuing = x509.load_pem_x509_certificate((directory / "issuing.pem").read_bytes())
    key = KeyRef(
        "software", "ca-issuing", ECDSA_P256, (directory / "issuing.key.json").read_bytes()
    )
    root_ca = None
    if (directory / "root.key.json").exists():
        root_key = KeyRef(
            "software", "ca-root", ECDSA_P256, (directory / "root.key.json").read_bytes()
        )
        root_ca = CertificateAuthority(root, root_key)
    stored_url = (
        (directory / "crl_base_url").read_text().strip()
        if (directory / "crl_base_url").exists()
        else ""
    )
    return Pki(
        root=root,
        issuing=CertificateAuthority(issuing, key),
        crl_base_url=crl_base_url or stored_url,
        root_ca=root_ca,
    )


def issue_seal_certificate(
    pki: Pki,
    provider: SoftwareKeyProvider,
    public_key: PublicKey,
    *,
    seal_name: str,
    organisation: str,
    seal_kind_label: str,
    seal_code: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """The certificate of a department seal's key, issued by the issuing CA."""
    ca_key = provider.open(pki.issuing.key)
    not_after = min(not_after, pki.issuing.certificate.not_valid_after_utc)
    return (
        _builder(
            _name(seal_name, org=organisation, unit=seal_kind_label, serial=seal_code),
            pki.issuing.certificate.subject,
            public_key,
            not_before=not_before,
            not_after=not_after,
            issuer_public_key=ca_key.public_key(),
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_signing_usage(), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CODE_SIGNING]
            ),
            critical=False,
        )
        .add_extension(_crl_point(pki.crl_url(ISSUING_CRL_NAME)), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def issue_event_certificate(
    pki: Pki,
    provider: SoftwareKeyProvider,
    public_key: PublicKey,
    *,
    real_name: str,
    masked_id_number: str,
    now: dt.datetime,
    lifetime: dt.timedelta = dt.timedelta(minutes=30),
) -> x509.Certificate:
    """A short-lived certificate for one signing event by a verified real-name person."""
    ca_key = provider.open(pki.issuing.key)
    return (
        _builder(
            _name(real_name, org="个人", unit="实名认证事件证书", serial=masked_id_number),
            pki.issuing.certificate.subject,
            public_key,
            not_before=now - dt.timedelta(minutes=1),
            not_after=now + lifetime,
            issuer_public_key=ca_key.public_key(),
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_signing_usage(), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(_crl_point(pki.crl_url(ISSUING_CRL_NAME)), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


@dataclass(frozen=True)
class Revoked:
    serial: int
    revoked_at: dt.datetime
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified


def build_crl(
    ca: CertificateAuthority,
    provider: SoftwareKeyProvider,
    revoked: Iterable[Revoked],
    *,
    now: dt.datetime,
    lifetime: dt.timedelta = CRL_LIFETIME,
) -> x509.CertificateRevocationList:
    """A CRL signed by `ca`; its number is the issue time in seconds, so it only grows."""
    key = provider.open(ca.key)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(now - dt.timedelta(minutes=1))
        .next_update(now + lifetime)
        .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
            critical=False,
        )
    )
    for item in revoked:
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(item.serial)
            .revocation_date(item.revoked_at)
            .add_extension(x509.CRLReason(item.reason), critical=False)
            .build()
        )
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(key, hashes.SHA256())


def certificate_pem(cert: x509.Certificate) -> str:
    return _pem(cert).decode()


def subject_text(cert: x509.Certificate, oid: x509.ObjectIdentifier = NameOID.COMMON_NAME) -> str:
    values = cert.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""

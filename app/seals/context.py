"""The seals library wired to this app's settings: providers, PKI, fonts, codes, storage,
and the per-app caches that keep issuing fast (CRLs, trust settings, signers, seal images)."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from seals.codes import CodeSigner
from seals.fonts import FontSet
from seals.keys import KeyProvider, KeyRef, Pkcs11KeyProvider, SoftwareKeyProvider
from seals.pki import Pki, load_pki, pki_exists
from seals.signing import PreparedImage, ProviderSigner, TrustSettings, timestamper_for


@dataclass(frozen=True)
class Pkcs11Settings:
    """Where the HSM is: its PKCS#11 library, the token's label and the user PIN."""

    library: str
    token: str
    pin: str


@dataclass
class SealContext:
    """Everything seal services need that is not in the database.

    One per app (`app.extensions["seals"]`, made by `app.seals.init_app`); the caches below
    live as long as it does, so a test or a second app gets its own.
    """

    software: SoftwareKeyProvider
    codes: CodeSigner
    fonts: FontSet
    pki_dir: Path
    storage_dir: Path
    public_base_url: str
    tsa_url: str = ""
    default_provider: str = "software"
    # The token is opened on first use, not when the app is made: a PKCS#11 session does not
    # survive a fork, and the app may be made before the server forks its workers.
    pkcs11_settings: Pkcs11Settings | None = None
    max_upload_bytes: int = 1024 * 1024
    _pki: Pki | None = None
    _pkcs11: KeyProvider | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # CRL name -> (revocations counted, built at, CRL); see trust.current_crl
    crl_cache: dict[str, tuple[int | None, dt.datetime, x509.CertificateRevocationList]] = field(
        default_factory=dict
    )
    # "current" -> (ids of the PKI and CRLs, settings); see trust.trust_settings
    trust_cache: dict[str, tuple[tuple[int, ...], TrustSettings]] = field(default_factory=dict)
    # (PKI id, key, certificate PEM) -> signer; see signatures.seal_signer
    signer_cache: dict[tuple[int, KeyRef, str], ProviderSigner] = field(default_factory=dict)
    # SHA-256 of a seal's PNG -> the image encoded for PDF; see signatures.seal_image
    image_cache: dict[str, PreparedImage] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Any) -> SealContext:
        pkcs11 = None
        if config["SEAL_KEY_PROVIDER"] == "pkcs11":
            pkcs11 = Pkcs11Settings(
                config["SEAL_PKCS11_LIBRARY"],
                config["SEAL_PKCS11_TOKEN"],
                config["SEAL_PKCS11_PIN"],
            )
        return cls(
            software=SoftwareKeyProvider.from_spec(config["SEAL_MASTER_KEY"]),
            codes=CodeSigner.from_spec(config["SEAL_CODE_KEYS"]),
            fonts=FontSet(Path(config["SEAL_FONT_CACHE_DIR"])),
            pki_dir=Path(config["SEAL_PKI_DIR"]),
            storage_dir=Path(config["SEAL_STORAGE_DIR"]),
            public_base_url=config["SEAL_PUBLIC_BASE_URL"].rstrip("/"),
            tsa_url=config["SEAL_TSA_URL"],
            default_provider=config["SEAL_KEY_PROVIDER"],
            pkcs11_settings=pkcs11,
            max_upload_bytes=int(config["SEAL_MAX_UPLOAD_BYTES"]),
        )

    @property
    def crl_base_url(self) -> str:
        return f"{self.public_base_url}/seals/crl"

    def verify_url(self, code: str) -> str:
        return f"{self.public_base_url}/s/{code}"

    def has_pki(self) -> bool:
        return self._pki is not None or pki_exists(self.pki_dir)

    @property
    def pki(self) -> Pki:
        if self._pki is None:
            with self._lock:
                if self._pki is None:
                    self._pki = load_pki(self.pki_dir, crl_base_url=self.crl_base_url)
        return self._pki

    def reset_pki(self) -> None:
        self._pki = None
        self.crl_cache.clear()
        self.trust_cache.clear()
        self.signer_cache.clear()

    def provider(self, kind: str) -> KeyProvider:
        if kind == "software":
            return self.software
        if kind == "pkcs11" and self.pkcs11_settings is not None:
            if self._pkcs11 is None:
                with self._lock:
                    if self._pkcs11 is None:
                        settings = self.pkcs11_settings
                        self._pkcs11 = Pkcs11KeyProvider(
                            settings.library, settings.token, settings.pin
                        )
            return self._pkcs11
        raise RuntimeError(f"key provider {kind!r} is not configured")

    def timestamper(self) -> Any:
        return timestamper_for(self.tsa_url or None)

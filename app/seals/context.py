"""The seals library wired to this app's settings: providers, PKI, fonts, codes, storage."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seals.codes import CodeSigner
from seals.fonts import FontSet
from seals.keys import KeyProvider, KeyRef, Pkcs11KeyProvider, SoftwareKeyProvider
from seals.pki import Pki, load_pki, pki_exists
from seals.signing import timestamper_for


@dataclass
class SealContext:
    """Everything seal services need that is not in the database."""

    software: SoftwareKeyProvider
    codes: CodeSigner
    fonts: FontSet
    pki_dir: Path
    storage_dir: Path
    public_base_url: str
    tsa_url: str = ""
    default_provider: str = "software"
    pkcs11: KeyProvider | None = None
    max_upload_bytes: int = 1024 * 1024
    _pki: Pki | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    crl_cache: dict[str, Any] = field(default_factory=dict)
    trust_cache: dict[str, Any] = field(default_factory=dict)
    signer_cache: dict[Any, Any] = field(default_factory=dict)  # see service._seal_signer

    @classmethod
    def from_config(cls, config: Any) -> SealContext:
        pkcs11 = None
        if config["SEAL_KEY_PROVIDER"] == "pkcs11":
            pkcs11 = Pkcs11KeyProvider(
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
            pkcs11=pkcs11,
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
        if kind == "pkcs11" and self.pkcs11 is not None:
            return self.pkcs11
        raise RuntimeError(f"key provider {kind!r} is not configured")

    def timestamper(self) -> Any:
        return timestamper_for(self.tsa_url or None)

    def key_ref(self, provider: str, ref: str, algorithm: str, wrapped: bytes | None) -> KeyRef:
        return KeyRef(provider=provider, ref=ref, algorithm=algorithm, material=wrapped or b"")

"""Key providers: where seal and CA private keys live, behind one interface.

Private keys never leave a provider as data a caller could return: callers hold a reference
(`KeyRef`) and ask the provider to sign. Two providers:

- `SoftwareKeyProvider`: envelope encryption. Each key's PKCS#8 DER is sealed with AES-256-GCM
  under its own random data key; the data key is wrapped (AES-256-GCM again) by a master key
  taken from the environment and named by id, so the master key can rotate by re-wrapping data
  keys only. This replaces PKCS#8's password encryption, whose default KDF iteration counts are
  low, and keeps the blob meaningless without the environment's key.
- `Pkcs11KeyProvider`: keys generated inside a PKCS#11 token (an HSM; SoftHSM2 in tests),
  never extractable.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from seals.keyspec import parse_key_list

ECDSA_P256 = "ecdsa-p256"
RSA_2048 = "rsa-2048"
ALGORITHMS = (ECDSA_P256, RSA_2048)

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class KeyError_(RuntimeError):
    """A key could not be created, opened or used."""


@dataclass(frozen=True)
class KeyRef:
    """How to find a key again: the provider's kind and its opaque reference.

    For software keys `material` is the envelope (safe to store: useless without the master
    key); for PKCS#11 keys it is empty and `ref` is the object's label on the token.
    """

    provider: str
    ref: str
    algorithm: str
    material: bytes = b""


class KeyProvider(Protocol):
    """Create keys and sign with them; private keys never leave."""

    kind: str

    def generate(self, label: str, algorithm: str = ECDSA_P256) -> KeyRef: ...

    def public_key(self, key: KeyRef) -> PublicKey: ...

    def sign(self, key: KeyRef, data: bytes, hash_name: str = "sha256") -> bytes:
        """The signature of `data` (hashed with `hash_name`): DER ECDSA or PKCS#1 v1.5 RSA."""
        ...


def _b64e(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _b64d(text: str) -> bytes:
    return base64.b64decode(text)


def _new_private_key(algorithm: str) -> PrivateKey:
    if algorithm == ECDSA_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == RSA_2048:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise KeyError_(f"unsupported key algorithm {algorithm!r}")


def sign_with_private_key(private_key: PrivateKey, data: bytes, hash_name: str) -> bytes:
    """DER ECDSA or PKCS#1 v1.5 RSA signature of `data`."""
    algorithm = _HASHES[hash_name]()
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return private_key.sign(data, ec.ECDSA(algorithm))
    from cryptography.hazmat.primitives.asymmetric import padding

    return private_key.sign(data, padding.PKCS1v15(), algorithm)


class SoftwareKeyProvider:
    """Keys encrypted at rest under per-key data keys wrapped by an environment master key."""

    kind = "software"

    def __init__(self, master_keys: dict[str, bytes]) -> None:
        self._master = master_keys
        self._current = next(iter(master_keys))
        self._cache: dict[bytes, PrivateKey] = {}

    @classmethod
    def from_spec(cls, spec: str) -> SoftwareKeyProvider:
        """Master keys from a setting: `kid:base64(32 bytes),...`, the first one current."""
        return cls(
            parse_key_list(
                spec, noun="seal master key", none_message="no seal master key configured"
            )
        )

    def seal(self, private_key: PrivateKey, label: str) -> bytes:
        """The envelope of an existing private key (imported CA keys come in this way)."""
        der = private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        data_key = AESGCM.generate_key(bit_length=256)
        nonce, wrap_nonce = os.urandom(12), os.urandom(12)
        # The label is bound as associated data: an envelope swapped onto another key's
        # record does not open.
        sealed = AESGCM(data_key).encrypt(nonce, der, label.encode())
        wrapped = AESGCM(self._master[self._current]).encrypt(
            wrap_nonce, data_key, b"seal-data-key:" + label.encode()
        )
        envelope = {
            "v": 1,
            "label": label,
            "kek": self._current,
            "wrap_nonce": _b64e(wrap_nonce),
            "wrapped_key": _b64e(wrapped),
            "nonce": _b64e(nonce),
            "sealed": _b64e(sealed),
        }
        return json.dumps(envelope, separators=(",", ":")).encode()

    def generate(self, label: str, algorithm: str = ECDSA_P256) -> KeyRef:
        material = self.seal(_new_private_key(algorithm), label)
        return KeyRef(provider=self.kind, ref=label, algorithm=algorithm, material=material)

    @property
    def current_key_id(self) -> str:
        """The id of the master key that wraps new keys (the first listed)."""
        return self._current

    @staticmethod
    def master_key_id(key: KeyRef) -> str | None:
        """The id of the master key that wraps `key`'s data key; None if not an envelope."""
        try:
            kek = json.loads(key.material).get("kek")
        except (ValueError, AttributeError):
            return None
        return kek if isinstance(kek, str) else None

    def rewrap(self, key: KeyRef) -> KeyRef:
        """The same key with its data key wrapped by the current master key (rotation)."""
        return KeyRef(key.provider, key.ref, key.algorithm, self.seal(self.open(key), key.ref))

    def open(self, key: KeyRef) -> PrivateKey:
        """The private key object; for this library's own use (CA signing), never returned
        by an API."""
        cached = self._cache.get(key.material)
        if cached is not None:
            return cached
        try:
            envelope: dict[str, Any] = json.loads(key.material)
            master = self._master[envelope["kek"]]
            data_key = AESGCM(master).decrypt(
                _b64d(envelope["wrap_nonce"]),
                _b64d(envelope["wrapped_key"]),
                b"seal-data-key:" + key.ref.encode(),
            )
            der = AESGCM(data_key).decrypt(
                _b64d(envelope["nonce"]), _b64d(envelope["sealed"]), key.ref.encode()
            )
        except (KeyError, ValueError, InvalidTag) as exc:
            raise KeyError_(f"cannot open key {key.ref!r}: wrong master key or tampered") from exc
        private_key = serialization.load_der_private_key(der, password=None)
        if not isinstance(private_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise KeyError_("unsupported private key type")
        self._cache[key.material] = private_key
        return private_key

    def public_key(self, key: KeyRef) -> PublicKey:
        return self.open(key).public_key()

    def sign(self, key: KeyRef, data: bytes, hash_name: str = "sha256") -> bytes:
        return sign_with_private_key(self.open(key), data, hash_name)


class Pkcs11KeyProvider:
    """Keys generated and kept inside a PKCS#11 token; only signatures come out."""

    kind = "pkcs11"

    def __init__(self, library_path: str, token_label: str, user_pin: str) -> None:
        import pkcs11

        self._pkcs11 = pkcs11
        self._lib = pkcs11.lib(library_path)
        self._token = self._lib.get_token(token_label=token_label)
        self._pin = user_pin

    def _session(self) -> Any:
        return self._token.open(rw=True, user_pin=self._pin)

    def generate(self, label: str, algorithm: str = ECDSA_P256) -> KeyRef:
        pkcs11 = self._pkcs11
        from pkcs11.util.ec import encode_named_curve_parameters

        with self._session() as session:
            if algorithm == ECDSA_P256:
                params = session.create_domain_parameters(
                    pkcs11.KeyType.EC,
                    {pkcs11.Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
                    local=True,
                )
                params.generate_keypair(store=True, label=label)
            elif algorithm == RSA_2048:
                session.generate_keypair(pkcs11.KeyType.RSA, 2048, store=True, label=label)
            else:
                raise KeyError_(f"unsupported key algorithm {algorithm!r}")
        return KeyRef(provider=self.kind, ref=label, algorithm=algorithm)

    def public_key(self, key: KeyRef) -> PublicKey:
        pkcs11 = self._pkcs11
        with self._session() as session:
            public = session.get_key(object_class=pkcs11.ObjectClass.PUBLIC_KEY, label=key.ref)
            if key.algorithm == ECDSA_P256:
                from pkcs11.util.ec import encode_ec_public_key

                der = encode_ec_public_key(public)
            else:
                from pkcs11.util.rsa import encode_rsa_public_key

                der = encode_rsa_public_key(public)
        loaded = serialization.load_der_public_key(der)
        if not isinstance(loaded, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise KeyError_("unsupported public key type")
        return loaded

    def sign(self, key: KeyRef, data: bytes, hash_name: str = "sha256") -> bytes:
        pkcs11 = self._pkcs11
        digest = hashes.Hash(_HASHES[hash_name]())
        digest.update(data)
        with self._session() as session:
            private = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=key.ref)
            if key.algorithm == ECDSA_P256:
                # CKM_ECDSA signs a digest computed here and returns r || s; CMS wants DER.
                raw = private.sign(digest.finalize(), mechanism=pkcs11.Mechanism.ECDSA)
                half = len(raw) // 2
                return encode_dss_signature(
                    int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
                )
            mechanism = {
                "sha256": pkcs11.Mechanism.SHA256_RSA_PKCS,
                "sha384": pkcs11.Mechanism.SHA384_RSA_PKCS,
                "sha512": pkcs11.Mechanism.SHA512_RSA_PKCS,
            }[hash_name]
            return bytes(private.sign(data, mechanism=mechanism))

"""Signed checkpoints of the audit chain's head, kept outside the database.

Keyed links stop an edit; they cannot stop a truncation: delete the last entries, point
`audit_chain_head` at the new last one, and every remaining link still verifies. So each
sealing run that moved the head ends by writing a checkpoint of it (its seq and link), signed,
to a folder the database cannot reach (`AUDIT_CHECKPOINT_DIR`: by default beside the signed
documents; in production a mount or object store with retention). `verify` then requires
every checkpointed seq to exist with that link, and no checkpoint to be ahead of the chain.

Format: one JSON file per checkpoint, `<YYYY-MM-DD>/<seq, 12 digits>.json`, holding
`{"kind", "v", "seq", "link", "at", "kid"}` and `sig`, the Ed25519 signature of the canonical
JSON of the other fields (sorted keys, no spaces). Files are created exclusively and never
rewritten: the folder is the history. A checkpoint is written only after the run's commit, so
it is never ahead of committed entries.

Signing key: a dedicated Ed25519 key from the environment (`AUDIT_CHECKPOINT_KEYS`, the same
`kid:base64(32-byte seed),...` list as every key setting; the first signs, all verify), not a
key of the seals PKI. The PKI's keys are created by a CLI command and kept (envelope-encrypted)
in the very database this guards, may sit in an HSM a sealing worker cannot reach, and certify
seals for PAdES, a different purpose. A dedicated key works in every process from the first
run, rotates on its own, and its public half (`flask audit checkpoint-keys`) lets someone
outside check the checkpoints without being able to forge links or checkpoints.

Limits: entries sealed after the latest checkpoint (one sealing run, a few seconds) can be
truncated unseen; whoever can delete checkpoint files as well can rewind to an older one,
which retention on the folder prevents.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from seals.keyspec import parse_key_list

KIND = "yuhaoban.audit.checkpoint"
VERSION = 1
_FILE_NAME = re.compile(r"\d{12}\.json")


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head at one moment: entry `seq` had link `link`."""

    seq: int
    link: str
    at: dt.datetime
    key_id: str
    signature: bytes = b""

    def signed_bytes(self) -> bytes:
        """What the signature covers: the canonical JSON of every field but the signature."""
        return json.dumps(
            {
                "kind": KIND,
                "v": VERSION,
                "seq": self.seq,
                "link": self.link,
                "at": self.at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "kid": self.key_id,
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()

    def to_json(self) -> bytes:
        document = json.loads(self.signed_bytes())
        document["sig"] = base64.b64encode(self.signature).decode()
        return json.dumps(document, sort_keys=True, indent=1).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Checkpoint:
        """Parse a checkpoint file; ValueError if it is not one."""
        try:
            document: dict[str, Any] = json.loads(raw)
            if document.get("kind") != KIND or document.get("v") != VERSION:
                raise ValueError("not an audit checkpoint of a known version")
            seq, link, kid = document["seq"], document["link"], document["kid"]
            if not isinstance(seq, int) or not isinstance(link, str) or not isinstance(kid, str):
                raise ValueError("malformed fields")
            at = dt.datetime.strptime(document["at"], "%Y-%m-%dT%H:%M:%S.%fZ")
            signature = base64.b64decode(document["sig"], validate=True)
        except (KeyError, TypeError, json.JSONDecodeError, binascii.Error) as exc:
            raise ValueError(f"unreadable checkpoint: {exc}") from exc
        return cls(seq, link, at.replace(tzinfo=dt.UTC), kid, signature)


class CheckpointSigner:
    """Ed25519 keys by id: the first signs new checkpoints, all of them verify."""

    def __init__(self, seeds: dict[str, bytes]) -> None:
        self._keys = {kid: Ed25519PrivateKey.from_private_bytes(s) for kid, s in seeds.items()}
        self.current_id = next(iter(self._keys))

    @classmethod
    def from_spec(cls, spec: str) -> CheckpointSigner:
        """Keys from `AUDIT_CHECKPOINT_KEYS`: `kid:base64(32-byte Ed25519 seed),...`."""
        return cls(
            parse_key_list(
                spec,
                noun="audit checkpoint key",
                none_message="no audit checkpoint keys configured",
            )
        )

    def sign(self, seq: int, link: str, *, at: dt.datetime) -> Checkpoint:
        unsigned = Checkpoint(seq, link, at.astimezone(dt.UTC), self.current_id)
        signature = self._keys[self.current_id].sign(unsigned.signed_bytes())
        return Checkpoint(seq, link, unsigned.at, self.current_id, signature)

    def problem_with(self, checkpoint: Checkpoint) -> str | None:
        """Why `checkpoint`'s signature does not hold, or None if it does."""
        key = self._keys.get(checkpoint.key_id)
        if key is None:
            return f"signed with unknown key id {checkpoint.key_id!r}"
        try:
            key.public_key().verify(checkpoint.signature, checkpoint.signed_bytes())
        except InvalidSignature:
            return "invalid signature"
        return None

    def public_keys(self) -> dict[str, str]:
        """Each key id's raw Ed25519 public key, base64: for verifiers outside."""
        return {
            kid: base64.b64encode(
                key.public_key().public_bytes(
                    serialization.Encoding.Raw, serialization.PublicFormat.Raw
                )
            ).decode()
            for kid, key in self._keys.items()
        }


@dataclass(frozen=True)
class StoredCheckpoint:
    """A checkpoint file as read back: its checkpoint, or why it could not be read."""

    path: Path
    checkpoint: Checkpoint | None
    problem: str | None = None


class CheckpointStore:
    """A folder of checkpoint files, one per checkpoint, never rewritten."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def write(self, checkpoint: Checkpoint) -> Path | None:
        """Store `checkpoint`; None if one for that seq was stored that day already."""
        folder = self.directory / checkpoint.at.strftime("%Y-%m-%d")
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{checkpoint.seq:012d}.json"
        temporary = folder / f".{checkpoint.seq:012d}.{os.getpid()}.{id(checkpoint)}.tmp"
        # Written whole and synced, then linked into place: a reader never sees half a file,
        # and an existing checkpoint is never replaced (link fails where rename would not).
        with temporary.open("wb") as handle:
            handle.write(checkpoint.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, final)
        except FileExistsError:
            return None
        finally:
            temporary.unlink()
        return final

    def read_all(self) -> Iterator[StoredCheckpoint]:
        """Every checkpoint file, in folder (day) and seq order."""
        if not self.directory.is_dir():
            return
        for folder in sorted(p for p in self.directory.iterdir() if p.is_dir()):
            for path in sorted(folder.iterdir()):
                if not _FILE_NAME.fullmatch(path.name):
                    continue
                try:
                    yield StoredCheckpoint(path, Checkpoint.from_json(path.read_bytes()))
                except (OSError, ValueError) as exc:
                    yield StoredCheckpoint(path, None, str(exc))

"""Ed25519 signatures on object versions, made by the originating node and checked on receipt.

A node signs every version it originates, after stamping its distribution, in the tansiq
*signature* property-extension (:data:`~tansiq.stix.extensions.SIGNATURE_EXT`)::

    "extensions": {
        "extension-definition--3507d1bf-...": {
            "extension_type": "property-extension",
            "signer": "EG",            # partner code of the signing node
            "alg": "Ed25519",
            "signature": "<base64url, unpadded, of the 64-byte signature>"
        },
        ...
    }

What is signed is :func:`canonical_bytes`: the RFC 8785 (JCS) canonical JSON of the version with
the signature extension removed and, if that leaves ``extensions`` empty, without ``extensions``.
So the signature covers every other property, the distribution extension included: a receiving
node cannot widen ``partners`` (or change ``origin``) without breaking it.  Key order, whitespace
and number spelling (``1.0`` / ``1``) do not matter; an empty ``extensions`` is the same as none
(STIX forbids an empty one anyway), so an object that had ``extensions: {}`` before it was signed
verifies too.  Signing an already signed version replaces its signature.

``signer`` and ``alg`` are not inside the signed bytes: the verifying key is always chosen by the
receiver (the peer it pulled from), ``signer`` must name that peer (:func:`receive_hook`, or
``verify(..., signer=...)``) and ``alg`` must be Ed25519.  The extension may hold nothing but its
four members, so it cannot carry unsigned data either.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tansiq.federation import jcs
from tansiq.sharing import Partner, odd_codes
from tansiq.stix.extensions import (
    DISTRIBUTION_EXT,
    SIGNATURE_EXT,
    distribution_of,
    extension_of,
    without_extension,
)
from tansiq.stix.markings import TLP1_IDS, is_tlp_id
from tansiq.stix.timestamps import version_micros
from tansiq.store.ingest import ObjectRejected, Prepare

ALG: Final = "Ed25519"
_MEMBERS: Final = frozenset({"extension_type", "signer", "alg", "signature"})
_B64_SIG: Final = re.compile(r"[A-Za-z0-9_-]{86}\Z")  # 64 bytes, base64url without padding
_SIG_PROP: Final = f"extensions.{SIGNATURE_EXT}"
_DIST_PROP: Final = f"extensions.{DISTRIBUTION_EXT}"
BAD_SIGNATURE: Final = "bad signature: the object was changed or not signed by this key"


class SignatureError(ValueError):
    """An object version whose signature is missing, malformed or does not verify.

    ``member`` names the signature-extension member at fault ("" for the object as a whole).
    """

    def __init__(self, reason: str, member: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.member = member


def canonical_bytes(obj: dict[str, Any]) -> bytes:
    """RFC 8785 canonical JSON of *obj* without the signature extension: the signed bytes.

    Raise :class:`SignatureError` for what RFC 8785 (I-JSON) cannot represent: integers beyond
    ±(2**53 - 1), NaN and infinities, lone surrogates.
    """
    view = obj
    ext = obj.get("extensions")
    if isinstance(ext, dict) and (SIGNATURE_EXT in ext or not ext):
        view = dict(obj)
        rest = {k: v for k, v in ext.items() if k != SIGNATURE_EXT}
        if rest:
            view["extensions"] = rest
        else:
            del view["extensions"]
    try:
        return jcs.dumps(view)
    except jcs.CanonicalizationError as exc:
        raise SignatureError(f"cannot be canonicalised (RFC 8785): {exc}") from None


def unsigned(obj: dict[str, Any]) -> dict[str, Any]:
    """*obj* without the signature extension (and without ``extensions`` if that leaves it
    empty): a version this node does not sign carries no signature, neither that of the version
    it was made from nor one it was given with."""
    return without_extension(obj, SIGNATURE_EXT)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def sign(obj: dict[str, Any], key: Ed25519PrivateKey, signer: str) -> dict[str, Any]:
    """A copy of *obj* signed by *key* for partner *signer* (any old signature replaced)."""
    ext = obj.get("extensions", {})
    if not isinstance(ext, dict):
        raise SignatureError("extensions must be a dictionary")
    signature = key.sign(canonical_bytes(obj))
    out = dict(obj)
    out["extensions"] = {
        **{k: v for k, v in ext.items() if k != SIGNATURE_EXT},
        SIGNATURE_EXT: {
            "extension_type": "property-extension",
            "signer": signer,
            "alg": ALG,
            "signature": _b64(signature),
        },
    }
    return out


def signature_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The signature extension of *obj*, or None."""
    return extension_of(obj, SIGNATURE_EXT)


@lru_cache(maxsize=64)
def load_public_key(pem: str) -> Ed25519PublicKey:
    """The Ed25519 public key in PEM (SubjectPublicKeyInfo) text; raise :class:`SignatureError`."""
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError, TypeError):
        raise SignatureError("not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError("not an Ed25519 public key")
    return key


def _verify_with(obj: dict[str, Any], key: Ed25519PublicKey, signer: str | None) -> None:
    sig = signature_of(obj)
    if sig is None:
        raise SignatureError("unsigned: no tansiq signature extension")
    extra = sorted(set(sig) - _MEMBERS)
    if extra:
        raise SignatureError(f"unexpected member(s) {', '.join(extra)}", extra[0])
    if sig.get("extension_type") != "property-extension":
        raise SignatureError("extension_type must be property-extension", "extension_type")
    if sig.get("alg") != ALG:
        raise SignatureError(f"unsupported alg {sig.get('alg')!r}: only {ALG}", "alg")
    who = sig.get("signer")
    if not isinstance(who, str) or not who:
        raise SignatureError("signer must be a partner code", "signer")
    if signer is not None and who != signer:
        raise SignatureError(f"signed by {who}, expected {signer}", "signer")
    text = sig.get("signature")
    if not isinstance(text, str) or not _B64_SIG.match(text):
        raise SignatureError("signature must be unpadded base64url of 64 bytes", "signature")
    raw = base64.urlsafe_b64decode(text + "==")
    if _b64(raw) != text:  # non-zero trailing bits: another spelling of the same bytes
        raise SignatureError("signature is not canonical base64url", "signature")
    try:
        key.verify(raw, canonical_bytes(obj))
    except InvalidSignature:
        raise SignatureError(BAD_SIGNATURE, "signature") from None


def verify(obj: dict[str, Any], public_key_pem: str, *, signer: str | None = None) -> None:
    """Check *obj*'s signature against the PEM public key; with *signer*, also who signed.

    Raise :class:`SignatureError` for an unsigned object, a wrong alg, a malformed encoding or a
    signature that does not verify.
    """
    _verify_with(obj, load_public_key(public_key_pem), signer)


def receive_hook(
    own_code: str,
    sender: Partner,
    held_versions: Callable[[str], int | None],
    others: frozenset[str] = frozenset(),
) -> Prepare:
    """The write-path hook for objects pulled from peer *sender*.

    A sync carries only what the sender originated and released to us, signed by it.  Rejected:
    an unsigned version or one not signed by ``sender.code`` with ``sender.public_key``; a
    distribution missing, not originated by the sender, or not including *own_code*; a
    ``created_by_ref`` other than ``sender.identity_id`` (objects without one, e.g. marking
    definitions and SCOs, rely on the signed ``origin``); an object whose id is in *others* (the
    identities of this node and of the other partners: only their own nodes publish them, and
    without ``created_by_ref`` nothing else would stop the sender from claiming one this node
    does not hold yet); a TLP marking definition (its id is OASIS's, its content fixed: a
    peer's copy would define a TLP level here, and block this node's own load of the OASIS
    definitions); and a version older than the latest we
    hold (``held_versions(id)``: its version in µs, or None).  An equal version passes: the store
    makes an identical re-send a no-op; a different one is the sender's, stored again (sync
    replaces the held copy, see :func:`tansiq.federation.received.store_page`).

    Raise :class:`SignatureError` at once when the sender has no usable public key.
    """
    if not sender.public_key:
        raise SignatureError(f"partner {sender.code} has no public key registered")
    try:
        key = load_public_key(sender.public_key)
    except SignatureError as exc:
        raise SignatureError(f"partner {sender.code}'s public key: {exc.reason}") from None
    peer = sender.code

    def receive(obj: dict[str, Any]) -> dict[str, Any]:
        try:
            _verify_with(obj, key, peer)
        except SignatureError as exc:
            prop = f"{_SIG_PROP}.{exc.member}" if exc.member else _SIG_PROP
            raise ObjectRejected(prop, f"from {peer}: {exc.reason}") from None
        dist = distribution_of(obj)
        if dist is None:
            raise ObjectRejected(_DIST_PROP, f"from {peer}: no distribution")
        origin = dist.get("origin")
        if origin != peer:
            raise ObjectRejected(
                f"{_DIST_PROP}.origin",
                f"from {peer}: originated by {origin!r}; a peer sends only its own objects",
            )
        partners = dist.get("partners")
        odd = odd_codes(partners)
        if not isinstance(partners, list) or odd:
            odd = odd or ["not a list"]
            raise ObjectRejected(
                f"{_DIST_PROP}.partners", f"from {peer}: not partner codes: {', '.join(odd)}"
            )
        if own_code not in partners:
            raise ObjectRejected(
                f"{_DIST_PROP}.partners", f"from {peer}: not released to {own_code}"
            )
        creator = obj.get("created_by_ref")
        if creator is not None and creator != sender.identity_id:
            raise ObjectRejected(
                "created_by_ref",
                f"from {peer}: created by {creator}, not by {peer} ({sender.identity_id})",
            )
        oid = obj.get("id")
        if oid in others:
            raise ObjectRejected("id", f"from {peer}: another partner's (or this node's) identity")
        if is_tlp_id(oid) or oid in TLP1_IDS:
            why = "a TLP marking definition (OASIS's, fixed: no partner publishes it)"
            raise ObjectRejected("id", f"from {peer}: {why}")
        if isinstance(oid, str):
            held = held_versions(oid)
            try:
                incoming = version_micros(obj)
            except ValueError:
                raise ObjectRejected("modified", f"from {peer}: not a timestamp") from None
            if held is not None and incoming < held:
                raise ObjectRejected(
                    "modified", f"from {peer}: older than the version already held (replay)"
                )
        return obj

    return receive


def sign_hook(own_code: str, key: Ed25519PrivateKey) -> Prepare:
    """The write-path hook signing this node's own objects; run it after ``local_stamp``::

        stamp, seal = local_stamp(db, code, identity), sign_hook(code, node.private_key())
        ingest(db, objects, prepare=lambda obj: seal(stamp(obj)))

    Objects not stamped as originated by *own_code* are refused: a node signs only its own.
    """

    def seal(obj: dict[str, Any]) -> dict[str, Any]:
        dist = distribution_of(obj)
        origin = None if dist is None else dist.get("origin")
        if origin != own_code:
            raise ObjectRejected(
                f"{_DIST_PROP}.origin",
                f"originated by {origin!r}: this node ({own_code}) signs only its own objects",
            )
        try:
            return sign(obj, key, own_code)
        except SignatureError as exc:
            raise ObjectRejected(_SIG_PROP, exc.reason) from None

    return seal

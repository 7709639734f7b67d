"""The cyber-observable (SCO) rules of STIX 2.1 section 6 as tables, for :mod:`validate`.

Plain data, read once when :mod:`tansiq.stix.validate` builds its per-type tables: which types are
cyber-observables, their required properties and the few others checked (``name:s`` syntax as in
validate's type specs), which need at least one or exactly one of some properties, and which need
a UUIDv4 id when no ID-contributing property is present.  Other SCO properties are not checked.
"""

from __future__ import annotations

from typing import Final


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _pairs(text: str) -> dict[str, str]:  # "a=b c=d" -> {"a": "b", "c": "d"}
    return {a: b for a, _, b in (word.partition("=") for word in text.split())}


SCO_TYPES: Final = _words(
    "artifact autonomous-system directory domain-name email-addr email-message file ipv4-addr "
    "ipv6-addr mac-addr mutex network-traffic process software url user-account "
    "windows-registry-key x509-certificate"
)
# type -> checked properties, validate's "name[!]:kind" tokens ("!" = required)
SCO_SPECS: Final = {
    t: "defanged:b "
    + _pairs(
        "autonomous-system=number!:i directory=path!:s email-message=is_multipart!:b "
        "mutex=name!:s network-traffic=protocols!:l software=name!:s domain-name=value!:s "
        "email-addr=value!:s ipv4-addr=value!:s ipv6-addr=value!:s mac-addr=value!:s "
        "url=value!:s file=name:s,hashes:* artifact=hashes:* x509-certificate=hashes:*"
    )
    .get(t, "")
    .replace(",", " ")
    for t in SCO_TYPES
}
# type -> (properties, how many of them must be present)
SCO_GROUPS: Final = {
    "file": (("hashes", "name"), "at least one"),
    "network-traffic": (("src_ref", "dst_ref"), "at least one"),
    "artifact": (("payload_bin", "url"), "exactly one"),
    **{  # no required property: at least one property of their own (or an extension)
        t: (tuple(props.split(",")), "at least one")
        for t, props in _pairs(
            "process=extensions,is_hidden,pid,created_time,cwd,command_line,"
            "environment_variables,opened_connection_refs,creator_user_ref,image_ref,parent_ref,"
            "child_refs user-account=extensions,user_id,credential,account_login,account_type,"
            "display_name,is_service_account,is_privileged,can_escalate_privs,is_disabled,"
            "account_created,account_expires,credential_last_changed,account_first_login,"
            "account_last_login windows-registry-key=key,values,modified_time,creator_user_ref,"
            "number_of_subkeys x509-certificate=is_self_signed,hashes,version,serial_number,"
            "signature_algorithm,issuer,validity_not_before,validity_not_after,subject,"
            "subject_public_key_algorithm,subject_public_key_modulus,subject_public_key_exponent,"
            "x509_v3_extensions"
        ).items()
    },
}
# SCOs whose id must be a UUIDv4 when none of these ID-contributing properties is present.
UUID4_UNLESS: Final = {
    t: tuple(filter(None, props.split(",")))
    for t, props in _pairs(
        "artifact=hashes,payload_bin email-message=from_ref,subject,body process= "
        "user-account=account_type,user_id,account_login windows-registry-key=key,values "
        "x509-certificate=hashes,serial_number"
    ).items()
}

"""The demo scenario (Libya, February 2015) as deterministic STIX 2.1 objects.

Facts come from ``shared/SCENARIO.md``; the wording of every text is this module's.  Ids are
``uuid5(SCENARIO_NAMESPACE, "<type>:<readable key>")`` and every timestamp is fixed, so two calls
of :func:`scenario_items` return identical objects.  (STIX 2.1 suggests UUIDv4 for SDOs/SROs;
the validator reports uuid5 ids as a warning, not an error, and reproducibility matters more.)

Each object is wrapped in a :class:`ScenarioItem` that says who originates it, to whom it is
released and under which TLP 2.0 marking.  ``distribution`` is one of

- ``"all"``: every partner of the trilateral group (DZ, EG, TN);
- ``"own"``: the originator's node only;
- a tuple of partner codes: the complete release list, **originator included**, e.g. the Derna
  field-results report by EG is ``("DZ", "EG", "TN")`` (EG -> DZ and TN) and the DZ-TN
  bilateral report by DZ is ``("DZ", "TN")``.

Rule kept by the data (and tested): an object only references objects that are released to at
least everyone it is released to, so no node ever holds a dangling reference.

No private individual is profiled: there is no identity object for a person; public officials
appear only by name in the text of their public positions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Final

from tansiq.node import IDENTITY_CREATED, partner_identity_id
from tansiq.stix.markings import TLP_IDS, tlp_object

SCENARIO_NAMESPACE: Final = uuid.UUID("6f1c1a52-5b0e-4c1e-9a43-7a2b1d0e2015")

PARTNER_CODES: Final = ("DZ", "EG", "TN")


@dataclass(frozen=True)
class ScenarioItem:
    """One scenario object with its originator, release list and TLP level."""

    originator: str  # "DZ" | "EG" | "TN" | "" for public reference objects (TLP markings)
    distribution: str | tuple[str, ...]  # "all", "own", or the release list incl. the originator
    tlp: str  # "clear" | "green" | "amber" | "amber+strict" | "red"
    obj: dict[str, Any]  # the STIX 2.1 object, JSON-ready


def _sid(stix_type: str, key: str) -> str:
    return f"{stix_type}--{uuid.uuid5(SCENARIO_NAMESPACE, f'{stix_type}:{key}')}"


def identity_id(code: str) -> str:
    """The identity id of partner *code* ("DZ", "EG" or "TN")."""
    if code not in PARTNER_CODES:
        raise KeyError(code)
    # The same id a node gives itself at `tansiq init`: the scenario's identity is a later
    # version of the node's own identity object.
    return partner_identity_id(code)


def loc_id(key: str) -> str:
    """The id of the scenario location *key* (e.g. "sirte", "ras-ajdir")."""
    return _sid("location", key)


PARTNERS: Final[dict[str, dict[str, Any]]] = {
    "DZ": {
        "name": "Algeria — Security and Defence Liaison",
        "name_ar": "الجزائر — الاتصال الأمني والدفاعي",
        "country": "Algeria",
        "country_ar": "الجزائر",
        "home": "Algiers",
        "home_ar": "الجزائر",
        "lat": 36.75,
        "lon": 3.06,
        "languages": ("ar", "fr"),
        "identity_id": identity_id("DZ"),
    },
    "EG": {
        "name": "Egypt — Security and Defence Liaison",
        "name_ar": "مصر — الاتصال الأمني والدفاعي",
        "country": "Egypt",
        "country_ar": "مصر",
        "home": "Cairo",
        "home_ar": "القاهرة",
        "lat": 30.04,
        "lon": 31.24,
        "languages": ("ar", "en"),
        "identity_id": identity_id("EG"),
    },
    "TN": {
        "name": "Tunisia — Security and Defence Liaison",
        "name_ar": "تونس — الاتصال الأمني والدفاعي",
        "country": "Tunisia",
        "country_ar": "تونس",
        "home": "Tunis",
        "home_ar": "تونس",
        "lat": 36.81,
        "lon": 10.18,
        "languages": ("ar", "fr"),
        "identity_id": identity_id("TN"),
    },
}

# key -> (originator, English name, Arabic name, country, lat, lon, kind)
_PLACES: Final[dict[str, tuple[str, str, str, str, float, float, str]]] = {
    "algiers": ("DZ", "Algiers", "الجزائر", "DZ", 36.75, 3.06, "capital"),
    "cairo": ("EG", "Cairo", "القاهرة", "EG", 30.04, 31.24, "capital"),
    "tunis": ("TN", "Tunis", "تونس", "TN", 36.81, 10.18, "capital"),
    "sirte": ("EG", "Sirte", "سرت", "LY", 31.21, 16.59, "city"),
    "derna": ("EG", "Derna", "درنة", "LY", 32.77, 22.64, "city"),
    "tobruk": ("EG", "Tobruk", "طبرق", "LY", 32.08, 23.96, "city"),
    "tripoli": ("TN", "Tripoli", "طرابلس", "LY", 32.89, 13.19, "capital"),
    "salloum": (
        "EG",
        "Salloum – Musaid border crossing",
        "السلوم – امساعد",
        "EG",
        31.55,
        25.15,
        "border-crossing",
    ),
    "ras-ajdir": (
        "TN",
        "Ras Ajdir border crossing",
        "رأس جدير",
        "TN",
        33.15,
        11.56,
        "border-crossing",
    ),
    "dehiba": (
        "TN",
        "Dehiba – Wazen border crossing",
        "الذهيبة – وازن",
        "TN",
        32.01,
        10.71,
        "border-crossing",
    ),
    "debdeb": (
        "DZ",
        "Debdeb – Ghadames border crossing",
        "الدبداب – غدامس",
        "DZ",
        30.05,
        9.47,
        "border-crossing",
    ),
    "in-amenas": (
        "DZ",
        "In Amenas border sector",
        "قطاع عين أميناس",
        "DZ",
        28.05,
        9.57,
        "border-sector",
    ),
}

_COUNTRY_EN: Final = {"DZ": "Algeria", "EG": "Egypt", "TN": "Tunisia", "LY": "Libya"}

THREAT_ACTOR_ID: Final = _sid("threat-actor", "islamic-state-in-libya")
SIRTE_INCIDENT_ID: Final = _sid("incident", "sirte-executions-2015-02")
DERNA_STRIKES_ID: Final = _sid("incident", "derna-air-strikes-2015-02-16")
DERNA_REPORT_ID: Final = _sid("report", "eg-derna-field-results")
BORDER_REPORT_ID: Final = _sid("report", "dz-tn-border-coordination")
EG_ONLY_NOTE_ID: Final = _sid("note", "eg-internal-assessment")
CAIRO_MEETING_ID: Final = _sid("note", "cairo-meeting-1")
ANADOLU_REPORT_ID: Final = _sid("report", "anadolu-cairo-meeting")
CLAIM_TOBRUK_ID: Final = _sid("note", "claim-tobruk-derna-strikes")
CLAIM_TRIPOLI_ID: Final = _sid("note", "claim-tripoli-derna-strikes")


def _ts(day: int, hour: int = 9, minute: int = 0) -> str:
    return f"2015-02-{day:02d}T{hour:02d}:{minute:02d}:00.000Z"


def _sdo(
    stix_type: str,
    key: str,
    originator: str,
    created: str,
    tlp: str,
    props: dict[str, Any],
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": stix_type,
        "spec_version": "2.1",
        "id": identity_id(key.upper()) if stix_type == "identity" else _sid(stix_type, key),
        "created_by_ref": identity_id(originator),
        "created": created,
        "modified": created,
        "object_marking_refs": [TLP_IDS[tlp]],
    }
    obj.update(props)
    return obj


class _Builder:
    """Collects scenario items in a fixed order."""

    def __init__(self) -> None:
        self.items: list[ScenarioItem] = []

    def add(
        self,
        stix_type: str,
        key: str,
        originator: str,
        distribution: str | tuple[str, ...],
        tlp: str,
        created: str,
        props: dict[str, Any],
    ) -> str:
        obj = _sdo(stix_type, key, originator, created, tlp, props)
        self.items.append(ScenarioItem(originator, distribution, tlp, obj))
        return str(obj["id"])

    def rel(
        self,
        key: str,
        originator: str,
        source: str,
        rtype: str,
        target: str,
        created: str,
        description: str,
        tlp: str = "clear",
        distribution: str | tuple[str, ...] = "all",
    ) -> str:
        return self.add(
            "relationship",
            key,
            originator,
            distribution,
            tlp,
            created,
            {
                "relationship_type": rtype,
                "source_ref": source,
                "target_ref": target,
                "description": description,
                "lang": "en",
            },
        )


def _reference_objects(b: _Builder) -> None:
    """Partner identities, places, the armed group and their public links."""
    for code, p in PARTNERS.items():
        b.add(
            "identity",
            code.lower(),
            code,
            "all",
            "clear",
            _ts(1),
            {
                "name": p["name"],
                "description": (
                    f"Security and defence liaison of {p['country']} in the trilateral "
                    "coordination group on Libya (Algeria, Egypt, Tunisia)."
                ),
                "identity_class": "organization",
                "sectors": ["government-national", "defense"],
                "lang": "en",
                "x_tansiq_partner": code,
                "x_tansiq_name_ar": p["name_ar"],
                # a later version of the identity the node created at `tansiq init`
                "created": IDENTITY_CREATED,
            },
        )
    for key, (orig, name, name_ar, country, lat, lon, kind) in _PLACES.items():
        label = "border crossing" if kind == "border-crossing" else kind.replace("-", " ")
        where = _COUNTRY_EN[country]
        desc = f"{name} ({name_ar}), {label}, {where}."
        if kind.startswith("border"):
            desc = f"{name} ({name_ar}): {label} on the {where}–Libya border."
        b.add(
            "location",
            key,
            orig,
            "all",
            "clear",
            _ts(1, 10),
            {
                "name": name,
                "description": desc,
                "latitude": lat,
                "longitude": lon,
                "precision": 5000.0,
                "country": country,
                "region": "northern-africa",
                "lang": "en",
                "x_tansiq_name_ar": name_ar,
                "x_tansiq_place_kind": kind,
            },
        )
    for code, home in (("DZ", "algiers"), ("EG", "cairo"), ("TN", "tunis")):
        p = PARTNERS[code]
        b.rel(
            f"{code.lower()}-located-at-{home}",
            code,
            identity_id(code),
            "located-at",
            loc_id(home),
            _ts(1, 11),
            f"{p['name']} is based in {p['home']}.",
        )
    b.add(
        "threat-actor",
        "islamic-state-in-libya",
        "EG",
        "all",
        "clear",
        _ts(1, 12),
        {
            "name": "Islamic State in Libya",
            "description": (
                "Armed group in Libya that calls itself the Islamic State (known in Arabic by the "
                'acronym داعش, "Daesh"). Tracked by the trilateral group for its attacks in '
                "Libya and for the networks that recruit and move fighters towards Libya, Iraq "
                "and Syria."
            ),
            "threat_actor_types": ["terrorist"],
            "aliases": ["داعش", "Daesh", "ISIL", "ISIS", "الدولة الإسلامية", "État islamique"],
            "roles": ["agent"],
            "resource_level": "organization",
            "primary_motivation": "ideology",
            "lang": "en",
        },
    )
    for place in ("sirte", "derna"):
        b.rel(
            f"isil-located-at-{place}",
            "EG",
            THREAT_ACTOR_ID,
            "located-at",
            loc_id(place),
            _ts(1, 12, 30),
            f"The group held positions in and around {place.capitalize()}.",
        )


def _incidents(b: _Builder) -> None:
    """The Sirte executions and the Derna strikes: public incidents, and the public EG report."""
    b.add(
        "incident",
        "sirte-executions-2015-02",
        "EG",
        "all",
        "clear",
        _ts(15, 20),
        {
            "name": "Execution of 21 Egyptian Copts by Daesh, Sirte",
            "description": (
                "The armed group calling itself the Islamic State executed 21 Egyptian Coptic "
                "Christians in Libya; the published account places it at Sirte. Public "
                "knowledge."
            ),
            "lang": "en",
            "x_tansiq_occurred": "2015-02-15T00:00:00Z",
        },
    )
    b.rel(
        "sirte-incident-at-sirte",
        "EG",
        SIRTE_INCIDENT_ID,
        "related-to",
        loc_id("sirte"),
        _ts(15, 20, 5),
        "Place of the incident (occurred at).",
    )
    b.rel(
        "sirte-incident-by-isil",
        "EG",
        SIRTE_INCIDENT_ID,
        "related-to",
        THREAT_ACTOR_ID,
        _ts(15, 20, 5),
        "Perpetrator: the group claimed the killings.",
    )
    b.add(
        "report",
        "eg-sirte-statement",
        "EG",
        "all",
        "clear",
        _ts(15, 22),
        {
            "name": "مقتل 21 مصرياً قبطياً على يد تنظيم داعش في ليبيا",
            "description": (
                "أقدم التنظيم الذي يسمي نفسه الدولة الإسلامية (داعش) على إعدام 21 مواطناً مصرياً "
                "من الأقباط في ليبيا، ويحدد المقطع المنشور مكان الحادث في سرت. معلومات علنية."
            ),
            "report_types": ["threat-report"],
            "published": _ts(15, 22),
            "object_refs": [
                SIRTE_INCIDENT_ID,
                loc_id("sirte"),
                THREAT_ACTOR_ID,
                _sid("relationship", "sirte-incident-at-sirte"),
                _sid("relationship", "sirte-incident-by-isil"),
            ],
            "lang": "ar",
        },
    )
    b.add(
        "incident",
        "derna-air-strikes-2015-02-16",
        "EG",
        "all",
        "clear",
        _ts(16, 8),
        {
            "name": "Egyptian Air Force strikes on Daesh targets in Derna",
            "description": (
                "In response to the Sirte killings the Egyptian Air Force struck the group's "
                "targets in Derna. The strikes are public; their field results are not."
            ),
            "lang": "en",
            "x_tansiq_occurred": "2015-02-16T00:00:00Z",
        },
    )
    b.rel(
        "derna-strikes-at-derna",
        "EG",
        DERNA_STRIKES_ID,
        "related-to",
        loc_id("derna"),
        _ts(16, 8, 5),
        "Place of the strikes (occurred at).",
    )
    b.rel(
        "derna-strikes-target-isil",
        "EG",
        DERNA_STRIKES_ID,
        "related-to",
        THREAT_ACTOR_ID,
        _ts(16, 8, 5),
        "Target of the strikes: the group's positions.",
    )
    b.rel(
        "derna-strikes-respond-sirte",
        "EG",
        DERNA_STRIKES_ID,
        "related-to",
        SIRTE_INCIDENT_ID,
        _ts(16, 8, 5),
        "The strikes were Egypt's response to the Sirte killings.",
    )


def _shared_reports(b: _Builder) -> None:
    """Restricted reports: EG -> DZ, TN; EG only; DZ <-> TN."""
    b.add(
        "report",
        "eg-derna-field-results",
        "EG",
        ("DZ", "EG", "TN"),
        "amber",
        _ts(17, 14),
        {
            "name": "النتائج الميدانية للضربات الجوية المصرية في درنة — إحاطة للجزائر وتونس",
            "description": (
                "إحاطة من الجانب المصري للجانبين الجزائري والتونسي حول النتائج الميدانية للضربات "
                "الجوية على مواقع تنظيم داعش في درنة: استهدفت الضربات معسكرات ومواقع تدريب "
                "ومخازن أسلحة وذخائر تابعة للتنظيم. التقييم أولي وقيد الاستكمال. "
                "يُتداول في حدود الجهات المعنية لدى الشركاء (TLP:AMBER)."
            ),
            "report_types": ["threat-report"],
            "published": _ts(17, 14),
            "object_refs": [
                DERNA_STRIKES_ID,
                loc_id("derna"),
                THREAT_ACTOR_ID,
                _sid("relationship", "derna-strikes-target-isil"),
            ],
            "lang": "ar",
        },
    )
    b.add(
        "note",
        "eg-internal-assessment",
        "EG",
        "own",
        "red",
        _ts(17, 18),
        {
            "abstract": "تقييم داخلي مصري: المخاطر على الحدود الغربية بعد ضربات درنة",
            "content": (
                "تقييم داخلي للجانب المصري وحده: يُرجَّح أن يسعى التنظيم إلى الرد بعد ضربات درنة، "
                "ما يستدعي تشديد المراقبة في قطاع السلوم – امساعد ورصد محاولات التسلل عبر الحدود "
                "الغربية. لا يُشارك هذا التقييم مع أي شريك."
            ),
            "object_refs": [DERNA_STRIKES_ID, loc_id("salloum"), THREAT_ACTOR_ID],
            "lang": "ar",
        },
    )
    b.add(
        "report",
        "dz-tn-border-coordination",
        "DZ",
        ("DZ", "TN"),
        "amber",
        _ts(25, 10),
        {
            "name": "Coordination frontalière algéro-tunisienne : Ras Ajdir et Debdeb",
            "description": (
                "Rapport bilatéral Algérie–Tunisie sur la coordination aux frontières avec la "
                "Libye. Échange d'informations sur les mouvements des groupes armés liés à "
                "Daech au point de passage de Ras Ajdir (côté tunisien) et au poste de "
                "Debdeb – Ghadamès (côté algérien) ; harmonisation des patrouilles et des "
                "horaires de contrôle ; point de contact permanent entre les deux services. "
                "Diffusion limitée à l'Algérie et à la Tunisie (TLP:AMBER)."
            ),
            "report_types": ["threat-report"],
            "published": _ts(25, 10),
            "object_refs": [
                loc_id("ras-ajdir"),
                loc_id("debdeb"),
                THREAT_ACTOR_ID,
                identity_id("DZ"),
                identity_id("TN"),
            ],
            "lang": "fr",
        },
    )
    b.add(
        "note",
        "tn-border-coordination-remark",
        "TN",
        ("DZ", "TN"),
        "amber",
        _ts(25, 16),
        {
            "abstract": "ملاحظة تونسية على تقرير التنسيق الحدودي",
            "content": (
                "يؤكد الجانب التونسي تعزيز الدوريات المشتركة عند معبر رأس جدير وتبادل المعلومات "
                "يومياً مع الجانب الجزائري حول معبر الدبداب – غدامس."
            ),
            "object_refs": [BORDER_REPORT_ID, loc_id("ras-ajdir")],
            "lang": "ar",
        },
    )


def _meeting_and_sources(b: _Builder) -> None:
    """The Cairo meeting (first of a series) and the Anadolu account of it."""
    parties = [identity_id(c) for c in PARTNER_CODES]
    b.add(
        "note",
        "cairo-meeting-1",
        "EG",
        "all",
        "amber",
        _ts(22, 17),
        {
            "abstract": (
                "Cairo: first periodic meeting of Algerian, Egyptian and Tunisian security and "
                "defence leaders on Libya"
            ),
            "content": (
                "Security officials of Algeria, Egypt and Tunisia met in Cairo and agreed to step "
                "up security and defence coordination on Libya. They exchanged information on the "
                "field situation and on the movements of armed groups linked to Daesh in Libya; "
                "Egypt briefed Algeria and Tunisia on the field results of its air strikes in "
                "Derna. The three political leaderships decided that security and defence "
                "leaders will meet periodically on two standing topics: (1) field coordination "
                "on the borders with Libya; (2) countering the networks that recruit and move "
                "fighters who want to join the group in Libya, Iraq and Syria."
            ),
            "object_refs": [loc_id("cairo"), THREAT_ACTOR_ID, DERNA_REPORT_ID, *parties],
            "lang": "en",
            "x_tansiq_meeting": {
                "series": "trilateral-security-defence-leaders",
                "sequence": 1,
                "recurrence": "periodic",
                "place": "Cairo",
                "participants": list(PARTNER_CODES),
            },
            "x_tansiq_topics": [
                {
                    "key": "border-field-coordination",
                    "en": "Field coordination on the borders with Libya",
                    "ar": "التنسيق الميداني على الحدود مع ليبيا",
                    "fr": "Coordination sur le terrain aux frontières avec la Libye",
                },
                {
                    "key": "foreign-fighter-networks",
                    "en": (
                        "Countering networks that recruit and move fighters to Libya, Iraq "
                        "and Syria"
                    ),
                    "ar": "مكافحة شبكات تجنيد ونقل المقاتلين إلى ليبيا والعراق وسوريا",
                    "fr": (
                        "Lutte contre les filières de recrutement et d'acheminement de "
                        "combattants vers la Libye, l'Irak et la Syrie"
                    ),
                },
            ],
            "x_tansiq_decisions": [
                "Step up security and defence coordination on Libya.",
                "Hold periodic meetings of security and defence leaders on the two standing "
                "topics.",
            ],
            "x_tansiq_action_items": [
                {
                    "owner": "EG",
                    "due": "2015-03-15T00:00:00Z",
                    "topic": "border-field-coordination",
                    "text": "Circulate the schedule and venue of the second meeting.",
                },
                {
                    "owner": "DZ",
                    "due": "2015-03-31T00:00:00Z",
                    "topic": "border-field-coordination",
                    "text": "Propose liaison points for the Debdeb and In Amenas sectors.",
                },
                {
                    "owner": "TN",
                    "due": "2015-03-31T00:00:00Z",
                    "topic": "foreign-fighter-networks",
                    "text": "Share a summary of recruitment-network indicators seen at Ras Ajdir.",
                },
            ],
        },
    )
    b.add(
        "report",
        "anadolu-cairo-meeting",
        "TN",
        "all",
        "clear",
        _ts(23, 9),
        {
            "name": "Dépêche Anadolu : réunion sécuritaire algéro-égypto-tunisienne au Caire",
            "description": (
                "Selon l'agence Anadolu, citant un haut responsable sécuritaire algérien ayant "
                "requis l'anonymat, des responsables de la sécurité d'Algérie, d'Égypte et de "
                "Tunisie se sont réunis au Caire et ont convenu de renforcer la coordination "
                "sécuritaire et de défense sur la Libye. Source de seconde main, fiabilité non "
                "confirmée."
            ),
            "report_types": ["threat-report"],
            "published": _ts(23, 9),
            "object_refs": [CAIRO_MEETING_ID, loc_id("cairo"), THREAT_ACTOR_ID, *parties],
            "external_references": [
                {
                    "source_name": "Anadolu Agency (Anadolu Ajansı)",
                    "description": (
                        "Dépêche citant un haut responsable sécuritaire algérien anonyme "
                        "(source de seconde main)."
                    ),
                }
            ],
            "lang": "fr",
            "x_tansiq_reliability": "F3",
            "x_tansiq_reliability_note": (
                "Admiralty code: F = source reliability cannot be judged (anonymous official, "
                "second-hand via a news agency); 3 = possibly true, not confirmed."
            ),
        },
    )


def _claims_and_opinions(b: _Builder) -> None:
    """The two Libyan governments' opposite claims on the Derna strikes, graded by partners."""
    b.add(
        "note",
        "claim-tobruk-derna-strikes",
        "EG",
        "all",
        "clear",
        _ts(16, 15),
        {
            "abstract": "Tobruk government: the Derna strikes were coordinated with Libya",
            "content": (
                "The internationally recognised government of Abdullah al-Thani, tied to the "
                "House of Representatives in Tobruk, condemned the Sirte killings and stated "
                "that the air strikes on Derna were carried out in coordination with the Libyan "
                "authorities and with Cairo."
            ),
            "object_refs": [DERNA_STRIKES_ID],
            "lang": "en",
            "x_tansiq_source": "Tobruk government (al-Thani)",
            "x_tansiq_claim": "coordinated",
        },
    )
    b.add(
        "note",
        "claim-tripoli-derna-strikes",
        "TN",
        "all",
        "clear",
        _ts(16, 16),
        {
            "abstract": "Gouvernement de Tripoli : les frappes sur Derna, une agression",
            "content": (
                "Le gouvernement d'Omar al-Hassi à Tripoli, formé par le Congrès général national "
                "reconvoqué, a condamné les assassinats de Syrte mais a qualifié les frappes "
                "aériennes égyptiennes sur Derna d'agression contre la souveraineté libyenne."
            ),
            "object_refs": [DERNA_STRIKES_ID],
            "lang": "fr",
            "x_tansiq_source": "Tripoli government (al-Hassi, GNC)",
            "x_tansiq_claim": "aggression",
        },
    )
    grades: list[tuple[str, str, str, str, str, str]] = [
        (
            "EG",
            "tobruk",
            "agree",
            "en",
            "Consistent with Egypt's own account of the operation.",
            CLAIM_TOBRUK_ID,
        ),
        (
            "EG",
            "tripoli",
            "strongly-disagree",
            "ar",
            "الضربات جاءت رداً على جريمة سرت وبالتنسيق مع السلطات الليبية الشرعية.",
            CLAIM_TRIPOLI_ID,
        ),
        (
            "DZ",
            "tobruk",
            "neutral",
            "fr",
            "Affirmation non vérifiée de manière indépendante ; à confronter à d'autres sources.",
            CLAIM_TOBRUK_ID,
        ),
        (
            "DZ",
            "tripoli",
            "neutral",
            "fr",
            "Position d'une partie au conflit ; non vérifiée de manière indépendante.",
            CLAIM_TRIPOLI_ID,
        ),
        (
            "TN",
            "tobruk",
            "neutral",
            "ar",
            "ادعاء طرف في النزاع الليبي لم يتم التحقق منه بشكل مستقل.",
            CLAIM_TOBRUK_ID,
        ),
        (
            "TN",
            "tripoli",
            "neutral",
            "ar",
            "ادعاء طرف في النزاع الليبي لم يتم التحقق منه بشكل مستقل.",
            CLAIM_TRIPOLI_ID,
        ),
    ]
    for code, side, grade, lang, text, claim in grades:
        b.add(
            "opinion",
            f"{code.lower()}-on-{side}-claim",
            code,
            "all",
            "green",
            _ts(19, 12),
            {
                "opinion": grade,
                "explanation": text,
                "object_refs": [claim],
                "lang": lang,
            },
        )


def _un_positions(b: _Builder) -> None:
    """Each partner's public position at the UN Security Council session on Libya."""
    forum = "UN Security Council — session on Libya, 18 February 2015"
    positions: list[tuple[str, str, str, str, list[str]]] = [
        (
            "EG",
            "en",
            "Egypt at the UN Security Council: lift the arms embargo on the Libyan government",
            "Foreign minister Sameh Shoukry called for lifting the arms embargo on the "
            "internationally recognised government of Abdullah al-Thani, tied to the House of "
            "Representatives in Tobruk, and said the international community had failed to act "
            "after extremist forces took Tripoli.",
            [loc_id("tobruk"), loc_id("tripoli"), SIRTE_INCIDENT_ID, DERNA_STRIKES_ID],
        ),
        (
            "DZ",
            "fr",
            "L'Algérie au Conseil de sécurité : dialogue inclusif entre Libyens",
            "Le ministre des Affaires étrangères Ramtane Lamamra et le ministre délégué aux "
            "Affaires maghrébines et africaines Abdelkader Messahel ont condamné les "
            "assassinats, mais la solution réside dans le dialogue entre Libyens dans le cadre "
            "des efforts de l'ONU ; l'intervention étrangère est à l'origine de la situation "
            "actuelle ; l'unité territoriale de la Libye doit être préservée.",
            [SIRTE_INCIDENT_ID, loc_id("tripoli"), loc_id("tobruk")],
        ),
        (
            "TN",
            "ar",
            "تونس في مجلس الأمن: الحوار والحل السياسي",
            "أكد المندوب الدائم لتونس لدى الأمم المتحدة محمد خالد الخياري دعم تونس للحوار، وأن "
            "الحل السياسي هو السبيل الأمثل إلى وحدة الشعب الليبي.",
            [SIRTE_INCIDENT_ID, loc_id("tripoli"), loc_id("tobruk")],
        ),
    ]
    for code, lang, abstract, content, refs in positions:
        b.add(
            "note",
            f"{code.lower()}-unsc-position",
            code,
            "all",
            "clear",
            _ts(18, 18),
            {
                "abstract": abstract,
                "content": content,
                "object_refs": refs,
                "lang": lang,
                "x_tansiq_forum": forum,
                "x_tansiq_position_of": code,
            },
        )


def scenario_items() -> list[ScenarioItem]:
    """All scenario objects, TLP markings first, in a fixed order (fresh copies on each call)."""
    items = [ScenarioItem("", "all", level, tlp_object(level)) for level in TLP_IDS]
    b = _Builder()
    _reference_objects(b)
    _incidents(b)
    _shared_reports(b)
    _meeting_and_sources(b)
    _claims_and_opinions(b)
    _un_positions(b)
    items.extend(b.items)
    return items


def objects_for(originator: str) -> list[dict[str, Any]]:
    """The objects *originator* originates (what to load at that node); "" gives the markings."""
    return [item.obj for item in scenario_items() if item.originator == originator]


def audience(item: ScenarioItem) -> frozenset[str]:
    """The partner codes whose nodes may hold *item*."""
    if item.distribution == "all":
        return frozenset(PARTNER_CODES)
    if item.distribution == "own":
        return frozenset({item.originator})
    if isinstance(item.distribution, tuple):
        return frozenset(item.distribution)
    raise ValueError(f"bad distribution {item.distribution!r}")

"""The scenario objects in story order: facts from SCENARIO.md, wording our own."""

from __future__ import annotations

from tansiq.node import IDENTITY_CREATED
from tansiq.scenario.common import (
    _COUNTRY_EN,
    _PLACES,
    BORDER_REPORT_ID,
    CAIRO_MEETING_ID,
    CLAIM_TOBRUK_ID,
    CLAIM_TRIPOLI_ID,
    DERNA_REPORT_ID,
    DERNA_STRIKES_ID,
    PARTNER_CODES,
    PARTNERS,
    SIRTE_INCIDENT_ID,
    THREAT_ACTOR_ID,
    _Builder,
    _sid,
    _ts,
    identity_id,
    loc_id,
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

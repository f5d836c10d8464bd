"""Age, age group and sex of the patient, read from a caption or case history (MM-Skin-D).

Never guesses: a field stays ``None`` unless the text states it. The rules, with the lexicon in
``mmskin/data/curate/text/demographics.yaml``:

- **age** (years, float) only from an explicit age of a person: "45-year-old", "45 years old", "45 yo", "22yo M",
  "aged 45", "45 years of age", "a 3-month-old infant" (0.25), "6-week-old" (6/52). An age followed by a
  non-person noun ("a 10-year-old scar"), an onset age ("since the age of 5", "before age 45") and ranges
  ("20- to 40-year-old") are ignored. The first person age in the text is the patient's.
- **age_group**: from the age when there is one (infant < 1 ≤ child < 12 ≤ adolescent < 18 ≤ adult < 65 ≤ elderly,
  thresholds in the YAML); else from words: an adjective on a person ("elderly woman", "middle-aged man",
  "newborn girl"), a person noun ("boy" child, "man" adult, "infant", "teenager"), or a decade ("in her 40s"
  adult, "in his seventies" elderly; age stays None: a decade is not an age). Conflicting words give None.
- **sex**: the noun or abbreviation attached to the age ("45-year-old woman", "31 year old AAF", "22yo M"); else
  person nouns in the text ("man", "girl", "male"/"female" only as nouns: not "male pattern baldness",
  "female-to-male ratio"); else pronouns (he/his, she/her) when all agree, the text is about a patient and no
  other person (mother, doctor, husband …) is named. Both sexes named → None.
- **evidence**: the exact span of the text used (from the first cue to the last when they are at most 40
  characters apart, else the spans joined with " … ").

    >>> from mmskin.curate.demographics import extract_demographics
    >>> extract_demographics("A 3-month-old infant with a congenital naevus on his back.")
    Demographics(age=0.25, age_group='infant', sex='male', evidence='3-month-old infant with a congenital naevus on his')
    >>> extract_demographics("Male pattern baldness in 45% of patients.").sex is None
    True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .text import load_lexicon


@dataclass(frozen=True)
class Demographics:
    age: float | None
    age_group: str | None
    sex: str | None
    evidence: str | None


@dataclass(frozen=True)
class _Person:
    sex: str | None
    group: str | None
    strict: bool
    anywhere: bool


@dataclass(frozen=True)
class _Lex:
    groups: tuple[tuple[float, str], ...]
    numbers: dict[str, int]
    num: str
    unit_years: tuple[tuple[re.Pattern[str], str, float], ...]
    divisor: dict[str, int]
    persons: dict[str, _Person]
    person_re: re.Pattern[str]
    followers: re.Pattern[str]
    mods: str
    age_res: tuple[re.Pattern[str], ...]
    attached: re.Pattern[str]
    abbrev: tuple[tuple[re.Pattern[str], str], ...]
    pronouns: tuple[tuple[re.Pattern[str], str], ...]
    others: re.Pattern[str]
    non_person: re.Pattern[str]
    not_current: re.Pattern[str]
    decade: re.Pattern[str]
    decades: dict[str, str]
    group_adj: re.Pattern[str]
    group_adjs: dict[str, str | None]
    article_person: re.Pattern[str]
    attached_adj: re.Pattern[str]
    possessive: tuple[tuple[re.Pattern[str], str], ...]
    other_attached: re.Pattern[str]
    non_human: re.Pattern[str]
    not_exact: re.Pattern[str]


@lru_cache(maxsize=1)
def _lex() -> _Lex:
    y = load_lexicon("demographics.yaml")
    groups = tuple(sorted((float(g["from"]), g["group"]) for g in y["age_groups"]))
    numbers = {str(k).lower(): int(v) for k, v in y["numbers"].items()}
    words = sorted(numbers, key=len, reverse=True)
    tens = [w for w in words if numbers[w] >= 20 and numbers[w] % 10 == 0 and numbers[w] < 100]
    ones = [w for w in words if numbers[w] < 10]
    written = rf"(?:(?:{'|'.join(tens)})[\s-](?:{'|'.join(ones)})|{'|'.join(map(re.escape, words))})"
    num = rf"(?P<num>\d{{1,3}}(?:\.\d)?|{written})(?P<half>\s*(?:1/2|½|and\s+a\s+half))?"
    units = y["units"]
    unit_alt = "|".join(f"(?P<u_{k}>{v['pattern']})" for k, v in units.items())
    unit_years = tuple((re.compile(v["pattern"], re.I), k, float(v["years"])) for k, v in units.items())
    persons = {
        p["word"].lower(): _Person(
            p.get("sex"), p.get("group"), bool(p.get("strict")), p.get("anywhere", True)
        )
        for p in y["persons"]
    }
    person_alt = "|".join(sorted(persons, key=len, reverse=True))
    mods = y["person_modifiers"]
    # no number right before (ranges "20- to 40-year-old", "20 and 40 years old")
    not_range = r"(?<![\d./])(?<!\d-)(?<!\d\s-)(?<!\d\sto\s)(?<!\d\sand\s)"
    age_res = (
        # "45-year-old", "45 years old", "45 yr old", "3-month-old", "45 y/o", "45 yo", "45yo", "45 y.o."
        re.compile(
            rf"{not_range}\b{num}\s*-?\s*(?:(?:{unit_alt})\s*-?\s*old\b|(?P<yo>y\s*/\s*o\b|y\.\s*o\.|yo\b|yrs?\s*/\s*o\b))",
            re.I,
        ),
        # "55 year man", "16 month asymptomatic male", "5 year female": only counts with a person noun after it
        re.compile(rf"{not_range}\b{num}\s*-?\s*(?:{unit_alt})\b(?P<needs_person>)(?!\s*-?\s*old)", re.I),
        # "45 years of age", "3 months of age"
        re.compile(rf"{not_range}\b{num}\s*-?\s*(?:{unit_alt})\.?\s+of\s+age\b", re.I),
        # "a man of 52", "the girl of 3", "a boy of 6 years" (British textbook style)
        re.compile(
            rf"\b(?P<pnoun>{person_alt})\s+of\s+{num}(?:\s*-?\s*(?:{unit_alt})\b\.?)?"
            r"(?!\s*(?:%|per\b|mm|cm|kg|mg|ml|g\b|patients|cases|\d))",
            re.I,
        ),
        # "aged 45", "age 45", "age: 45 years", "aged 3 months"
        re.compile(
            rf"\b(?P<kw>aged?)\s*[:=]?\s*{num}(?!\s*(?:-|to|and|–)\s*\d)(?!\s*{y['not_age_units']}\b)"
            rf"(?:\s*-?\s*(?:{unit_alt})\b\.?)?(?!\s*%)",
            re.I,
        ),
    )
    follow = y["person_followers"]
    attached = re.compile(
        rf"^\s*[,-]?\s*(?:(?:{mods})[\s,-]+){{0,5}}(?P<noun>{person_alt})\b(?!-)(?P<rest>\s*\w*)", re.I
    )
    abbrev = tuple(
        (re.compile(rf"^\s*,?\s*(?:{pat})(?![\w-])"), sex) for sex, pat in y["sex_abbreviations"].items()
    )
    pronouns = tuple((re.compile(rf"\b(?:{pat})\b", re.I), sex) for sex, pat in y["pronouns"].items())
    dec = y["decades"]
    decade = re.compile(
        r"\bin\s+(?P<pron>his|her)\s+(?:(?:early|mid|mid-|late)[\s-]*)?"
        rf"(?P<dec>(?:{'|'.join(dec)})|(?:1\d|[2-9]0)['’]?s)\b",
        re.I,
    )
    gadj = {str(k).lower(): v for k, v in y["group_adjectives"].items()}
    group_adj = re.compile(
        rf"\b(?P<adj>{'|'.join(map(re.escape, sorted(gadj, key=len, reverse=True)))})"
        rf"[\s,]+(?:(?:{mods})[\s,-]+){{0,3}}(?P<noun>{person_alt})\b(?!-)",
        re.I,
    )
    article_person = re.compile(rf"\b(?P<noun>{person_alt})\b(?!-)", re.I)
    targets = y["possessive_targets"]
    possessive = tuple(
        (re.compile(rf"\b(?:{pat})\s+(?=(?:[\w-]+\s+){{0,2}}(?:{targets})\b)", re.I), sex)
        for sex, pat in {"male": "his", "female": "her"}.items()
    )
    other_attached = re.compile(rf"^\s*[,-]?\s*(?:(?:{mods})[\s,-]+){{0,5}}{y['relatives']}\b", re.I)
    return _Lex(
        groups=groups,
        numbers=numbers,
        num=num,
        unit_years=unit_years,
        divisor={str(k): int(v) for k, v in y["units_divisor"].items()},
        persons=persons,
        person_re=re.compile(rf"\b(?:{person_alt})\b", re.I),
        followers=re.compile(rf"^\s*(?:{follow})\b|^\s*(?:[.,;:!?)]|$)", re.I),
        mods=mods,
        age_res=age_res,
        attached=attached,
        abbrev=abbrev,
        pronouns=pronouns,
        others=re.compile(rf"\b{y['other_people']}\b", re.I),
        non_person=re.compile(rf"^\s*-?\s*(?:\w+[\s-]+){{0,2}}?{y['non_person_nouns']}\b", re.I),
        not_current=re.compile(y["not_current_age_before"], re.I),
        decade=decade,
        decades={k.lower(): v for k, v in dec.items()},
        group_adj=group_adj,
        group_adjs=gadj,
        article_person=article_person,
        attached_adj=re.compile(rf"^\s*{y['attached_adjective_nouns']}", re.I),
        possessive=possessive,
        other_attached=other_attached,
        non_human=re.compile(rf"\b{y['non_human']}\b", re.I),
        not_exact=re.compile(y["not_exact_before"], re.I),
    )


def age_group_of(age: float) -> str:
    """The age group of an age in years (thresholds from demographics.yaml)."""
    lex = _lex()
    group = lex.groups[0][1]
    for lo, name in lex.groups:
        if age >= lo:
            group = name
    return group


def _number(s: str, lex: _Lex) -> float | None:
    s = s.strip().lower()
    try:
        return float(s)
    except ValueError:
        pass
    s = re.sub(r"[\s-]+", " ", s)
    if s in lex.numbers:
        return float(lex.numbers[s])
    parts = s.split(" ")
    if len(parts) == 2 and parts[0] in lex.numbers and parts[1] in lex.numbers:
        return float(lex.numbers[parts[0]] + lex.numbers[parts[1]])
    return None


def _years(value: float, m: re.Match[str], lex: _Lex) -> float:
    if m.groupdict().get("half"):
        value += 0.5
    unit = next((k[2:] for k, v in m.groupdict().items() if k.startswith("u_") and v), "year")
    if unit in lex.divisor:
        return round(value / lex.divisor[unit], 4)
    return value


@dataclass
class _Hit:
    start: int
    end: int
    sex: str | None = None
    group: str | None = None

    def span(self, text: str) -> str:
        return text[self.start : self.end]


def _strict_ok(word: str, rest: str, lex: _Lex) -> bool:
    p = lex.persons.get(word.lower())
    return p is None or not p.strict or bool(lex.followers.match(rest))


def _attached_person(text: str, end: int, lex: _Lex) -> _Hit | None:
    """A person noun (or sex abbreviation) right after an age expression ending at ``end``."""
    tail = text[end : end + 120]
    for pat, sex in lex.abbrev:
        m = pat.match(tail)
        if m:
            return _Hit(end, end + m.end(), sex=sex)
    m = lex.attached.match(tail)
    if m is None:
        return None
    after = text[end + m.end("noun") : end + m.end("noun") + 40]
    p = lex.persons[m.group("noun").lower()]
    # right after an age a strict word is a noun ("27 year old female involved in …") unless an adjective use
    if p.sex and p.group is None:
        ok = not lex.attached_adj.match(after)
    else:
        ok = _strict_ok(m.group("noun"), after, lex)
    return _Hit(end, end + m.end("noun"), sex=p.sex, group=p.group) if ok else None


def _ages(text: str, lex: _Lex) -> list[tuple[_Hit, float]]:
    found: list[tuple[_Hit, float]] = []
    animals = bool(lex.non_human.search(text))
    for rx in lex.age_res:
        for m in rx.finditer(text):
            value = _number(m.group("num"), lex)
            if value is None:
                continue
            value = _years(value, m, lex)
            if not 0 < value <= 120:
                continue
            if lex.not_current.search(text[max(0, m.start() - 40) : m.start()]):
                continue
            if lex.not_exact.search(text[max(0, m.start() - 20) : m.start()]):
                continue
            if m.groupdict().get("kw") and lex.not_current.search(text[max(0, m.start() - 40) : m.end("kw")]):
                continue
            after = text[m.end() : m.end() + 60]
            hit = _Hit(m.start(), m.end())
            if lex.other_attached.match(after):
                continue  # "3 year old asymptomatic sister": someone else's age
            if m.groupdict().get("pnoun"):
                p = lex.persons[m.group("pnoun").lower()]
                if p.anywhere and (p.sex or p.group):
                    found.append((_Hit(m.start(), m.end(), sex=p.sex, group=p.group), value))
                continue
            person = _attached_person(text, m.end(), lex)
            if person is None and (m.groupdict().get("needs_person") is not None or animals or value < 1):
                # an age without a person noun: only whole years about a human ("a 34 year old alcoholic");
                # "6 days old" alone is usually the age of a lesion, "8-week-old … mice" an animal's
                continue
            if person is None and lex.non_person.match(after):
                continue  # "a 10-year-old scar", "a 3-year-old lesion"
            if person is not None:
                hit = _Hit(m.start(), person.end, sex=person.sex, group=person.group)
            else:
                # "a man aged 45": the person is named just before
                before = text[max(0, m.start() - 40) : m.start()]
                pm = list(lex.article_person.finditer(before))
                if pm and m.groupdict().get("kw"):
                    last = pm[-1]
                    p = lex.persons[last.group("noun").lower()]
                    if before[last.end("noun") :].strip(" ,") == "" or before[last.end() :].strip(" ,") == "":
                        hit = _Hit(m.start() - len(before) + last.start(), m.end(), sex=p.sex, group=p.group)
            found.append((hit, value))
    found.sort(key=lambda x: x[0].start)
    return found


def _free_persons(text: str, lex: _Lex) -> list[_Hit]:
    hits = []
    animals = bool(lex.non_human.search(text))
    for m in lex.article_person.finditer(text):
        word = m.group("noun").lower()
        p = lex.persons[word]
        if not p.anywhere or (animals and p.strict):
            continue
        if not _strict_ok(word, text[m.end("noun") : m.end("noun") + 40], lex):
            continue
        hits.append(_Hit(m.start("noun"), m.end("noun"), sex=p.sex, group=p.group))
    return hits


def _group_adjectives(text: str, lex: _Lex) -> list[_Hit]:
    hits = []
    for m in lex.group_adj.finditer(text):
        if not _strict_ok(m.group("noun"), text[m.end("noun") : m.end("noun") + 40], lex):
            continue
        group = lex.group_adjs.get(m.group("adj").lower())
        if group:
            hits.append(_Hit(m.start(), m.end(), group=group))
    return hits


def _pronoun_sex(text: str, lex: _Lex, about_patient: bool, patient: list[_Hit]) -> _Hit | None:
    # another person named (a mother, a doctor) makes pronouns ambiguous, unless the patient owns them ("her
    # mother", "his wife": the possessive is the patient); the patient's own noun does not count
    for m in lex.others.finditer(text):
        if any(h.start <= m.start() < h.end for h in patient):
            continue
        if not re.search(
            r"\b(?:his|her|their|the\s+patient['’]s|patient['’]s)\s+(?:[\w-]+\s+){0,3}$",
            text[: m.start()],
            re.I,
        ):
            return None
    hits: list[_Hit] = []
    for pat, sex in lex.pronouns:
        for m in pat.finditer(text):
            w = m.group(0)
            if len(w) > 1 and w.isupper():
                continue  # "HE" is haematoxylin-eosin, not a pronoun
            hits.append(_Hit(m.start(), m.end(), sex=sex))
    if not hits or len({h.sex for h in hits}) != 1:
        return None
    first = min(hits, key=lambda h: h.start)
    # a text about a patient, or one that opens with the pronoun as subject ("He presented with …")
    subject = re.match(r"^\s*(?:he|she)\b", text[first.start :], re.I) and (
        first.start == 0 or re.search(r"[.!?]\s*$", text[: first.start])
    )
    if not (about_patient or subject):
        # "plaques on her elbows": a possessive before a body part or disease is about the person shown
        poss = [m for pat, _ in lex.possessive for m in pat.finditer(text)]
        if not poss:
            return None
        first = min(hits, key=lambda h: h.start)
    return first


def _evidence(text: str, hits: list[_Hit]) -> str | None:
    hits = sorted({(h.start, h.end) for h in hits})
    if not hits:
        return None
    spans: list[list[int]] = []
    for s, e in hits:
        if spans and s - spans[-1][1] <= 40:
            spans[-1][1] = max(spans[-1][1], e)
        else:
            spans.append([s, e])
    return " … ".join(text[s:e].strip() for s, e in spans)


def extract_demographics(text: str) -> Demographics:
    """Age (years), age group, sex and the evidence span stated in ``text`` (see module docstring)."""
    if not text or not text.strip():
        return Demographics(None, None, None, None)
    lex = _lex()
    text = re.sub(r"[‐‑‒–]", "-", text)  # one hyphen: "45‐year‐old" as typeset
    used: list[_Hit] = []
    age: float | None = None
    group: str | None = None
    sex: str | None = None

    ages = _ages(text, lex)
    if ages:
        hit, age = ages[0]
        used.append(hit)
        group = age_group_of(age)
        sex = hit.sex

    free = _free_persons(text, lex)
    adjs = _group_adjectives(text, lex)
    decade = lex.decade.search(text)
    if group is None:
        # most specific first: an adjective on a person ("elderly woman"), a decade ("in his seventies"), then
        # the person noun itself ("boy", "man")
        adj_groups = {h.group for h in adjs}
        decade_group = None
        if decade:
            d = decade.group("dec").lower().rstrip("s").rstrip("'’")
            decade_group = lex.decades.get(decade.group("dec").lower())
            if decade_group is None and d.isdigit():
                decade_group = "adolescent" if int(d) < 20 else age_group_of(float(d))
        noun_groups = {h.group for h in free if h.group}
        if len(adj_groups) == 1:
            group = adj_groups.pop()
            used.extend(adjs[:1])
        elif decade_group:
            group = decade_group
            used.append(_Hit(decade.start(), decade.end()))
        elif len(noun_groups) == 1:
            group = noun_groups.pop()
            used.append(next(h for h in free if h.group))

    if sex is None:
        sexes = {h.sex for h in free if h.sex}
        if len(sexes) == 1:
            sex = sexes.pop()
            used.append(next(h for h in free if h.sex))
        elif not sexes:
            if decade and decade.group("pron").lower() in ("his", "her"):
                sex = "male" if decade.group("pron").lower() == "his" else "female"
                used.append(_Hit(decade.start(), decade.end()))
            else:
                about = bool(ages or free or re.search(r"\b(?:patient|pt)\b", text, re.I))
                pron = _pronoun_sex(text, lex, about, used)
                if pron is not None:
                    sex = pron.sex
                    used.append(pron)
    if age is None and group is None and sex is None:
        return Demographics(None, None, None, None)
    return Demographics(age, group, sex, _evidence(text, used))

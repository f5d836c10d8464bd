"""Offline WordNet for METEOR: an NLTK corpus folder built from Debian's WordNet 3.0, and a light reader.

NLTK's METEOR needs ``corpora/wordnet``; nltk's downloader needs the internet. Debian's ``wordnet-base`` and
``wordnet-sense-index`` carry the same WordNet 3.0 files (same synset offsets) in ``/usr/share/wordnet``, minus
the ``lexnames`` file nltk insists on. :func:`ensure_nltk_wordnet` copies them into a user cache folder, writes
``lexnames``, and points nltk at it:

    >>> from mmskin.evaluate.wordnet import ensure_nltk_wordnet, WordNetLite
    >>> ensure_nltk_wordnet()                     # ~/.cache/mmskin/nltk_data (or $MMSKIN_CACHE/nltk_data)
    >>> WordNetLite.load().synonyms("lesions")    # lemma names of every synset of every morphy base form

:class:`WordNetLite` answers the one question METEOR asks (which lemma names share a synset with this word) by
the same rules as ``nltk.corpus.wordnet.synsets`` (morphy with the exception lists, all four parts of speech),
without nltk's 6-7 s start-up (it reads ``index.sense`` at load time): the equality tests check it against nltk.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from ..records import umask

DEBIAN_WORDNET = Path("/usr/share/wordnet")
APT_HINT = "apt-get install wordnet-base wordnet-sense-index"

# the files nltk's WordNetCorpusReader opens (lexnames is written, not copied)
_COPIED = (
    "adj.exc",
    "adv.exc",
    "noun.exc",
    "verb.exc",
    "cntlist.rev",
    "data.adj",
    "data.adv",
    "data.noun",
    "data.verb",
    "index.adj",
    "index.adv",
    "index.noun",
    "index.verb",
    "index.sense",
)

# WordNet 3.0 lexicographer files (wndb(5WN) / lexnames(5WN)); Debian omits the file. The pos number follows
# from the prefix: noun 1, verb 2, adj 3, adv 4.
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
    "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
    "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()
_POS_NUMBER = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


class WordNetMissing(RuntimeError):
    """WordNet files are not installed; the message is one line naming the apt packages."""


def cache_dir() -> Path:
    """mmskin's user cache folder: ``$MMSKIN_CACHE`` or ``$XDG_CACHE_HOME/mmskin`` or ``~/.cache/mmskin``."""
    if env := os.environ.get("MMSKIN_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mmskin"


def lexnames_text() -> str:
    return "".join(f"{i:02d}\t{name}\t{_POS_NUMBER[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES))


def build_nltk_wordnet(nltk_data: Path, source: Path = DEBIAN_WORDNET) -> Path:
    """Create ``nltk_data/corpora/wordnet`` from ``source`` (atomically: a temp folder renamed into place).

    Returns the corpus folder. Raises :class:`WordNetMissing` when ``source`` lacks a needed file.
    """
    target = Path(nltk_data) / "corpora" / "wordnet"
    if (target / "lexnames").is_file() and all((target / f).is_file() for f in _COPIED):
        return target
    missing = [f for f in _COPIED if not (Path(source) / f).is_file()]
    if missing:
        raise WordNetMissing(
            f"WordNet not found: {source} lacks {', '.join(missing[:3])}"
            f"{' …' if len(missing) > 3 else ''} (METEOR needs it offline: {APT_HINT})"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".wordnet."))
    os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes 0700: other users could not read the corpus
    try:
        for f in _COPIED:
            shutil.copyfile(Path(source) / f, tmp / f)
        (tmp / "lexnames").write_text(lexnames_text(), encoding="utf-8")
        try:
            os.replace(tmp, target)  # atomic when target does not exist yet
        except OSError:
            if not (target / "lexnames").is_file():  # not a concurrent builder that won the race
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def ensure_nltk_wordnet(nltk_data: Path | None = None) -> Path:
    """Make ``nltk.corpus.wordnet`` work offline; returns the corpus folder.

    Uses an existing nltk WordNet when nltk already finds one; otherwise builds one from Debian's files under
    :func:`cache_dir` and puts that folder first on ``nltk.data.path``.
    """
    import nltk

    if nltk_data is None:
        try:
            found = Path(str(nltk.data.find("corpora/wordnet")))
            if (found / "index.noun").is_file() and (found / "lexnames").is_file():
                return found
        except LookupError:
            pass
        # none, or one inside a zip (WordNetLite reads plain files): build the folder from Debian's files
        nltk_data = cache_dir() / "nltk_data"
    target = build_nltk_wordnet(Path(nltk_data))
    if str(nltk_data) not in nltk.data.path:
        nltk.data.path.insert(0, str(nltk_data))
    return target


def corpus_dir() -> Path:
    """The WordNet folder METEOR reads: nltk's own if it has one, else the one built from Debian's files."""
    return ensure_nltk_wordnet()


# morphy's detachment rules, as nltk.corpus.reader.wordnet.WordNetCorpusReader.MORPHOLOGICAL_SUBSTITUTIONS
_SUBSTITUTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "n": (
        ("s", ""),
        ("ses", "s"),
        ("ves", "f"),
        ("xes", "x"),
        ("zes", "z"),
        ("ches", "ch"),
        ("shes", "sh"),
        ("men", "man"),
        ("ies", "y"),
    ),
    "v": (
        ("s", ""),
        ("ies", "y"),
        ("es", "e"),
        ("es", ""),
        ("ed", "e"),
        ("ed", ""),
        ("ing", "e"),
        ("ing", ""),
    ),
    "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "r": (),
}
_FILE = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
_MARKER = re.compile(r"\([^()]*\)$")


class WordNetLite:
    """The lemma-name sets METEOR's synonym stage needs, read straight from the WordNet database files."""

    _instances: dict[str, WordNetLite] = {}

    def __init__(self, root: Path) -> None:
        import numpy as np

        self.root = Path(root)
        # lemma -> byte offset of its index line, per pos; a line is parsed only when its lemma is asked for
        self._index_text: dict[str, bytes] = {}
        self._line_at: dict[str, dict[str, int]] = {}
        for pos, name in _FILE.items():
            data = (self.root / f"index.{name}").read_bytes()
            arr = np.frombuffer(data, dtype=np.uint8)
            ends = np.flatnonzero(arr == 10)
            starts = np.concatenate([[0], ends[:-1] + 1]) if len(ends) else np.zeros(0, np.int64)
            starts = starts[arr[starts] != 32]  # the licence header lines start with a space
            lemmas = re.findall(rb"^([^ \n]+) ", data, re.M)
            if len(lemmas) != len(starts):
                raise WordNetMissing(f"{self.root / f'index.{name}'}: unreadable WordNet index ({APT_HINT})")
            self._index_text[pos] = data
            self._line_at[pos] = dict(zip([b.decode("utf-8") for b in lemmas], starts.tolist()))
        self._offsets: dict[tuple[str, str], list[int]] = {}
        self.exceptions: dict[str, dict[str, list[str]]] = {}
        for pos, name in _FILE.items():
            exc: dict[str, list[str]] = {}
            with open(self.root / f"{name}.exc", encoding="utf-8") as f:
                for line in f:
                    terms = line.split()
                    if terms:
                        exc[terms[0]] = terms[1:]
            self.exceptions[pos] = exc
        self._data = {pos: open(self.root / f"data.{name}", "rb") for pos, name in _FILE.items()}  # noqa: SIM115
        self._synset_names: dict[tuple[str, int], tuple[str, ...]] = {}
        self._synonyms: dict[str, frozenset[str]] = {}

    def offsets(self, lemma: str, pos: str) -> list[int]:
        """Synset offsets of ``lemma`` in ``pos`` (nltk's ``_lemma_pos_offset_map[lemma][pos]``), [] if none."""
        key = (lemma, pos)
        hit = self._offsets.get(key)
        if hit is None:
            start = self._line_at[pos].get(lemma)
            if start is None:
                hit = []
            else:
                data = self._index_text[pos]
                parts = data[start : data.index(b"\n", start)].split()
                n_synsets, n_pointers = int(parts[2]), int(parts[3])
                first = 4 + n_pointers + 2
                hit = [int(x) for x in parts[first : first + n_synsets]]
            self._offsets[key] = hit
        return hit

    @classmethod
    def load(cls, root: Path | None = None) -> WordNetLite:
        """One shared reader per folder (default: :func:`corpus_dir`)."""
        root = Path(root) if root is not None else corpus_dir()
        key = str(root.resolve())
        if key not in cls._instances:
            cls._instances[key] = cls(root)
        return cls._instances[key]

    def morphy(self, form: str, pos: str) -> list[str]:
        """Base forms of ``form`` in ``pos`` that WordNet has (nltk's ``_morphy`` with exceptions)."""
        exc = self.exceptions[pos]
        if form in exc:
            forms = exc[form]
        else:
            forms = [form[: -len(old)] + new for old, new in _SUBSTITUTIONS[pos] if form.endswith(old)]
        out: list[str] = []
        for f in [form, *forms]:
            if f in self._line_at[pos] and f not in out:
                out.append(f)
        return out

    def _lemma_names(self, pos: str, offset: int) -> tuple[str, ...]:
        key = (pos, offset)
        names = self._synset_names.get(key)
        if names is None:
            fh = self._data[pos]
            fh.seek(offset)
            cols = fh.readline().decode("utf-8").split("|", 1)[0].split()
            n = int(cols[3], 16)
            names = tuple(_MARKER.sub("", cols[4 + 2 * i]) for i in range(n))
            self._synset_names[key] = names
        return names

    def synonyms(self, word: str) -> frozenset[str]:
        """Lemma names (without ``_``) of every synset of ``word``, plus ``word`` itself (METEOR's set)."""
        hit = self._synonyms.get(word)
        if hit is not None:
            return hit
        lemma = word.lower()
        names = {word}
        for pos in ("n", "v", "a", "r"):
            for form in self.morphy(lemma, pos):
                for offset in self.offsets(form, pos):
                    names.update(n for n in self._lemma_names(pos, offset) if "_" not in n)
        out = frozenset(names)
        self._synonyms[word] = out
        return out

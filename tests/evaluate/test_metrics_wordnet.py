"""Offline WordNet: the nltk corpus folder built from Debian's files, and WordNetLite equal to nltk's synsets."""

from __future__ import annotations

from itertools import chain
from pathlib import Path

import pytest

from mmskin.evaluate import wordnet as wnmod

DEBIAN = Path("/usr/share/wordnet")
WORDS = [
    "lesions",
    "dogs",
    "ran",
    "better",
    "geese",
    "axes",
    "was",
    "biopsied",
    "scaly",
    "red",
    "quickly",
    "papules",
    "itching",
    "worse",
    "abaci",
    "melanoma",
    "Lesion",
    "",
    "(a)",
    "naïve",
    "well-defined",
    "x",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    if not (DEBIAN / "index.noun").is_file():
        pytest.skip("Debian WordNet absent: apt-get install wordnet-base wordnet-sense-index")
    # ensure_nltk_wordnet also puts the folder on nltk.data.path (nltk refuses corpus paths outside it)
    return wnmod.ensure_nltk_wordnet(tmp_path_factory.mktemp("nltk_data"))


def test_build_writes_lexnames_and_copies(corpus):
    lines = (corpus / "lexnames").read_text().splitlines()
    assert len(lines) == 45
    assert lines[3] == "03\tnoun.Tops\t1" and lines[44] == "44\tadj.ppl\t3"
    assert (corpus / "index.sense").stat().st_size == (DEBIAN / "index.sense").stat().st_size
    assert not list(corpus.parent.glob(".wordnet.*"))  # no temp folder left behind
    assert wnmod.build_nltk_wordnet(corpus.parent.parent) == corpus  # second call: already there


def test_missing_source_gives_one_line_naming_apt_packages(tmp_path):
    with pytest.raises(wnmod.WordNetMissing) as e:
        wnmod.build_nltk_wordnet(tmp_path / "nltk", source=tmp_path / "nowhere")
    msg = str(e.value)
    assert "\n" not in msg and "wordnet-base" in msg and "wordnet-sense-index" in msg


def test_nltk_reads_the_built_corpus_and_lite_agrees(corpus):
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    wn = WordNetCorpusReader(str(corpus), None)
    assert wn.synset("dog.n.01").offset() == 2084071
    lite = wnmod.WordNetLite(corpus)
    for w in WORDS:
        w = w.lower()
        want = set(
            chain.from_iterable(
                (lem.name() for lem in s.lemmas() if "_" not in lem.name()) for s in wn.synsets(w)
            )
        ) | {w}
        assert lite.synonyms(w) == want, w

"""Cleaning and splitting, checked on the real seed articles and on small cases."""

from __future__ import annotations

import re
import unicodedata

import pytest

from newsevents import paths
from newsevents.corpus import (
    _QUOTES,
    CorpusError,
    _is_terminal,
    clean_text,
    iter_input_files,
    normalize,
    read_file,
    sentence_id,
    split_article,
    split_block,
)

# Inputs for checking the fast paths against their plain definitions: Unicode spaces and
# separators, backticks, compatibility characters, closing quotes and brackets.
TRICKY = ["Talks ended.", "Talks ended", "“Talks ended.”", "(Talks ended!)’]", "ended…", "…",
          "", ".", "'", "ended .\u2009", "say `no` .", "A\u00a0\u2003b\x1c c\x85 d `quoted` ﬁnal ①",
          "\tTABS\tand\r\nbreaks  ", "Ωmega – “dash” — end?!", "İstanbul’s ＦＵＬＬＷＩＤＴＨ."]


def sentences(stem: str) -> list[str]:
    path = next(paths.RAW.glob(f"{stem}_*.txt"))
    return [s.text for s in split_article(path.read_text(encoding="utf-8"), path.stem)]


def test_site_furniture_is_removed():
    text = "\n".join(sentences("000") + sentences("001") + sentences("002") + sentences("003"))
    for furniture in ("Support Us", "Support UP", "14:41", "Source: European Pravda",
                      "byOlena", "06/07/2024", "minute read", "Leave a Comment", "Huyen Le",
                      "Home > National", "Log in to", "help-image", "lock icon", "Related Article",
                      "Standards Board", "Photo:", "[MINISTRY", "Yonhap\n"):
        assert furniture not in text, furniture


def test_headline_is_the_first_sentence_and_bullets_are_stripped():
    got = sentences("000")
    assert got[0] == ("NATO seeks to build practical cooperation with South Korea in issues "
                      "regarding Ukraine")
    assert any(s.startswith("The South Korean government recently stated that it will review")
               for s in got)
    assert not any(s.startswith("•") for s in got)


def test_dateline_email_and_end_mark_are_removed():
    got = sentences("004")
    assert got[0].startswith("The North Atlantic Treaty Organization (NATO) will discuss ways")
    assert got[-1].endswith("said in a briefing Friday.")
    assert not any("@" in s or "email" in s or "(END)" in s for s in got)


def test_wrapped_line_is_rejoined_and_quote_keeps_its_attribution():
    got = sentences("004")
    assert ('"South Korea is a highly valued partner," Stoltenberg said in a pre-summit news '
            "conference at NATO headquarters in Brussels.") in got
    assert ("China is propping up Russia's war economy, and providing microelectronics and other "
            "dual-use goods for Russia's war,\" he said.") in got


def test_no_split_after_mr_and_fragments_rejoin():
    got = sentences("002")
    assert ("However, Mr. Stoltenberg noted that countries such as Germany, Sweden and Norway used "
            "to apply similar policies to South Korea, but have since changed.") in got
    assert any(s.endswith("the June NATO summit. last year.") for s in got)
    assert not any(s in ("last year.", "Asia-Pacific”.") for s in got)


def test_captions_are_kept_without_credit_and_exact_duplicates_dropped():
    got = sentences("003")
    caption = ("Foreign Minister Cho Tae-yul, left, poses with North Atlantic Treaty Organization "
               "Secretary General Mark Rutte during their meeting in Brussels on April 2.")
    assert got.count(caption) == 1
    assert ("Ukrainian President Volodymyr Zelenskyy and South Korean President Yoon Suk-yeol at "
            "their meeting in Kyiv, 2023.") in sentences("001")


def test_only_capitalised_datelines_are_stripped():
    got = [s.text for s in split_article("The talks were held in Seoul - officials were pleased.")]
    assert got == ["The talks were held in Seoul - officials were pleased."]
    got = [s.text for s in split_article("NAIROBI, March 3 (Reuters) - Kenya pledged aid.")]
    assert got == ["Kenya pledged aid."]


def test_us_and_initials_do_not_split():
    got = [s.text for s in split_article("The U.S. envoy met S. Korea's minister on Monday. "
                                         "They agreed to meet again.")]
    assert got == ["The U.S. envoy met S. Korea's minister on Monday.",
                   "They agreed to meet again."]


def test_attribution_fragment_rejoins_its_quote():
    got = split_block('"We will not accept this," the minister said. Talks resume on Monday.')
    assert got == ['"We will not accept this," the minister said.', "Talks resume on Monday."]


def test_sentence_ids_are_stable_under_cosmetic_changes():
    a = sentence_id("Iran and North Korea are fuelling Russia’s war with drones and shells.")
    cosmetic = "  iran and north korea are fuelling Russia's war  with drones and shells"
    assert a == sentence_id(cosmetic)
    assert a != sentence_id("Iran and North Korea are fuelling Russia's war with drones.")
    assert split_article("A short one. Another sentence here.")[1].id == sentence_id(
        "Another sentence here.")


def test_fast_paths_match_their_plain_definitions():
    def slow_normalize(text):
        text = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
        return re.sub(r"\s+", " ", text).strip().rstrip(" .!?;:,")

    terminal = re.compile(r"[.!?…][\"'”’)\]]*$")
    for text in TRICKY:
        assert normalize(text) == slow_normalize(text), text
        assert _is_terminal(text) == bool(terminal.search(text)), text


def test_clean_text_keeps_ordinary_short_paragraphs_with_punctuation():
    assert clean_text("Headline here\n\nTalks failed.\n") == ["Headline here", "Talks failed."]


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("empty.txt", b"  \n", "empty file"),
    ("binary.txt", b"\x00\x01\x02abc", "binary file"),
    ("latin1.txt", "café au lait".encode("latin-1"), "not UTF-8"),
    ("table.csv", b"id,body\n1,hello\n", "no 'text' column"),
    ("notes.pdf", b"%PDF-1.4", "unsupported file type"),
])
def test_bad_files_get_one_line_errors_naming_the_file(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CorpusError) as err:
        list(read_file(path))
    message = str(err.value)
    assert str(path) in message and problem in message and "\n" not in message


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="cannot read"):
        list(read_file(tmp_path / "nope.txt"))


def test_jsonl_bad_line_is_recorded_and_reading_goes_on(tmp_path):
    path = tmp_path / "batch.jsonl"
    path.write_text('{"id": "a", "text": "One."}\n{broken\n{"text": "Two."}\n{"id": "c"}\n',
                    encoding="utf-8")
    errors: list[str] = []
    articles = list(read_file(path, errors=errors))
    assert [a.id for a in articles] == ["a", "batch:3"]
    assert [e.split(": ")[0] for e in errors] == [f"{path}:2", f"{path}:4"]
    with pytest.raises(CorpusError, match="malformed JSON"):
        list(read_file(path))


def test_csv_and_directories(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.csv").write_text('id,text\nx1,"Hello, world."\n', encoding="utf-8")
    (tmp_path / "b.txt").write_text("Body.", encoding="utf-8")
    (tmp_path / "ignored.bin").write_bytes(b"\x00")
    files = list(iter_input_files([tmp_path]))
    assert [f.name for f in files] == ["b.txt", "a.csv"]
    assert [a.id for a in read_file(files[1])] == ["x1"]


def test_html_main_text_is_extracted(tmp_path):
    body = " ".join(["Japan pledged 50 million dollars in aid to Kenya on Monday."] * 3)
    page = (f"<html><head><title>Japan pledges aid</title></head><body><nav>Home | World</nav>"
            f"<article><p>{body}</p><p>The money will fund clinics.</p></article>"
            f"<footer>Subscribe to our newsletter</footer></body></html>")
    path = tmp_path / "page.html"
    path.write_text(page, encoding="utf-8")
    [article] = list(read_file(path))
    texts = [s.text for s in split_article(article.text)]
    assert "The money will fund clinics." in texts
    assert not any("Subscribe" in t or "Home |" in t for t in texts)


def test_read_bytes_reads_contents_as_read_file_reads_the_file(tmp_path):
    from newsevents.corpus import read_bytes, read_file

    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"id": "a", "text": "One."}\n{oops\n{"text": "Two."}\n', encoding="utf-8")
    from_file, from_bytes = [], []
    expected = list(read_file(feed, from_file))
    assert list(read_bytes(feed.read_bytes(), str(feed), from_bytes)) == expected
    assert from_bytes == from_file == [f"{feed}:2: malformed JSON (Expecting property name "
                                       "enclosed in double quotes)"]
    assert [a.id for a in expected] == ["a", "feed:3"]
    assert [(a.id, a.source) for a in read_bytes(b"Text.", "hdfs://nn/news/kenya.txt")] == [
        ("kenya", "hdfs://nn/news/kenya.txt")]
    with pytest.raises(CorpusError, match=r"^hdfs://nn/x\.pdf: unsupported file type"):
        list(read_bytes(b"%PDF", "hdfs://nn/x.pdf"))

"""Loaders read the ORIGINAL files in the shared datasets folder (skipped without it)."""

from __future__ import annotations

import pytest

from lottery.bench.suites import SUITES, data_root, load_suite, niah_haystack
from lottery.errors import ConfigurationError

ROOT = data_root()
needs_data = pytest.mark.skipif(
    not (ROOT / "README.md").is_file(),
    reason=f"benchmark data not found at {ROOT}: set LOTTERY_DATA to the datasets folder",
)


@needs_data
def test_gsm8k_gold_is_the_number_after_the_hashes():
    suite = load_suite("gsm8k", limit=3)
    first = suite.items[0]
    assert first.question.startswith("Janet")
    assert first.gold == 18.0 and first.kind == "numeric"
    assert first.score("She makes $18 a day.").correct
    assert len(suite.items) == 3 and not suite.documents


@needs_data
def test_skip_gives_held_out_items_disjoint_from_the_first_rows():
    first = load_suite("gsm8k", limit=100).items
    held_out = load_suite("gsm8k", skip=100, limit=100).items
    assert len(held_out) == 100 and held_out[0].id == "gsm8k-100"
    assert not {i.id for i in first} & {i.id for i in held_out}
    with pytest.raises(ConfigurationError, match="leaves no item"):
        load_suite("gsm8k", skip=10_000)
    with pytest.raises(ConfigurationError, match="--skip"):
        load_suite("gsm8k", skip=-1)


@needs_data
def test_svamp_question_joins_body_and_question():
    item = load_suite("svamp", limit=1).items[0]
    assert item.question.startswith("Each pack of dvds costs 76 dollars")
    assert item.question.endswith("How much do you have to pay to buy each pack?")
    assert item.gold == 51.0
    assert item.score("51").correct and not item.score("50").correct


@needs_data
@pytest.mark.parametrize("name, letters", [
    ("prontoqa", "AB"), ("proofwriter", "ABC"), ("folio", "ABC"),
    ("logicaldeduction", "ABCDE"), ("arlsat", "ABCDE"),
])
def test_logic_suites_show_context_question_and_options(name, letters):
    suite = load_suite(name, limit=5)
    assert len(suite.items) == 5
    for item in suite.items:
        assert item.kind == "option" and item.gold in letters
        assert "Options:" in item.question and item.options[0] in item.question
        assert item.score(item.gold).correct


@needs_data
def test_hotpot_kb_mixes_the_paragraphs_of_every_question():
    suite = load_suite("hotpot", limit=2)
    assert len(suite.items) == 2
    assert suite.items[0].gold == ["Rush"]
    assert len(suite.documents) > 500  # all 100 questions' paragraphs, not just 2
    assert any(d.id == "hotpot:Neil Peart" for d in suite.documents)
    assert suite.items[0].score("rush").correct


@needs_data
def test_musique_gold_includes_aliases_and_kb_has_paragraphs():
    suite = load_suite("musique", limit=3)
    assert suite.items[0].gold[0] == "Stanley"
    assert len(suite.documents) > 1000


@needs_data
def test_2wiki_skips_records_without_context():
    suite = load_suite("2wiki")
    assert 0 < len(suite.items) <= 100
    assert suite.items[0].gold == ["Free Guy"]
    assert suite.documents


@needs_data
def test_strategyqa_is_yes_no_with_its_corpus():
    suite = load_suite("strategyqa", limit=4)
    assert suite.items[0].gold is False and suite.items[0].kind == "yesno"
    assert suite.items[0].question.endswith("Answer yes or no.")
    assert len(suite.documents) == 998
    assert suite.items[0].score("No.").correct


@needs_data
def test_nq_answers_list_and_oracle_passages():
    suite = load_suite("nq", limit=2)
    assert suite.items[0].gold == ["Wilhelm Conrad Röntgen"]
    assert len(suite.documents) == 1000
    assert suite.items[0].score("Wilhelm Conrad Röntgen").correct


@needs_data
def test_niah_hides_the_needle_at_the_stated_depth():
    suite = load_suite("niah")
    first, last = suite.items[0], suite.items[-1]
    assert first.meta == {"tokens": 1000, "depth": 0.0}
    secret = first.gold[0]
    assert first.question.index(secret) < 200  # depth 0: at the start
    assert suite.max_input_chars > len(last.question)


def test_niah_haystack_places_needle_by_depth():
    hay = niah_haystack([f"Sentence {i}." for i in range(100)], 400, "NEEDLE.", 1.0)
    assert hay.endswith("NEEDLE.")


def test_unknown_suite_and_missing_files_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigurationError, match="unknown suite"):
        load_suite("mmlu")
    with pytest.raises(ConfigurationError, match="--data or set LOTTERY_DATA"):
        load_suite("gsm8k", tmp_path)
    assert set(SUITES) >= {"gsm8k", "svamp", "hotpot", "2wiki", "strategyqa", "nq", "niah"}

"""Scorers: numeric tolerance, option letters, SQuAD EM/F1 normalisation, yes/no."""

from __future__ import annotations

import pytest

from lottery.bench import scorers

OPTS = ("A) True", "B) False", "C) Unknown")


@pytest.mark.parametrize("pred, gold, ok", [
    ("18", 18.0, True),
    ("$18.00", 18.0, True),
    ("1,234", 1234.0, True),
    ("9 * 2 = 18 dollars", 18.0, True),
    ("18.00001", 18.0, True),        # within the relative tolerance
    ("18.1", 18.0, False),
    ("3/4", 0.75, True),
    ("-5", -5.0, True),
    ("50%", 50.0, True),
    ("no idea", 18.0, False),
    (None, 18.0, False),
])
def test_numeric_match_reads_the_last_number_within_tolerance(pred, gold, ok):
    assert scorers.numeric_match(pred, gold).correct is ok


def test_numeric_match_reports_what_it_read():
    assert scorers.numeric_match("about 7.50 apples", 7.5).parsed == "7.5"


@pytest.mark.parametrize("pred, letter", [
    ("A", "A"), ("(B)", "B"), ("B) False", "B"), ("The answer is C.", "C"),
    ("Option B", "B"), ("False", "B"), ("unknown", "C"), ("It is true.", "A"),
    ("maybe", None), ("", None), ("D", None),
])
def test_option_letter_from_letters_or_option_text(pred, letter):
    assert scorers.parse_option(pred, OPTS) == letter


def test_option_match_compares_with_the_gold_letter():
    assert scorers.option_match("b", "B", OPTS).correct
    assert not scorers.option_match("A) True", "B", OPTS).correct


def test_option_text_prefers_the_longest_matching_option():
    opts = ("A) The green book is second", "B) The book is second")
    assert scorers.parse_option("the green book is second", opts) == "A"


def test_squad_normalisation_drops_case_punctuation_and_articles():
    assert scorers.normalize_answer("The  Rush!") == "rush"
    assert scorers.normalize_answer("An apple, a pear.") == "apple pear"


def test_exact_match_accepts_any_gold_alias():
    assert scorers.exact_match("the Rush", ["Rush"])
    assert scorers.exact_match("NYC", ["New York City", "NYC"])
    assert not scorers.exact_match("Rush band", ["Rush"])


def test_f1_gives_partial_credit_for_overlapping_tokens():
    assert scorers.f1_score("Rush band", ["Rush"]) == pytest.approx(2 / 3)
    assert scorers.f1_score("Rush", ["Rush"]) == 1.0
    assert scorers.f1_score("Toto", ["Rush"]) == 0.0
    assert scorers.f1_score("Wilhelm Röntgen", ["Wilhelm Conrad Röntgen", "Röntgen"]) == pytest.approx(0.8)


def test_qa_match_scores_em_as_correct_and_keeps_f1():
    score = scorers.qa_match("Rush band", ["Rush"])
    assert not score.correct and score.f1 == pytest.approx(2 / 3)


@pytest.mark.parametrize("pred, said", [
    ("Yes", True), ("no.", False), ("True, because ...", True), ("Yes, no doubt", True),
    ("I cannot tell", None), ("", None),
])
def test_yes_no_reads_the_first_words(pred, said):
    assert scorers.parse_yes_no(pred) is said


def test_yes_no_match_scores_against_a_bool():
    assert scorers.yes_no_match("No", False).correct
    assert not scorers.yes_no_match("unsure", False).correct


def test_option_letters_past_e_count_on_seven_option_puzzles():
    # LogicalDeduction's 7-object puzzles have options A-G; a scorer that read only A-E
    # scored every right F and G answer wrong.
    opts = [f"{c}) The {name} is third" for c, name in zip("ABCDEFG", "abcdefg", strict=True)]
    assert scorers.option_match("F", "F", opts).correct
    assert scorers.option_match("The answer is (G).", "G", opts).correct
    assert scorers.parse_option("H", opts) is None

from __future__ import annotations

from imdb_rnn.text import normalize, tokenize


def test_normalize_removes_html_breaks_and_lowercases():
    assert normalize("Great.<br /><br />REALLY great") == "great.  really great"


def test_tokenize_keeps_contractions_and_sentiment_punctuation():
    assert tokenize("I didn\u2019t like it... Isn't it AWFUL?!") == [
        "i",
        "didn't",
        "like",
        "it",
        "isn't",
        "it",
        "awful",
        "?",
        "!",
    ]


def test_tokenize_drops_other_punctuation_and_keeps_accents_and_numbers():
    assert tokenize("Café-au-lait (2001), rated 7/10; _meh_") == [
        "café",
        "au",
        "lait",
        "2001",
        "rated",
        "7",
        "10",
        "meh",
    ]

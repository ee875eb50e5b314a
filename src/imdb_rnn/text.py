"""Review text to word tokens: the one normalisation and the one tokenizer.

The tokenize stage, the linear member and `imdb-predict` all call these functions, so a review is
split into words the same way everywhere.
"""

from __future__ import annotations

import re
import unicodedata

# IMDB reviews contain HTML line breaks written as `<br />` (and a few other tags); they are markup,
# not words, and a plain regex tokenizer would otherwise emit the token "br" about 100,000 times.
_HTML_TAG = re.compile(r"<[^>]{0,40}>")
# Curly quotes, acute accents and backticks stand in for the apostrophe in many reviews.
_APOSTROPHE_LOOKALIKES = re.compile("[\u2019\u2018`\u00b4]")
# A token is a run of letters/digits, optionally joined by apostrophes, so that contractions stay
# whole ("don't", "isn't", "director's"): splitting "n't" off would make "don" a word, and a
# negation is worth keeping intact for sentiment. "!" and "?" carry sentiment too and stand alone;
# every other punctuation mark separates tokens and is dropped.
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[!?]")


def normalize(text: str) -> str:
    """Lowercase, unify Unicode forms and apostrophes, and replace HTML tags with spaces."""
    text = _APOSTROPHE_LOOKALIKES.sub("'", unicodedata.normalize("NFKC", text))
    return _HTML_TAG.sub(" ", text).lower()


def tokenize(text: str) -> list[str]:
    """Normalise a review and split it into word tokens (contractions whole, '!' and '?' kept)."""
    return _TOKEN.findall(normalize(text))

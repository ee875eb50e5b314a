from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from gensim.models import KeyedVectors

from imdb_rnn import pretrained, sources
from imdb_rnn.data import ReviewCleaner
from imdb_rnn.errors import DataError, SourceUnavailableError
from tests.conftest import make_reviews


def test_local_directory_is_searched_recursively_and_shards_are_concatenated(tmp_path):
    (tmp_path / "plain_text").mkdir()
    make_reviews(10, seed=1).to_parquet(tmp_path / "plain_text" / "train-00000-of-00002.parquet")
    make_reviews(6, seed=2).to_parquet(tmp_path / "plain_text" / "train-00001-of-00002.parquet")
    make_reviews(4, seed=3).to_csv(tmp_path / "test.csv", index=False)
    loaded = sources.load_reviews(str(tmp_path), "unused", None, chunk_size=3)
    assert sorted(loaded) == ["test", "train"]
    train = list(loaded["train"])
    assert [len(chunk) for chunk in train] == [3, 3, 3, 1, 3, 3]  # file by file, in name order
    assert pd.concat(train)["text"].tolist() == (
        make_reviews(10, seed=1)["text"].tolist() + make_reviews(6, seed=2)["text"].tolist()
    )
    assert sum(len(chunk) for chunk in loaded["test"]) == 4


def test_local_file_is_one_pool(tmp_path):
    path = tmp_path / "reviews.csv"
    make_reviews(8).to_csv(path, index=False)
    loaded = sources.load_reviews(str(path), "unused", None, chunk_size=5)
    assert list(loaded) == [sources.POOLED]
    assert [len(chunk) for chunk in loaded[sources.POOLED]] == [5, 3]


def test_local_directory_without_test_files_is_an_error(tmp_path):
    make_reviews(8).to_parquet(tmp_path / "train.parquet")
    with pytest.raises(DataError, match=r"no test\*\.parquet or test\*\.csv"):
        sources.load_reviews(str(tmp_path), "unused", None)


def test_unknown_source_is_explained(tmp_path):
    with pytest.raises(SourceUnavailableError, match="neither 'huggingface', 'keras' nor"):
        sources.load_reviews(str(tmp_path / "nowhere"), "unused", None)


def test_huggingface_connection_failure_explains_offline_use(monkeypatch):
    import datasets

    def unreachable(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'stanfordnlp/imdb' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(SourceUnavailableError, match="HF_HUB_OFFLINE=1 and HF_DATASETS_CACHE"):
        sources.load_reviews("huggingface", "stanfordnlp/imdb", None)


def test_keras_source_decodes_ids_back_to_text(monkeypatch):
    from keras.datasets import imdb

    word_index = {"good": 1, "bad": 2, "film": 3}
    train = (np.array([[1, 4, 6], [1, 5, 6]], dtype=object), np.array([1, 0]))
    test = (np.array([[1, 5, 2]], dtype=object), np.array([0]))
    monkeypatch.setattr(imdb, "load_data", lambda: (train, test))
    monkeypatch.setattr(imdb, "get_word_index", lambda: word_index)
    chunks = sources.load_reviews("keras", "unused", None)
    loaded = {split: pd.concat(split_chunks) for split, split_chunks in chunks.items()}
    assert loaded["train"]["text"].tolist() == ["good film", "bad film"]
    assert loaded["test"]["text"].tolist() == ["bad"]
    assert loaded["train"]["label"].tolist() == [1, 0]


def test_keras_download_failure_explains_offline_use(monkeypatch):
    from keras.datasets import imdb

    def unreachable():
        raise Exception("URL fetch failure on https://storage.googleapis.com/imdb.npz: None")

    monkeypatch.setattr(imdb, "load_data", unreachable)
    with pytest.raises(SourceUnavailableError, match=r"~/\.keras/datasets/"):
        sources.load_reviews("keras", "unused", None)


def test_keras_other_errors_are_not_disguised(monkeypatch):
    from keras.datasets import imdb

    def broken():
        raise ValueError("corrupt archive")

    monkeypatch.setattr(imdb, "load_data", broken)
    with pytest.raises(ValueError, match="corrupt archive"):
        sources.load_reviews("keras", "unused", None)


@pytest.fixture
def small_vectors() -> KeyedVectors:
    vectors = KeyedVectors(vector_size=3)
    vectors.add_vectors(["good", "bad"], np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32))
    return vectors


@pytest.mark.parametrize(
    ("vector_format", "save"),
    [
        ("word2vec-text", lambda kv, path: kv.save_word2vec_format(path, binary=False)),
        ("word2vec-binary", lambda kv, path: kv.save_word2vec_format(path, binary=True)),
        ("gensim", lambda kv, path: kv.save(path)),
    ],
)
def test_pretrained_vectors_from_a_local_file(tmp_path, small_vectors, vector_format, save):
    path = tmp_path / "vectors"
    save(small_vectors, str(path))
    loaded = pretrained.load_pretrained_vectors(
        str(path), None, None, vector_format, allow_pickle=vector_format == "gensim"
    )
    np.testing.assert_array_equal(loaded["bad"], small_vectors["bad"])


def test_pretrained_vectors_offline_is_explained(monkeypatch):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise FileNotFoundError("outgoing traffic has been disabled")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(SourceUnavailableError, match=r"set embed\.pretrained\.source to a local"):
        pretrained.load_pretrained_vectors(
            "fse/word2vec-google-news-300", "x.model", None, "word2vec-binary", False
        )


def test_pretrained_hub_source_needs_a_filename():
    with pytest.raises(SourceUnavailableError, match=r"set embed\.pretrained\.filename"):
        pretrained.load_pretrained_vectors("some/repo", None, None, "word2vec-binary", False)


def test_decode_keras_reviews_honours_reserved_ids():
    word_index = {"the": 1, "movie": 2, "rocks": 3}
    # 1 = start marker, 2 = OOV marker; words are their rank + index_from (3).
    sequences = [[1, 4, 5, 2, 6], [1, 5, 0]]
    assert sources.decode_keras_reviews(sequences, word_index) == ["the movie rocks", "movie"]
    shifted = [[7, 8]]
    assert sources.decode_keras_reviews(shifted, word_index, start_char=None, index_from=5) == [
        "movie rocks"
    ]


# Column types: a review's text is a string and its label an integer or a boolean, in every
# source. Turned into text, other types gave "reviews" such as "16" or "['When' 'you' ...]".
REVIEW_COUNT = 6
TEXTS = [f"review {index} was great" for index in range(REVIEW_COUNT)]
LABELS = [index % 2 for index in range(REVIEW_COUNT)]


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        ({"text": pa.array(range(REVIEW_COUNT))}, "column 'text' is int64; expected strings"),
        (
            {"text": pa.array([text.split() for text in TEXTS])},
            "column 'text' is list<element: string>; expected strings",
        ),
        (
            {"text": pa.array([{"review": text} for text in TEXTS])},
            "column 'text' is struct<review: string>; expected strings",
        ),
        ({"text": pa.nulls(REVIEW_COUNT)}, "column 'text' is null (every value is missing)"),
        (
            {"label": pa.array([float(label) for label in LABELS])},
            "column 'label' is double; expected integers",
        ),
        ({"label": pa.array([str(label) for label in LABELS])}, "column 'label' is string"),
    ],
)
def test_a_parquet_column_of_another_type_is_refused_before_any_row_is_read(
    tmp_path, columns, expected
):
    (tmp_path / "plain_text").mkdir()
    make_reviews(8).to_parquet(tmp_path / "plain_text" / "train-00000-of-00002.parquet")
    bad = tmp_path / "plain_text" / "train-00001-of-00002.parquet"
    pq.write_table(pa.table({"text": TEXTS, "label": LABELS} | columns), bad)
    make_reviews(4).to_parquet(tmp_path / "test.parquet")
    with pytest.raises(DataError) as refused:
        sources.load_reviews(str(tmp_path), "unused", None)  # no chunk is read yet
    assert str(refused.value).startswith(f"{bad}: ") and expected in str(refused.value)


@pytest.mark.parametrize(
    "columns",
    [
        {"text": pa.array(TEXTS, pa.large_string())},
        {"text": pa.array(TEXTS, pa.string_view())},
        {"text": pa.array(TEXTS).dictionary_encode()},
        {"label": pa.array([bool(label) for label in LABELS])},
        {"label": pa.array(LABELS, pa.uint8())},
    ],
)
def test_parquet_columns_of_other_string_and_integer_types_are_read(tmp_path, columns):
    path = tmp_path / "reviews.parquet"
    pq.write_table(pa.table({"text": TEXTS, "label": LABELS} | columns), path)
    cleaner = ReviewCleaner("reviews.parquet")
    clean = pd.concat(
        cleaner.clean(chunk) for chunk in sources.load_reviews(str(path), "", None)["pooled"]
    )
    assert clean["text"].tolist() == TEXTS and clean["label"].tolist() == LABELS


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("text,label\n16,1\n34,0\n", "every value of column 'text' in rows 1 to 2 reads as int64"),
        ("text,label\nTrue,1\nFalse,0\n", "column 'text' in rows 1 to 2 reads as bool"),
        ("text,label\nGood.,1.0\nBad.,0.0\n", "column 'label' reads as float64 in rows 1 to 2"),
    ],
)
def test_a_csv_column_that_cannot_be_reviews_is_refused(tmp_path, content, expected):
    path = tmp_path / "reviews.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=re.escape(expected)):
        list(sources.load_reviews(str(path), "unused", None)["pooled"])


def test_csv_reviews_that_look_like_numbers_stay_text_beside_others(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\n10/10,1\n007,1\nAwful.,0\n")
    chunks = list(sources.load_reviews(str(path), "unused", None)["pooled"])
    assert pd.concat(chunks)["text"].tolist() == ["10/10", "007", "Awful."]


def test_a_hub_dataset_with_other_column_types_is_refused_before_any_row_is_read(monkeypatch):
    import datasets

    numbers = datasets.Dataset.from_dict({"text": [16, 34], "label": [0, 1]})
    loaded = datasets.DatasetDict({"train": numbers, "test": numbers})
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: loaded)
    with pytest.raises(DataError, match=r"'some/numbers', split train: column 'text' is int64"):
        sources.load_reviews("huggingface", "some/numbers", None)


def test_keras_labels_of_another_type_are_refused(monkeypatch):
    from keras.datasets import imdb

    train = (np.array([[1, 4], [1, 5]], dtype=object), np.array([1.0, 0.0]))
    monkeypatch.setattr(imdb, "load_data", lambda: (train, train))
    monkeypatch.setattr(imdb, "get_word_index", lambda: {"good": 1, "bad": 2})
    with pytest.raises(DataError, match=r"Keras IMDB, split train: column 'label' is double"):
        sources.load_reviews("keras", "unused", None)


# Unlabelled reviews: the Hub's split "unsupervised", a local directory's unsupervised* files, or
# the file ingest.unlabelled_path names. Every source without them says so in one line.
UNLABELLED_FIX = "set ingest.unlabelled: false or name a file in ingest.unlabelled_path"


def unlabelled_texts(chunks) -> list[str]:
    frames = list(chunks)
    assert all(list(frame.columns) == ["text"] for frame in frames)  # a label is not even read
    return [text for frame in frames for text in frame["text"]]


def hub_dataset(monkeypatch, **splits: pd.DataFrame) -> None:
    import datasets

    loaded = datasets.DatasetDict(
        {name: datasets.Dataset.from_pandas(frame) for name, frame in splits.items()}
    )
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: loaded)


def test_the_hub_split_unsupervised_is_read_a_chunk_at_a_time(monkeypatch):
    unsupervised = make_reviews(7, seed=3).assign(label=-1)
    hub_dataset(monkeypatch, train=make_reviews(4), test=make_reviews(4), unsupervised=unsupervised)
    chunks = list(sources.load_unlabelled("huggingface", "some/imdb", None, None, chunk_size=3))
    assert [len(chunk) for chunk in chunks] == [3, 3, 1]
    assert unlabelled_texts(chunks) == unsupervised["text"].tolist()


def test_a_hub_dataset_without_unlabelled_reviews_names_its_splits_and_the_fix(monkeypatch):
    hub_dataset(monkeypatch, train=make_reviews(4), test=make_reviews(4))
    with pytest.raises(DataError) as refused:
        sources.load_unlabelled("huggingface", "some/imdb", None, None)
    assert str(refused.value) == (
        "Hugging Face dataset 'some/imdb' has no split 'unsupervised' of unlabelled reviews (it"
        f" has ['train', 'test']); {UNLABELLED_FIX}"
    )


def test_keras_imdb_has_no_unlabelled_reviews(monkeypatch):
    from keras.datasets import imdb

    monkeypatch.setattr(imdb, "load_data", lambda: pytest.fail("loaded before the error"))
    with pytest.raises(DataError) as refused:
        sources.load_unlabelled("keras", "unused", None, None)
    assert str(refused.value) == f"Keras' IMDB has no unlabelled reviews; {UNLABELLED_FIX}"


def test_the_hub_layout_works_as_a_local_directory_of_unlabelled_reviews(tmp_path):
    (tmp_path / "plain_text").mkdir()
    unsupervised = make_reviews(5, seed=3).assign(label=-1.0)  # any label column is ignored
    unsupervised.to_parquet(tmp_path / "plain_text" / "unsupervised-00000-of-00001.parquet")
    make_reviews(8).to_parquet(tmp_path / "plain_text" / "train-00000-of-00001.parquet")
    chunks = sources.load_unlabelled(str(tmp_path), "unused", None, None, chunk_size=2)
    assert unlabelled_texts(chunks) == unsupervised["text"].tolist()


def test_a_local_directory_without_unlabelled_files_is_an_error(tmp_path):
    make_reviews(8).to_parquet(tmp_path / "train.parquet")
    make_reviews(4).to_parquet(tmp_path / "test.parquet")
    with pytest.raises(DataError) as refused:
        sources.load_unlabelled(str(tmp_path), "unused", None, None)
    assert str(refused.value) == (
        f"{tmp_path}: no unsupervised*.parquet or unsupervised*.csv file of unlabelled reviews;"
        f" add one, or {UNLABELLED_FIX}"
    )


def test_a_single_local_file_has_no_unlabelled_reviews(tmp_path):
    path = tmp_path / "reviews.csv"
    make_reviews(8).to_csv(path, index=False)
    with pytest.raises(DataError) as refused:
        sources.load_unlabelled(str(path), "unused", None, None)
    assert str(refused.value) == (
        f"ingest.source '{path}' is one file of labelled reviews, with no unlabelled ones;"
        f" {UNLABELLED_FIX}"
    )


@pytest.mark.parametrize("source", ["huggingface", "keras", "directory", "file"])
def test_unlabelled_path_wins_over_every_source(tmp_path, monkeypatch, source):
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("loaded the Hub"))
    directory = tmp_path / "imdb"
    directory.mkdir()
    make_reviews(4, seed=5).to_parquet(directory / "unsupervised.parquet")
    make_reviews(8).to_parquet(directory / "reviews.parquet")
    source = {"directory": str(directory), "file": str(directory / "reviews.parquet")}.get(
        source, source
    )
    own = tmp_path / "own.csv"
    pd.DataFrame({"text": ["Mine.", "Also mine, with a comma."]}).to_csv(own, index=False)
    chunks = sources.load_unlabelled(source, "stanfordnlp/imdb", None, str(own))
    assert unlabelled_texts(chunks) == ["Mine.", "Also mine, with a comma."]


def test_an_unlabelled_path_that_is_no_file_is_explained(tmp_path):
    with pytest.raises(SourceUnavailableError) as refused:
        sources.load_unlabelled("huggingface", "unused", None, str(tmp_path / "nowhere.parquet"))
    assert str(refused.value) == (
        f"ingest.unlabelled_path '{tmp_path / 'nowhere.parquet'}' does not exist; name a parquet or"
        " CSV file with a column 'text', or set it to null to use the source's own unlabelled"
        " reviews"
    )
    with pytest.raises(SourceUnavailableError, match=r"' is a directory; name a parquet or CSV"):
        sources.load_unlabelled("huggingface", "unused", None, str(tmp_path))
    (tmp_path / "reviews.json").write_text("[]")
    with pytest.raises(DataError, match=r"reviews.json: unsupported file type; use .parquet or"):
        sources.load_unlabelled("huggingface", "unused", None, str(tmp_path / "reviews.json"))


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_unlabelled_reviews_without_a_text_column_are_refused_before_any_row_is_read(
    tmp_path, suffix
):
    path = tmp_path / f"unlabelled{suffix}"
    frame = pd.DataFrame({"review": ["Good.", "Bad."], "label": [-1, -1]})
    if suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    with pytest.raises(DataError) as refused:
        sources.load_unlabelled("keras", "unused", None, str(path))
    assert str(refused.value) == (
        f"{path}: no column 'text' (it has review, label); name the column of review texts 'text'"
    )


def test_unlabelled_texts_of_another_type_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "unlabelled.parquet"
    pq.write_table(pa.table({"text": pa.array(range(4)), "label": [-1] * 4}), path)
    with pytest.raises(DataError, match=re.escape(f"{path}: column 'text' is int64; expected str")):
        sources.load_unlabelled("keras", "unused", None, str(path))
    path = tmp_path / "unlabelled.csv"
    path.write_text("text,label\n16,-1\n34,-1\n")
    with pytest.raises(DataError, match="every value of column 'text' in rows 1 to 2 reads as int"):
        list(sources.load_unlabelled("keras", "unused", None, str(path)))
    hub_dataset(
        monkeypatch,
        train=make_reviews(4),
        test=make_reviews(4),
        unsupervised=pd.DataFrame({"text": [16, 34], "label": [-1, -1]}),
    )
    with pytest.raises(DataError, match=r"'some/imdb', split unsupervised: column 'text' is int64"):
        sources.load_unlabelled("huggingface", "some/imdb", None, None)

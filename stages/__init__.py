"""The pipeline's stages, one module each, run by dvc.yaml as ``python -m stages.<name>``.

Each module is thin: it parses the paths dvc.yaml passes it, validates its own section of
params.yaml, reads its inputs, calls the library in ``imdb_rnn``, and writes its outputs.
"""

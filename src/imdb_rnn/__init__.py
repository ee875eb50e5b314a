"""IMDB sentiment with recurrent networks: the library behind the DVC stages in ``stages/``.

Modules, in pipeline order: ``sources`` and ``data`` (ingest), ``text`` (tokenize), ``embedding``
(embed); ``params`` validates params.yaml, ``artifacts`` reads and writes every file.
"""

"""The equal-compute study behind ``experiments/study.py`` (the script is its command line; its committed
results live in ``experiments/results/``), split by job:

* :mod:`.scales`: the scales (tiny / small / paper) and the variants, with what each costs;
* :mod:`.plan`: every training run of every seed, validated before anything trains;
* :mod:`.run`: the runs on the pipeline runner (:mod:`jtcse.pipeline.runner`), untrained rows, attention sink;
* :mod:`.report` and :mod:`.figures`: ``study.md``, ``study.json`` and the PNGs.
"""

"""The JTCSE paper's zero-shot suite (``jtcse eval zero-shot``): 138 rows of mteb tasks.

* :mod:`.suite` the suite data (``suite.json``: tasks, splits, subsets, score keys, the paper's cells)
* :mod:`.runner` one model's pass through mteb's evaluators, a cached result per task, failures recorded
* :mod:`.aggregate` row values and the README's category averages
* :mod:`.report` ``zero_shot.json`` / ``zero_shot.md``

mteb is imported only when tasks run (``pip install 'jtcse[mteb]'``).
"""

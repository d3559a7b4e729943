"""SentEval's transfer tasks (MR, CR, SUBJ, MPQA, SST2, TREC, MRPC) on frozen sentence embeddings.

``folds`` (stratified k-fold splits), ``classifier`` (the logistic regression and its training),
``validation`` (the three protocols and the L2 penalty choice), ``tasks`` (data, features, protocol per task),
``runner`` (:func:`evaluate_transfer`, the report).
"""

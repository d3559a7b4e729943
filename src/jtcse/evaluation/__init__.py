"""Evaluation: the 7-task STS benchmark (:mod:`.sts`)."""

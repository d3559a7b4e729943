"""Data: where it lives (:mod:`.paths`), fetching it (:mod:`.download`), reading it (:mod:`.sts`, ...)."""

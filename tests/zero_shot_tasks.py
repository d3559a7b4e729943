"""Small in-memory mteb tasks of the five zero-shot types, built like ``local:`` STS tasks (an mteb task
class whose ``load_data`` fills ``self.dataset`` from memory), for end-to-end runs through mteb's real
evaluators without the hub. Also a task whose data cannot be loaded, as a missing dataset would fail.
"""

from __future__ import annotations

from typing import Any

from datasets import Dataset, DatasetDict
from mteb.abstasks.classification import AbsTaskClassification
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
from mteb.abstasks.sts import AbsTaskSTS
from mteb.abstasks.task_metadata import TaskMetadata, TaskType
from mteb.abstasks.text.bitext_mining import AbsTaskBitextMining

from jtcse.evaluation.mteb import local_task_metadata

NAMES = {
    "sts22": "TinySTS22",
    "classification": "TinyClassification",
    "retrieval": "TinyRetrieval",
    "reranking": "TinyReranking",
    "bitext": "TinyBitextMining",
}
BROKEN = "TinyBrokenClassification"
TOPICS = ["sport", "food", "music", "travel"]
SENTENCES = {
    "sport": ["The team won the football match.", "She runs a marathon every year.", "He scored a goal."],
    "food": ["The soup tastes of garlic.", "We baked fresh bread today.", "Pasta with tomato sauce."],
    "music": ["The band played a loud song.", "She sings in a choir.", "He practices the violin."],
    "travel": ["We flew to Rome last week.", "The train leaves at noon.", "They packed bags for the trip."],
}


def _metadata(name: str, task_type: TaskType, main_score: str, langs: Any = None) -> TaskMetadata:
    description = f"{name}: a tiny in-memory {task_type} task (jtcse tests)"
    dataset = {"path": f"memory/{name}", "revision": "1"}
    return local_task_metadata(
        name,
        dataset=dataset,
        description=description,
        task_type=task_type,
        main_score=main_score,
        langs=langs,
    )


def _sts_pairs(shift: int) -> Dataset:
    left = [s for topic in TOPICS for s in SENTENCES[topic]]
    right = left[shift:] + left[:shift]
    scores = [5.0 if i % 3 == 0 else float(i % 5) for i in range(len(left))]
    return Dataset.from_dict({"sentence1": left, "sentence2": right, "score": scores})


class TinySTS22(AbsTaskSTS):
    """Two language subsets, like STS22.v2's language pairs."""

    metadata = _metadata(NAMES["sts22"], "STS", "cosine_spearman", {"en": ["eng-Latn"], "de": ["deu-Latn"]})
    min_score, max_score = 0, 5

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        if self.data_loaded:
            return
        self.dataset = {
            "en": DatasetDict({"test": _sts_pairs(1)}),
            "de": DatasetDict({"test": _sts_pairs(2)}),
        }
        self.data_loaded = True


class TinyClassification(AbsTaskClassification):
    metadata = _metadata(NAMES["classification"], "Classification", "accuracy")
    n_experiments = 2

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        if self.data_loaded:
            return
        texts = [s for topic in TOPICS for s in SENTENCES[topic]]
        labels = [i for i, topic in enumerate(TOPICS) for _ in SENTENCES[topic]]
        split = Dataset.from_dict({"text": texts, "label": labels})
        self.dataset = DatasetDict({"train": split, "test": split})
        self.data_loaded = True


def _retrieval_split(with_candidates: bool) -> RetrievalSplitData:
    corpus = [
        {"id": f"{topic}{i}", "text": text, "title": ""}
        for topic in TOPICS
        for i, text in enumerate(SENTENCES[topic])
    ]
    queries = [{"id": f"q_{topic}", "text": SENTENCES[topic][0]} for topic in TOPICS]
    relevant = {f"q_{topic}": {f"{topic}1": 1, f"{topic}2": 1} for topic in TOPICS}
    ranked = {f"q_{topic}": [doc["id"] for doc in corpus] for topic in TOPICS} if with_candidates else None
    return RetrievalSplitData(
        queries=Dataset.from_list(queries),
        corpus=Dataset.from_list(corpus),
        relevant_docs=relevant,
        top_ranked=ranked,
    )


class TinyRetrieval(AbsTaskRetrieval):
    metadata = _metadata(NAMES["retrieval"], "Retrieval", "ndcg_at_10")

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        if self.data_loaded:
            return
        self.dataset = {"default": {"test": _retrieval_split(with_candidates=False)}}
        self.data_loaded = True


class TinyReranking(AbsTaskRetrieval):
    """A reranking task as mteb 2.x has them: a retrieval task with candidate lists (``top_ranked``)."""

    metadata = _metadata(NAMES["reranking"], "Reranking", "map_at_1000")

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        if self.data_loaded:
            return
        self.dataset = {"default": {"test": _retrieval_split(with_candidates=True)}}
        self.data_loaded = True


class TinyBitextMining(AbsTaskBitextMining):
    metadata = _metadata(NAMES["bitext"], "BitextMining", "f1")

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        if self.data_loaded:
            return
        left = [s for topic in TOPICS for s in SENTENCES[topic]]
        right = [s.upper() for s in left]
        self.dataset = DatasetDict({"test": Dataset.from_dict({"sentence1": left, "sentence2": right})})
        self.data_loaded = True


class TinyBrokenClassification(TinyClassification):
    """Its data are not there: as a hub dataset that is not cached while offline."""

    metadata = _metadata(BROKEN, "Classification", "accuracy")

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        raise ConnectionError(f"{BROKEN}: the dataset is not in the cache and the hub is offline\nmore text")


TASK_CLASSES: dict[str, type] = {
    cls.metadata.name: cls
    for cls in (TinySTS22, TinyClassification, TinyRetrieval, TinyReranking, TinyBitextMining)
}
TASK_CLASSES[BROKEN] = TinyBrokenClassification


def make_task(name: str) -> Any:
    """A fresh task object by name (each run loads its own data)."""
    return TASK_CLASSES[name]()

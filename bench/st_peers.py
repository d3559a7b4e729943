"""sentence-transformers' own backends (torch, ONNX, ONNX int8) for ``bench/encode.py``, in their own venv.

sentence-transformers' ONNX backend needs optimum-onnx, which does not run on transformers 5 (what jtcse's
environment has), so this worker runs under another interpreter (``make bench-peers`` builds
``.venv-peers``) and imports nothing from jtcse. ``bench/encode.py`` starts it, hands it the sentences and
settings as JSON on the command line, and drives it over stdin/stdout, one JSON object a line, so that its
repeats interleave with jtcse's in one schedule (only one side runs at a time):

    -> {"run": "<backend>", "workload": "<name>"}       <- {"seconds": s, "cpu": s}
    -> {"vectors": "<backend>", "path": "out.npy", "alone": null | [sentences]}   <- {"ok": true}
    -> {"quit": true}

On start it exports with sentence-transformers' own functions (``SentenceTransformer(dir, backend="onnx")``
saves ``onnx/model.onnx``; ``export_dynamic_quantized_onnx_model(model, config, dir)`` writes
``onnx/model_qint8_<config>.onnx`` or ``model_quint8_avx2.onnx``), limits torch and every onnxruntime session
to the given threads, reads the limits back from the live sessions, and reports them with the padded
widths each backend runs, as its first line.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path


def _session_of(auto_model: object):
    """The onnxruntime InferenceSession inside optimum's ORTModel (its attribute name varies by version)."""
    import onnxruntime as ort

    for value in vars(auto_model).values():
        if isinstance(value, ort.InferenceSession):
            return value
    raise SystemExit("st_peers: no onnxruntime session found in the ONNX model")


def _onnx_model(model_dir: Path, file_name: str, threads: int):
    import onnxruntime as ort
    from sentence_transformers import SentenceTransformer

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    kwargs = {"file_name": file_name, "provider": "CPUExecutionProvider", "session_options": options}
    return SentenceTransformer(str(model_dir), device="cpu", backend="onnx", model_kwargs=kwargs)


def load_backends(settings: dict) -> tuple[dict, dict]:
    """The three models and what was verified about them (threads from the live sessions, file names)."""
    import torch
    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

    threads = int(settings["threads"])
    torch.set_num_threads(threads)
    model_dir = Path(settings["export_dir"]) / "st-minilm"
    if not (model_dir / "onnx" / "model.onnx").is_file():
        shutil.rmtree(model_dir, ignore_errors=True)
        shutil.copytree(settings["model_dir"], model_dir)
        SentenceTransformer(str(model_dir), device="cpu", backend="onnx").save_pretrained(str(model_dir))
    config = settings["quantization_config"]
    int8_name = f"onnx/model_qint8_{config}.onnx" if config != "avx2" else "onnx/model_quint8_avx2.onnx"
    if not (model_dir / int8_name).is_file():
        onnx_model = _onnx_model(model_dir, "onnx/model.onnx", threads)
        export_dynamic_quantized_onnx_model(onnx_model, config, str(model_dir))
    models = {
        "sentence-transformers torch": SentenceTransformer(settings["model_dir"], device="cpu"),
        "sentence-transformers onnx": _onnx_model(model_dir, "onnx/model.onnx", threads),
        "sentence-transformers onnx int8": _onnx_model(model_dir, int8_name, threads),
    }
    verified = {"torch_threads": torch.get_num_threads(), "int8_file": int8_name, "versions": _versions()}
    for name, model in models.items():
        if "onnx" in name:
            session = _session_of(model[0].auto_model)
            verified[name] = session.get_session_options().intra_op_num_threads
    return models, verified


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ("sentence-transformers", "transformers", "optimum-onnx", "onnxruntime", "torch")
    return {name: version(name) for name in names}


def padded_batches(model, texts: list[str], batch_size: int) -> list[tuple[int, int]]:
    """(rows, padded width) of the batches ``model.encode`` runs: it sorts by text length, longest first,
    and pads each batch to its longest member."""
    ordered = sorted(texts, key=len, reverse=True)
    shapes = []
    for start in range(0, len(ordered), batch_size):
        ids = model.tokenize(ordered[start : start + batch_size])["input_ids"]
        shapes.append((int(ids.shape[0]), int(ids.shape[1])))
    return shapes


def main() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")  # the exporters' tracer warnings and deprecation notes
    logging.disable(logging.WARNING)
    settings = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    workloads: dict[str, list[str]] = settings["workloads"]
    batch_size = int(settings["batch_size"])
    models, verified = load_backends(settings)
    verified["batches"] = padded_batches(
        models["sentence-transformers torch"], workloads["distinct"], batch_size
    )
    for model in models.values():  # warm-up: first-call allocations and lazy initialisation
        model.encode(workloads["distinct"][:256], batch_size=batch_size, show_progress_bar=False)
    print(json.dumps({"backends": list(models), "verified": verified}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("quit"):
            break
        if "vectors" in request:
            import numpy as np

            model, alone = models[request["vectors"]], request.get("alone")
            if alone:  # one sentence per call: the vector a lone client gets
                vectors = np.concatenate(
                    [model.encode([t], normalize_embeddings=True, show_progress_bar=False) for t in alone]
                )
            else:
                vectors = model.encode(
                    workloads["distinct"],
                    batch_size=batch_size,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
            np.save(request["path"], np.asarray(vectors, dtype=np.float32))
            print(json.dumps({"ok": True}), flush=True)
            continue
        texts = workloads[request["workload"]]
        start, start_cpu = time.perf_counter(), time.process_time()
        models[request["run"]].encode(
            texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
        print(json.dumps({"seconds": seconds, "cpu": cpu, "load": os.getloadavg()[0]}), flush=True)


if __name__ == "__main__":
    main()

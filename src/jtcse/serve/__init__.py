"""``jtcse serve``: an OpenAI-compatible embedding server for anything ``jtcse.Encoder`` loads.

Needs the optional extra ``serve`` (FastAPI, uvicorn, prometheus-client). One module per job:
``config`` (flags and limits), ``schemas`` (request bodies), ``validate`` (flag-dependent checks),
``errors`` (OpenAI error bodies), ``tokens`` (token counts), ``batcher`` (dynamic batching worker),
``memory`` (heap trimming), ``models`` (loading), ``corpus`` (the search index), ``metrics`` (Prometheus),
``middleware`` (API key, body limit), ``routes`` (endpoints), ``state``, ``app`` (the FastAPI app),
``server`` (uvicorn, SIGTERM drain), ``static/`` (the page).
"""

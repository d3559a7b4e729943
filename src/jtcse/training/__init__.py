"""Training: config (:mod:`.config`), the loop (:mod:`.trainer`), what each method computes per step
(:mod:`.tasks`, one file per task on the contract of :mod:`.tasks.base`), what a checkpoint holds
(:mod:`.state`, written by :mod:`.checkpoint`), the run directory (:mod:`.run_dir`), AdamW and the schedule
(:mod:`.optimization`), metrics (:mod:`.metrics`) and seeding (:mod:`.seeding`). Scaling out: one step's
forward/backward (:mod:`.step`), multi-process DDP (:mod:`.distributed`), gradient caching
(:mod:`.grad_cache`), mixed precision (:mod:`.precision`); docs/scaling.md.

Entry point for code: ``jtcse.training.trainer.train(config)``; for people: ``jtcse train CONFIG``.
"""

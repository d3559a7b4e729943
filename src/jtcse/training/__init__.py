"""Training: config (:mod:`.config`), the loop (:mod:`.trainer`), what each method computes per step
(:mod:`.tasks`), checkpoint/resume (:mod:`.checkpoint`), metrics (:mod:`.metrics`) and seeding
(:mod:`.seeding`). Scaling out: one step's forward/backward and the task contract (:mod:`.step`),
multi-process DDP (:mod:`.distributed`), gradient caching (:mod:`.grad_cache`), mixed precision
(:mod:`.precision`); docs/scaling.md.

Entry point for code: ``jtcse.training.trainer.train(config)``; for people: ``jtcse train CONFIG``.
"""

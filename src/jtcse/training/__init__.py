"""Training: config (:mod:`.config`), the loop (:mod:`.trainer`), what each method computes per step
(:mod:`.tasks`), checkpoint/resume (:mod:`.checkpoint`), metrics (:mod:`.metrics`) and seeding
(:mod:`.seeding`).

Entry point for code: ``jtcse.training.trainer.train(config)``; for people: ``jtcse train CONFIG``.
"""

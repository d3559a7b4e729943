"""Analysis of trained encoders: the attention-sink / E_CLS diagnostic (:mod:`.attention_sink`)."""

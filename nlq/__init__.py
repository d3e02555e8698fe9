"""Natural-language questions over metrics and the store: an offline engine by default, an
LLM through LangChain when configured. Read-only; imports only ``vigil.core``."""

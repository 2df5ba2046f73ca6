from .emitter import CSource, generate_c

__all__ = ["CSource", "generate_c"]

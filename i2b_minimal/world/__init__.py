"""The offline world: drawn pictures with captions, a simulated brain that answers them, and the tiny CLIP.

It writes its recordings through ``datasets.things_format``, so every loader runs offline on the real formats.
"""

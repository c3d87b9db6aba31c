"""The robust trainer (resume, many processes, checkpoints, EMA) around ``method.loop``'s step, and export."""

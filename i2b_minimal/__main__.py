"""``python -m i2b_minimal …`` is the ``i2b`` command (for ``accelerate launch -m`` and ``torchrun -m``)."""

from i2b_minimal.app.cli import main

raise SystemExit(main())

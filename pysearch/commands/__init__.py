"""Sub-commands of the ``pysearch`` CLI; each module defines ``register(subparsers)``."""

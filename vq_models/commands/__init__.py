"""Sub-commands of the ``vqedit`` console command.

Each module here defines ``NAME`` (the sub-command), ``HELP`` (one line for ``vqedit --help``),
``configure(parser)`` and ``run(args) -> int``. :mod:`vq_models.cli` discovers them, so adding a command
never means editing a central list. Heavy imports (torch, zmq) belong inside ``run`` so ``--help`` is quick.
"""

"""Shared training infrastructure (checkpoints, logging, distributed helpers, shot datasets) and the
Stage II renderer trainer. Submodules are imported explicitly so importing this package stays cheap."""

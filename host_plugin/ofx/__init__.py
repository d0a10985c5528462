"""The OpenFX plug-in's Python side: the bridge process (``bridge``), its parameter table (``params``,
also compiled into the ``.ofx``) and pixel conversions (``pixels``). The C++ plug-in is in ``src/``;
docs/ofx.md says how the pieces fit."""

"""OpenFX bridge: how an OFX plug-in shell calls the host-agnostic EditNode (see README.md)."""

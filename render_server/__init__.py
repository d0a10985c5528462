"""The persistent vqedit render server: ZeroMQ ROUTER + msgpack, an LRU cache of trained shot models.

A compositor's host (Nuke, a farm blade, a script) keeps no GPU state: it sends frame numbers, edit
programs and label maps to this server, which keeps the expensive models loaded and answers with EXR
bytes. See docs/protocol.md for the wire format.
"""

from host_plugin.protocol import PROTOCOL_VERSION

__all__ = ["PROTOCOL_VERSION"]

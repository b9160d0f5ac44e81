"""A finished session turned into what people read and other tools open: ``rig info`` (and its
text), the per-frame table, CSV and TIFF exports, NWB. Everything here reads the session
through :class:`rig.data.folder.SessionFolder` and writes only new files beside it."""

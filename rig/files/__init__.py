"""The files a user writes: the protocol and the rig file, loaded and validated strictly
(``FILE: field.path: message``)."""

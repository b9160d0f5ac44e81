"""Session data: the session folder and everything that reads or writes it.

- :mod:`rig.data.folder`: :class:`~rig.data.folder.SessionFolder`, the folder's layout (every
  path and every key of ``session.zarr``) and every read and write of it;
- :mod:`rig.data.attrs`: the root attributes as one typed model;
- :mod:`rig.data.journal`: the journal a run writes, written and read there only;
- :mod:`rig.data.finalize`: the fold of the journal into ``session.zarr``, and ``rig recover``;
- :mod:`rig.data.trials`: the trials as run (planned and measured times);
- :mod:`rig.data.atomic`: crash-safe file replacement, used for every file the project writes.

The frame writer that fills the frame streams during a run is :mod:`rig.data.store`.
"""

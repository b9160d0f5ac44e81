"""The study's analysis (``rig analyze``): one animal's sessions, from traces to the hub network.

One module per idea: :mod:`~rig.analysis.session_data` (what is read from a session folder),
:mod:`~rig.analysis.traces` (suite2p output or truth footprints), :mod:`~rig.analysis.identity`
(registration and matching across days), :mod:`~rig.analysis.responses` (dF/F and
responsiveness), :mod:`~rig.analysis.ensemble` (elastic net, stability selection),
:mod:`~rig.analysis.connectivity` (neighbourhood selection and its shuffle null),
:mod:`~rig.analysis.hubs`, :mod:`~rig.analysis.days` (across days),
:mod:`~rig.analysis.figures`, :mod:`~rig.analysis.pipeline` (the orchestration),
:mod:`~rig.analysis.extract` (suite2p) and :mod:`~rig.exports.nwb_ophys` (NWB export).
``docs/analysis.md`` describes the method.
"""

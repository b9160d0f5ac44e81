"""What the animal does, measured: motion indices from the behaviour video, freezing (live and
re-scored from the stored indices, one rule), the running wheel's locomotion, and the freezing
report. See ``docs/freezing.md``."""

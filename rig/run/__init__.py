"""Running a session on devices: the runner (loop, state, abort, signals), the hardware engine
behind the ports, the stimulus tracker, the shock-current sequencer, the self-test."""

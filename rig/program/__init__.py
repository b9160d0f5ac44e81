"""The output program: a protocol compiled to a timeline and to the samples the DAQ plays, and the
safety verifier that checks those samples."""

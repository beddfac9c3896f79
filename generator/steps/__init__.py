"""The render steps: each module is one named step (or the pure function it uses) over Resources."""

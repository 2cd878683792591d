"""Writes of the waivers app, one module per concern.

- ``register``: waivers are created, changed, approved, rejected, closed;
- ``importing``: the team's Markdown register is read into the register;
- ``observations``: the secrets' fingerprints are recorded, rotations found;
- ``reminders``: owners are reminded ahead of dates and escalated to after.
"""

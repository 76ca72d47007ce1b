"""Sandboxes: local stand-ins for the registers and directories regbridge talks to."""

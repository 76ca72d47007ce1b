"""The GVR worker: care contacts → GVR (Gemensamt vårdregister, Region Stockholm)."""

"""The NVR worker: vaccinations to Folkhälsomyndigheten's register as FHIR R4 bundles."""

"""CVR (Centrala väntetidsregistret, Region Stockholm): waiting-list entries reported as a file
per reporting unit and period, delivered by SFTP (docs/cvr.md, docs/cvr-file.md)."""

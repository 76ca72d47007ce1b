"""The catalog: care units and vaccines as the catalog topics carry them, and a view of them."""

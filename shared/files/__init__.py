"""The file-delivery runtime: events into per-period state, files built at a cut-off,
delivered in their window, receipts kept, one result per event."""

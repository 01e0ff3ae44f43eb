"""Everything the service keeps in Redis: key names (`keys`), the connection (`connection`),
leases (`lease`) and the change-poll watermarks (`watermark`)."""

"""Pages of the web UI, one module per area (the email links, the dashboard, items, calendar)."""

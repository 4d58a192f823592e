"""Django's PostgreSQL backend with idle-only connection health checks (see `base`).
`config.settings` selects it for every PostgreSQL DATABASE_URL."""

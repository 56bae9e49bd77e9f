"""Policy YAML (schema, loading, live reload) and the pure promote/demote decision."""

"""The operator console: server-rendered pages at /console/ for operator and auditor keys."""

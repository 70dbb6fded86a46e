"""Incident handling (issue #19): who helps an organisation now, its reporting duties, cases."""

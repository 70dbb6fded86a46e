"""Knowledge exchange: products with versions, review, attribution and lineage,
published through the release path (issue #19)."""

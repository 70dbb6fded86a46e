"""Coverage (dekkingsgraad): which functions, sectors and regions the active partners reach,
and where the gaps are — for today or any past date, rebuilt from the partner history."""

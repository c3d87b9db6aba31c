"""What the notebooks use and nothing else needs: widgets with precomputed grids, exercise checks."""

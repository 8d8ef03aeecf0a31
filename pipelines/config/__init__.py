"""The declared estate: typed model (`model`), secret references (`secrets`), the file reader (`load`, edges only)."""

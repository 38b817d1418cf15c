"""The database seam: named SQL, row conversion, pools, migrations and the embedded server."""

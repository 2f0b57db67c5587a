"""Database targets: ``sink.py`` the table and its state in one transaction; ``dialect.py`` what a database must
offer; ``postgres.py`` (ADBC binary COPY) and ``mysql.py`` (``LOAD DATA LOCAL INFILE``) the two databases."""

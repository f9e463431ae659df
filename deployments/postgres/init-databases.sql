-- Runs once, when the PostgreSQL volume is new. POSTGRES_DB (lottery) holds the framework's
-- memory and run records (LOTTERY_DATABASE_URL); the graph server keeps its threads, runs,
-- checkpoints and store in a database of its own.
CREATE DATABASE aegra;

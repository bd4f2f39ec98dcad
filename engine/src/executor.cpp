// The DAG executor (being implemented).
